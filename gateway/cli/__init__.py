"""The `lmx` command: a client of the gateway's HTTP API (and `lmx serve`, which starts it).

It imports nothing of the gateway's server side, nor MLX or llama.cpp, so it starts fast.
"""

from __future__ import annotations

import sys


def main() -> None:
    from gateway.cli.app import app
    from gateway.cli.client import CliError
    from gateway.cli.output import error

    try:
        app(prog_name="lmx")
    except CliError as exc:
        error(exc.message)
        sys.exit(exc.exit_code)
