"""The model commands: status, ls, ps, load, unload, rm."""

from __future__ import annotations

import time
from typing import Annotated, Any
from urllib.parse import quote

import typer
from rich.table import Table

from gateway.cli import formatting as fmt
from gateway.cli import output
from gateway.cli.client import Client, connect
from gateway.cli.listing import LOADED_STATES, model_rows, process_rows
from gateway.cli.options import JsonFlag, ModelArg
from gateway.cli.tables import models_table, processes_table


def status(json_: JsonFlag = False) -> None:
    """Is the gateway up; memory; which models are loaded."""
    with connect() as client:
        client.get("/healthz")
        report = client.get("/admin/status")
    loaded = [m for m in report["models"] if m.get("status") in LOADED_STATES]
    if json_:
        output.print_json({"url": client.url, "up": True, **report})
        return
    grid = Table.grid(padding=(0, 2))
    grid.add_row("[bold]Gateway[/]", f"{client.url} [green]up[/]")
    grid.add_row("[bold]Memory[/]", _memory_line(report.get("memory") or {}))
    grid.add_row("[bold]Models[/]", f"{len(loaded)} loaded of {len(report['models'])}")
    for m in loaded:
        rss = f", {fmt.size(m.get('rss_bytes'))} RSS" if m.get("rss_bytes") else ""
        grid.add_row("", f"{m['id']} ({m['status']}{rss})")
    output.out().print(grid)


def _memory_line(memory: dict[str, Any]) -> str:
    if "total_bytes" not in memory:
        return fmt.DASH
    used, total = fmt.size(memory.get("used_bytes")), fmt.size(memory["total_bytes"])
    line = f"{used} used of {total}, {fmt.size(memory.get('available_bytes'))} available"
    if memory.get("threshold_percent") is not None:
        limit = fmt.size(memory.get("threshold_bytes"))
        line += f"; loads must fit under {memory['threshold_percent']:g}% ({limit})"
    return line


def ls(json_: JsonFlag = False) -> None:
    """Every model: backend, size on disk, context, state, aliases."""
    with connect() as client:
        models = client.get("/admin/status")["models"]
        listing = client.get("/v1/models")["data"]
    rows = model_rows(models, listing)
    if json_:
        output.print_json(rows)
    else:
        output.out().print(models_table(rows))


def ps(json_: JsonFlag = False) -> None:
    """The loaded models: pid, port, RSS, requests in flight and queued, idle time, TTL left."""
    with connect() as client:
        models = client.get("/admin/status")["models"]
    rows = process_rows(models, time.time())
    if json_:
        output.print_json(rows)
    elif rows:
        output.out().print(processes_table(rows))
    else:
        output.note("No model is loaded.")


def load(
    model: ModelArg,
    ttl: Annotated[
        float | None,
        typer.Option("--ttl", min=0, help="Unload after this many idle seconds (0: never)."),
    ] = None,
    json_: JsonFlag = False,
) -> None:
    """Load a model and wait until it is ready."""
    body: dict[str, Any] = {"model": model}
    if ttl is not None:
        body["ttl_s"] = ttl
    with connect() as client, output.err().status(f"Loading {model}…"):
        result = client.post("/admin/models/load", body, model=model)
    if json_:
        output.print_json(result)
    elif result.get("already_loaded"):
        output.say(f"{result['id']} was already loaded (port {result.get('port')})")
    else:
        took = fmt.duration(result.get("load_seconds"))
        output.say(f"Loaded {result['id']} in {took} (port {result.get('port')})")


def unload(
    model: Annotated[
        str | None, typer.Argument(metavar="ID", help="A model id or alias.", show_default=False)
    ] = None,
    all_: Annotated[bool, typer.Option("--all", help="Unload every loaded model.")] = False,
    json_: JsonFlag = False,
) -> None:
    """Unload a model (after its requests in flight finish), or every model with --all."""
    if (model is None) == (not all_):
        raise typer.BadParameter("name one model, or use --all")
    with connect() as client:
        names = [model] if model is not None else _loaded(client)
        results = []
        for name in names:
            started = time.monotonic()
            results.append(_unload_one(client, name))
            if not json_:
                took = fmt.duration(time.monotonic() - started)
                output.say(f"Unloaded {results[-1].get('id', name)} in {took}")
    if json_:
        output.print_json(results)
    elif not results:
        output.note("No model is loaded.")


def _loaded(client: Client) -> list[str]:
    models = client.get("/admin/status")["models"]
    return [m["id"] for m in models if m.get("status") in LOADED_STATES]


def _unload_one(client: Client, name: str) -> Any:
    with output.err().status(f"Unloading {name}…"):
        return client.post("/admin/models/unload", {"model": name}, model=name)


def rm(
    model: ModelArg,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    json_: JsonFlag = False,
) -> None:
    """Delete a downloaded model's files."""
    if not yes:
        typer.confirm(f"Delete {model} and its files from disk?", abort=True, err=True)
    with connect() as client:
        result = client.delete(f"/admin/models/{quote(model, safe='')}", model=model)
    if json_:
        output.print_json(result)
        return
    output.say(f"Deleted {result.get('id', model)}")
    for path in result.get("deleted", []):
        output.note(f"  {path}")
