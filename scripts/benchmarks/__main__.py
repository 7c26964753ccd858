"""./scripts/bench: what the gateway costs, and how fast each backend runs here.

python -m scripts.benchmarks [--quick]
    [--only proxy|backends|concurrency|cold|agent|thrash|overhead]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from scripts.benchmarks import report
from scripts.benchmarks.load import generator

REPO = Path(__file__).resolve().parents[2]
SECTIONS = ("proxy", "backends", "concurrency", "cold", "agent", "thrash", "overhead")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    chosen = [args.only] if args.only else list(SECTIONS)
    record: dict[str, Any] = {
        "machine": report.machine(),
        "load_generator": generator(),
        "quick": args.quick,
        "sections": {},
    }
    print(f"load generator: {record['load_generator']}; machine: {record['machine']}", flush=True)
    for name in chosen:
        started = time.monotonic()
        results, text = _RUNNERS[name](args.quick)
        results["section_seconds"] = round(time.monotonic() - started, 1)
        record["sections"][name] = results
        print("\n" + text, flush=True)
    path = report.write_json(REPO / "run", record)
    print(f"\nwritten: {path.relative_to(REPO)}")
    return 0


def _proxy(quick: bool) -> tuple[dict[str, Any], str]:
    from scripts.benchmarks import proxy_bench

    results = proxy_bench.run(quick)
    return results, proxy_bench.text(results)


def _backends(quick: bool) -> tuple[dict[str, Any], str]:
    from scripts.benchmarks import backends_bench

    results = backends_bench.run(quick)
    return results, backends_bench.text(results)


def _concurrency(quick: bool) -> tuple[dict[str, Any], str]:
    from scripts.benchmarks import concurrency_bench

    results = concurrency_bench.run(quick)
    return results, concurrency_bench.text(results)


def _cold(quick: bool) -> tuple[dict[str, Any], str]:
    from scripts.benchmarks import cold_bench

    results = cold_bench.run(quick)
    return results, cold_bench.text(results)


def _agent(quick: bool) -> tuple[dict[str, Any], str]:
    from scripts.benchmarks import agent_bench

    results = agent_bench.run(quick)
    return results, agent_bench.text(results)


def _thrash(quick: bool) -> tuple[dict[str, Any], str]:
    from scripts.benchmarks import thrash_bench

    results = thrash_bench.run(quick)
    return results, thrash_bench.text(results)


def _overhead(quick: bool) -> tuple[dict[str, Any], str]:
    from scripts.benchmarks import overhead_bench

    results = overhead_bench.run(quick)
    return results, overhead_bench.text(results)


_RUNNERS: dict[str, Callable[[bool], tuple[dict[str, Any], str]]] = {
    "proxy": _proxy,
    "backends": _backends,
    "concurrency": _concurrency,
    "cold": _cold,
    "agent": _agent,
    "thrash": _thrash,
    "overhead": _overhead,
}


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="scripts/bench", description=__doc__)
    p.add_argument("--quick", action="store_true", help="fewer and shorter runs")
    p.add_argument("--only", choices=SECTIONS, help="run one section")
    return p


if __name__ == "__main__":
    sys.exit(main())
