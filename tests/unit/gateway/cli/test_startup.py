"""lmx starts fast: importing every command loads none of the server or the backends."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.integration.stack import REPO

HEAVY = ("starlette", "uvicorn", "mlx", "mlx_lm", "llama_cpp", "numpy", "gateway.fleet", "workers")


def test_importing_the_cli_loads_no_server_or_backend_module() -> None:
    code = "import sys, json, gateway.cli.app; print(json.dumps(sorted(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
        check=True,
    )
    loaded = json.loads(result.stdout)
    assert [m for m in loaded if m.split(".")[0] in HEAVY or m in HEAVY] == []
