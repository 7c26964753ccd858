"""Arguments and options that several commands share."""

from __future__ import annotations

from typing import Annotated

import typer

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
ModelArg = Annotated[
    str, typer.Argument(metavar="ID", help="A model id or alias.", show_default=False)
]
