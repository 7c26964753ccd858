"""`lmx bench ID`: the gateway's benchmark of a model, as a table of runs and a summary."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from gateway.cli import formatting as fmt
from gateway.cli import output
from gateway.cli.client import connect
from gateway.cli.options import JsonFlag, ModelArg
from gateway.cli.tables import bench_table


def bench(
    model: ModelArg,
    runs: Annotated[int | None, typer.Option("--runs", min=1, help="How many generations.")] = None,
    max_tokens: Annotated[
        int | None, typer.Option("--max-tokens", min=1, help="Tokens per generation.")
    ] = None,
    concurrency: Annotated[
        int | None, typer.Option("--concurrency", min=1, help="Generations at once.")
    ] = None,
    prompt: Annotated[str | None, typer.Option("--prompt", help="What to generate from.")] = None,
    json_: JsonFlag = False,
) -> None:
    """Measure time to first token and tokens per second (the model is loaded if needed)."""
    fields = {"runs": runs, "max_tokens": max_tokens, "concurrency": concurrency, "prompt": prompt}
    body: dict[str, Any] = {"model": model, **{k: v for k, v in fields.items() if v is not None}}
    with connect() as client, output.err().status(f"Benchmarking {model}…"):
        result = client.post("/admin/benchmark", body, model=model)
    if json_:
        output.print_json(result)
        return
    output.out().print(bench_table(result))
    s = result.get("summary") or {}
    output.say(
        f"{result.get('model', model)}: first token {fmt.millis(s.get('ttft_ms_p50'))} median "
        f"({fmt.millis(s.get('ttft_ms_max'))} max), "
        f"{fmt.rate(s.get('tokens_per_s_mean'), 'tok')} per generation, "
        f"{fmt.rate(s.get('total_tokens_per_s'), 'tok')} in all"
    )
