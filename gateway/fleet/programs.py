"""Program files for supervisord: one `[program:worker-<id>]` per loaded model.

supervisor.conf pulls in `run/workers/*.conf`; writing a file here and asking supervisord
to reload is how a worker comes to exist, exactly as `supervisorctl update` would do it.
Beside it, `<id>.json` holds the worker's settings, which its command line names.
"""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path

from gateway.config.loader import Config
from workers.contract.settings import WorkerSettings

PROGRAM_PREFIX = "worker-"


def program_name(model_id: str) -> str:
    return PROGRAM_PREFIX + model_id


def model_id_of(program: str) -> str | None:
    return program[len(PROGRAM_PREFIX) :] if program.startswith(PROGRAM_PREFIX) else None


def programs_dir(config: Config) -> Path:
    return config.run_dir / "workers"


def settings_path(config: Config, model_id: str) -> Path:
    return programs_dir(config) / f"{model_id}.json"


def program_text(config: Config, model_id: str) -> str:
    name = program_name(model_id)
    settings = settings_path(config, model_id)
    command = shlex.join([sys.executable, "-m", "workers", "--settings", str(settings)])
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


def write_program(config: Config, settings: WorkerSettings) -> None:
    """The worker's settings (owner-only: they hold the API keys), then its program file."""
    model_id = settings.model_id
    programs_dir(config).mkdir(parents=True, exist_ok=True)
    (config.run_dir / "logs").mkdir(parents=True, exist_ok=True)
    _write_atomically(settings_path(config, model_id), settings.to_json())
    program = program_text(config, model_id)
    _write_atomically(programs_dir(config) / f"{model_id}.conf", program)


def remove_program_file(config: Config, model_id: str) -> None:
    (programs_dir(config) / f"{model_id}.conf").unlink(missing_ok=True)
    settings_path(config, model_id).unlink(missing_ok=True)


def _write_atomically(target: Path, text: str) -> None:
    tmp = target.with_name(target.name + ".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as file:
        file.write(text)
    tmp.replace(target)
