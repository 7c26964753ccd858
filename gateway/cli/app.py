"""The `lmx` command line: every command, registered in the order `lmx --help` lists them."""

from __future__ import annotations

import os

import typer

from gateway.cli import bench, chat, logs, models, pull, service, traffic
from gateway.cli.client import CliError
from gateway.cli.settings import CHECKOUT

app = typer.Typer(
    name="lmx",
    help="Opta-LMX from the terminal: serve, load, chat with and inspect local models.\n\n"
    "Talks to the gateway at LMX_URL (default: the port in config/lmx.yaml, 1234), "
    "with LMX_ADMIN_KEY / LMX_API_KEY when the gateway needs keys.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@app.command()
def serve() -> None:
    """Run Opta-LMX in the foreground (what ./scripts/serve does; Ctrl-C stops it)."""
    script = CHECKOUT / "scripts" / "serve"
    if not script.exists():
        raise CliError(f"{script} is missing: lmx serve runs the checkout's scripts/serve")
    os.execv(script, [str(script)])


app.command()(models.status)
app.command()(models.ls)
app.command()(models.ps)
app.command()(models.load)
app.command()(models.unload)
app.command()(chat.run)
app.command()(chat.chat)
app.command()(pull.pull)
app.command()(models.rm)
app.command()(logs.logs)
app.command()(bench.bench)
app.command()(traffic.requests)
app.command()(traffic.cancel)
app.add_typer(service.app, name="service")
