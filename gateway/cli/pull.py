"""`lmx pull REPO [FILE]`: download a model through the gateway, with a progress bar per
file (bytes, total, the server's measured rate)."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.progress import BarColumn, DownloadColumn, Progress, TaskID, TextColumn

from gateway.cli import formatting as fmt
from gateway.cli import output
from gateway.cli.client import CliError, connect
from gateway.cli.options import JsonFlag

PULL_PATH = "/admin/models/pull"


def pull(
    repo: Annotated[
        str, typer.Argument(metavar="REPO", help="A Hugging Face repository, owner/name.")
    ],
    file: Annotated[
        str | None,
        typer.Argument(metavar="FILE", help="One file of it (a GGUF); all of it when left out."),
    ] = None,
    revision: Annotated[str | None, typer.Option(help="A branch, tag or commit.")] = None,
    json_: JsonFlag = False,
) -> None:
    """Download a model into the models folder; it is listed (lmx ls) when done."""
    body: dict[str, Any] = {"repo": repo}
    if file is not None:
        body["file"] = file
    if revision is not None:
        body["revision"] = revision
    with connect() as client, client.stream("POST", PULL_PATH, body) as events:
        result = _follow(events, repo)
    if json_:
        output.print_json(result)
        return
    output.say(f"Pulled {repo} as {result.get('id')} ({fmt.size(result.get('bytes'))})")
    output.note(f"  {result.get('path')}")


def _follow(events: Any, repo: str) -> dict[str, Any]:
    """Show each download's progress until the final event; its payload on success."""
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(binary_units=True),
        TextColumn("{task.fields[rate]}"),
        console=output.err(),
    )
    tasks: dict[str, TaskID] = {}
    with progress:
        for event in events:
            status = event.get("status")
            if status == "downloading":
                _advance(progress, tasks, event, repo)
            elif status == "success":
                return dict(event)
            elif status == "error":
                error = event.get("error") or {}
                raise CliError(f"pull failed: {error.get('message', error)}")
    raise CliError("the pull ended without saying whether it succeeded")


def _advance(progress: Progress, tasks: dict[str, TaskID], event: Any, repo: str) -> None:
    name = event.get("file") or repo
    if name not in tasks:
        tasks[name] = progress.add_task(name, total=event.get("total"), rate="")
    rate = event.get("rate_bytes_s")
    progress.update(
        tasks[name],
        completed=event.get("bytes", 0),
        total=event.get("total"),
        rate=f"{fmt.size(rate)}/s" if rate is not None else "",
    )
