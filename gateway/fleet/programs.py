"""Program files for supervisord: one `[program:worker-<id>]` per loaded model.

supervisor.conf pulls in `run/workers/*.conf`; writing a file here and asking supervisord
to reload is how a worker comes to exist, exactly as `supervisorctl update` would do it.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

from gateway.config.loader import Config
from gateway.config.schema import ModelConfig

PROGRAM_PREFIX = "worker-"


def program_name(model_id: str) -> str:
    return PROGRAM_PREFIX + model_id


def model_id_of(program: str) -> str | None:
    return program[len(PROGRAM_PREFIX) :] if program.startswith(PROGRAM_PREFIX) else None


def programs_dir(config: Config) -> Path:
    return config.run_dir / "workers"


def program_text(config: Config, model: ModelConfig) -> str:
    name = program_name(model.id)
    command = shlex.join(
        [sys.executable, "-m", "workers", "--config", str(config.source), "--model", model.id]
    )
    log = config.run_dir / "logs" / f"{name}.log"
    stop_wait = int(config.file.workers.stop_timeout_s) + 5
    # startretries=0: a worker that dies while loading is reported, not respawned in a loop;
    # the gateway decides when to try again. Group kill: llama.cpp/MLX threads and any
    # helper processes go with the worker.
    return "\n".join(
        [
            f"[program:{name}]",
            f"command={command}",
            f"directory={config.run_dir}",
            "autostart=false",
            "autorestart=false",
            "startsecs=1",
            "startretries=0",
            "stopsignal=TERM",
            f"stopwaitsecs={stop_wait}",
            "stopasgroup=true",
            "killasgroup=true",
            "redirect_stderr=true",
            f"stdout_logfile={log}",
            "stdout_logfile_maxbytes=5MB",
            "stdout_logfile_backups=1",
            'environment=PYTHONUNBUFFERED="1"',
            "",
        ]
    )


def write_program(config: Config, model: ModelConfig) -> None:
    directory = programs_dir(config)
    directory.mkdir(parents=True, exist_ok=True)
    (config.run_dir / "logs").mkdir(parents=True, exist_ok=True)
    target = directory / f"{model.id}.conf"
    tmp = target.with_suffix(".tmp")
    tmp.write_text(program_text(config, model))
    tmp.replace(target)


def remove_program_file(config: Config, model_id: str) -> None:
    (programs_dir(config) / f"{model_id}.conf").unlink(missing_ok=True)
