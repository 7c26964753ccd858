"""`lmx requests` (what the gateway is serving now) and `lmx cancel ID`."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

import typer

from gateway.cli import output
from gateway.cli.client import connect
from gateway.cli.options import JsonFlag
from gateway.cli.tables import requests_table


def requests(json_: JsonFlag = False) -> None:
    """The requests in flight: model, route, state, age, tokens so far, client."""
    with connect() as client:
        rows = client.get("/admin/requests").get("data", [])
    if json_:
        output.print_json(rows)
    elif rows:
        output.out().print(requests_table(rows))
    else:
        output.note("No request in flight.")


def cancel(
    request_id: Annotated[
        str, typer.Argument(metavar="ID", help="A request id from lmx requests.")
    ],
) -> None:
    """Stop a request in flight (its client gets the end of the stream)."""
    with connect() as client:
        client.delete(f"/admin/requests/{quote(request_id, safe='')}")
    output.say(f"Cancelled {request_id}")
