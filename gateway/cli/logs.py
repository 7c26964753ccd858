"""`lmx logs [ID] [-f]`: the gateway's log, or a model's worker log, from supervisord's
log files through the gateway."""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer

from gateway.cli import output
from gateway.cli.client import connect
from gateway.cli.options import JsonFlag


def logs(
    model: Annotated[
        str | None,
        typer.Argument(
            metavar="ID",
            help="A model id: its worker's log. Left out: the gateway's.",
            show_default=False,
        ),
    ] = None,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing new lines (Ctrl-C stops).")
    ] = False,
    lines: Annotated[int, typer.Option("--lines", "-n", min=0, help="How many recent lines.")] = 50,
    json_: JsonFlag = False,
) -> None:
    """Print recent log lines; with -f, follow them until Ctrl-C."""
    program = "gateway" if model is None else f"worker-{model}"
    with connect() as client:
        if not follow:
            result = client.get("/admin/logs", model=model, program=program, lines=lines)
            if json_:
                output.print_json(result)
            else:
                _write_lines(result.get("lines", []))
            return
        try:
            with client.stream(
                "GET", "/admin/logs/stream", model=model, program=program, lines=lines
            ) as events:
                for event in events:
                    _write_event(event, json_)
        except KeyboardInterrupt:
            return  # following ends with Ctrl-C: that is success


def _write_lines(lines: list[str]) -> None:
    sys.stdout.writelines(line.rstrip("\n") + "\n" for line in lines)
    sys.stdout.flush()


def _write_event(event: Any, as_json: bool) -> None:
    text = json.dumps(event) if as_json else str(event.get("line", "")).rstrip("\n")
    sys.stdout.write(text + "\n")
    sys.stdout.flush()
