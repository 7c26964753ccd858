"""Section 7: the worker's own cost and the gateway's relay, against the goals, side by
side in one run.

The library in-process (llama-cpp-python's own chat stream, model kept loaded), our
worker directly and through the gateway take turns, round after round, the order
rotating, so the machine's moods fall on all three alike; medians of the per-round
ratios are reported. The relay of unpaced streams (a scripted worker answering as fast
as it can) comes from section 1's measurement, run here too.

Also reported, to explain the figures: where the worker's CPU goes per token (its event
loop thread against llama.cpp's threads) and how busy the rest of the machine was.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psutil

from scripts.benchmarks import proxy_bench, report
from scripts.benchmarks.inprocess import InProcessLlama
from scripts.benchmarks.stacks import (
    LLAMA_ID,
    real_stack,
    worker_process,
    worker_url,
)
from scripts.benchmarks.streams import Sample, http_stream

MAX_TOKENS = 128
FRESH_TOKENS = 4
# Between turns: the worker sizes llama.cpp's threads by what other processes used in
# the last half second (workers.backends.llama_cpp.cores), and the library taking its
# turn just before is such a process. A pause lets that measurement see the machine as
# it is when the worker's turn starts.
PAUSE_S = 1.2
GOALS = {"decode": 0.95, "ttft_ms": 5.0, "relay": 0.95}
PATHS = ("in-process library", "our worker, direct", "through the gateway")


# A round counts as quiet when other processes kept at most this many cores busy during
# each of its turns; the goals are judged on quiet rounds when there are enough of them.
QUIET_CORES = 0.15
MIN_QUIET_ROUNDS = 3


def run(quick: bool) -> dict[str, Any]:
    rounds = 3 if quick else 9
    results = {"max_tokens": MAX_TOKENS, "rounds": rounds, **side_by_side(rounds)}
    results["relay"] = proxy_bench.run_streams(quick)
    return results


def side_by_side(rounds: int) -> dict[str, Any]:
    with InProcessLlama() as library, real_stack([LLAMA_ID], auto_load=True) as stack:
        direct = worker_url(stack, LLAMA_ID)
        turns = Turns(
            {
                PATHS[0]: library.sample,
                PATHS[1]: lambda tokens, salt: http_stream(direct, tokens, LLAMA_ID, salt=salt),
                PATHS[2]: lambda tokens, salt: http_stream(stack.url, tokens, LLAMA_ID, salt=salt),
            },
            ThreadCpu(worker_process(stack, LLAMA_ID).pid),
        )
        return turns.measure(rounds)


Measure = Callable[[int, str | None], Sample]


class Turns:
    """The three paths taking turns, round after round, and what each turn measured."""

    def __init__(self, paths: dict[str, Measure], worker_threads: ThreadCpu) -> None:
        self.paths = paths
        self.threads = worker_threads
        self.others = OtherCpu(psutil.Process())
        self.direct_tokens = 0

    def measure(self, rounds: int) -> dict[str, Any]:
        for measure in self.paths.values():  # warm: first requests after a load can crawl
            measure(32, None)
            measure(32, None)
        whole = self.others.mark()
        samples, noise = self._rounds(rounds, salted=False)
        # Then prompts nobody has seen, the whole prompt prefilled (after the rounds above:
        # the library keeps one context, which a new prompt takes from the repeated one).
        fresh, _ = self._rounds(rounds, salted=True)
        quiet = [i for i, cores in enumerate(noise) if cores <= QUIET_CORES]
        judged = quiet if len(quiet) >= MIN_QUIET_ROUNDS else list(range(rounds))
        return {
            "paths": {path: _summary(found) for path, found in samples.items()},
            "paired": _paired({p: [found[i] for i in judged] for p, found in samples.items()}),
            "paired_all_rounds": _paired(samples),
            "judged_rounds": len(judged),
            "quiet_rounds": len(quiet),
            "round_noise_cores": [round(cores, 2) for cores in noise],
            "fresh_prompt_ttft_ms": {path: _ttft_ms(found) for path, found in fresh.items()},
            "fresh_prompt_ttft_delta_ms": _ttft_delta_ms(fresh[PATHS[1]], fresh[PATHS[0]]),
            "worker_cpu_us_per_token": self.threads.per_token(self.direct_tokens),
            "other_processes_cores": whole.cores(),
        }

    def _rounds(self, rounds: int, salted: bool) -> tuple[dict[str, list[Sample]], list[float]]:
        """Each path's samples, and per round the most cores others kept busy in a turn."""
        samples: dict[str, list[Sample]] = {path: [] for path in PATHS}
        noise: list[float] = []
        for index in range(rounds):
            busiest = 0.0
            for path in PATHS[index % 3 :] + PATHS[: index % 3]:  # rotating: none always first
                time.sleep(PAUSE_S)
                # Each path its own new prompt: direct and the gateway share one worker.
                salt = f"{index}{PATHS.index(path)}" if salted else None
                turn = self.others.mark()
                samples[path].append(self._turn(path, salt))
                busiest = max(busiest, turn.cores())
            noise.append(busiest)
        return samples, noise

    def _turn(self, path: str, salt: str | None) -> Sample:
        tokens = FRESH_TOKENS if salt else MAX_TOKENS
        if path != PATHS[1] or salt:
            return self.paths[path](tokens, salt)
        self.threads.start()
        sample = self.paths[path](tokens, salt)
        self.threads.stop()
        self.direct_tokens += sample.tokens
        return sample


def _summary(samples: list[Sample]) -> dict[str, Any]:
    return {
        "ttft_ms": statistics.median(s.ttft_s for s in samples) * 1e3,
        "decode_tps": statistics.median(s.decode_tps for s in samples),
        "tokens": statistics.median(s.tokens for s in samples),
        "decode_tps_each": [round(s.decode_tps, 1) for s in samples],
        "ttft_ms_each": [round(s.ttft_s * 1e3, 1) for s in samples],
    }


def _paired(samples: dict[str, list[Sample]]) -> dict[str, float]:
    """Medians of the per-round comparisons."""
    library, direct, gateway = (samples[path] for path in PATHS)

    def ratio(a: list[Sample], b: list[Sample]) -> float:
        return statistics.median(x.decode_tps / y.decode_tps for x, y in zip(a, b, strict=True))

    return {
        "decode_direct_vs_library": ratio(direct, library),
        "decode_gateway_vs_library": ratio(gateway, library),
        "decode_gateway_vs_direct": ratio(gateway, direct),
        "ttft_direct_minus_library_ms": _ttft_delta_ms(direct, library),
        "ttft_gateway_minus_library_ms": _ttft_delta_ms(gateway, library),
        "ttft_gateway_minus_direct_ms": _ttft_delta_ms(gateway, direct),
    }


def _ttft_delta_ms(a: list[Sample], b: list[Sample]) -> float:
    return statistics.median((x.ttft_s - y.ttft_s) * 1e3 for x, y in zip(a, b, strict=True))


def _ttft_ms(samples: list[Sample]) -> float:
    return statistics.median(s.ttft_s for s in samples) * 1e3


class ThreadCpu:
    """CPU seconds of one process's threads, split into its main thread (the worker's
    event loop) and the rest (llama.cpp's generation and compute threads)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.loop = 0.0
        self.rest = 0.0
        self._started: tuple[float, float] = (0.0, 0.0)

    def start(self) -> None:
        self._started = self._read()

    def stop(self) -> None:
        loop, total = self._read()
        self.loop += loop - self._started[0]
        self.rest += (total - loop) - (self._started[1] - self._started[0])

    def per_token(self, tokens: int) -> dict[str, float]:
        tokens = max(1, tokens)
        return {"event_loop": self.loop / tokens * 1e6, "generation": self.rest / tokens * 1e6}

    def _read(self) -> tuple[float, float]:
        main = psutil.Process(self.pid)
        total = sum(t.user_time + t.system_time for t in main.threads())
        loop = next(t for t in main.threads() if t.id == self.pid)
        return loop.user_time + loop.system_time, total


class OtherCpu:
    """Cores kept busy by processes other than this one and its descendants (the stack,
    the library) over a window: mark() opens one, its cores() reads it."""

    def __init__(self, root: psutil.Process) -> None:
        self._root = root

    def mark(self) -> Window:
        return Window(time.monotonic(), _busy(), self.our_cpu(), self)

    def our_cpu(self) -> float:
        total = 0.0
        for member in [self._root, *self._root.children(recursive=True)]:
            try:
                times = member.cpu_times()
            except psutil.NoSuchProcess:
                continue
            total += times.user + times.system
        return total


@dataclass(frozen=True)
class Window:
    started: float
    busy: float
    ours: float
    meter: OtherCpu

    def cores(self) -> float:
        elapsed = time.monotonic() - self.started
        others = (_busy() - self.busy) - (self.meter.our_cpu() - self.ours)
        return max(0.0, others / elapsed) if elapsed > 0 else 0.0


def _busy() -> float:
    times = psutil.cpu_times()
    return float(sum(times) - times.idle - getattr(times, "iowait", 0.0))


def text(results: dict[str, Any]) -> str:
    paths = results["paths"]
    base = paths[PATHS[0]]["decode_tps"]
    header = ["path", "TTFT ms", "decode tok/s", "vs in-process"]
    rows = [
        [path, f"{found['ttft_ms']:.1f}", f"{found['decode_tps']:.1f}",
         f"{found['decode_tps'] / base:.2f}x" if base else ""]
        for path, found in paths.items()
    ]  # fmt: skip
    title = (
        f"7. the worker's own cost: llama_cpp, {results['max_tokens']} tokens, temperature 0,"
        f" median of {results['rounds']} rounds taking turns"
    )
    lines = [report.table(title, header, rows), "", _goals(results), "", _why(results)]
    return "\n".join(lines)


def _goals(results: dict[str, Any]) -> str:
    paired, relay = results["paired"], results["relay"]
    decode, ttft = paired["decode_direct_vs_library"], paired["ttft_direct_minus_library_ms"]
    rows = [
        _goal("decode: our worker / in-process library", f"{decode:.2f}x",
              decode >= GOALS["decode"], f">= {GOALS['decode']:.2f}x"),
        _goal("TTFT: our worker - in-process library", f"{ttft:+.1f} ms",
              ttft <= GOALS["ttft_ms"], f"<= +{GOALS['ttft_ms']:g} ms"),
        ["  (TTFT, a prompt no cache holds: worker - in-process)",
         f"{results['fresh_prompt_ttft_delta_ms']:+.1f} ms", "", ""],
        _goal("decode: through the gateway / direct (paced relay)",
              f"{paired['decode_gateway_vs_direct']:.2f}x",
              paired["decode_gateway_vs_direct"] >= GOALS["relay"], f">= {GOALS['relay']:.2f}x"),
        ["  (through the gateway / in-process: decode, TTFT)",
         f"{paired['decode_gateway_vs_library']:.2f}x",
         "", f"{paired['ttft_gateway_minus_library_ms']:+.1f} ms"],
    ]  # fmt: skip
    for key, label in (("stream_1", "1 stream"), ("stream_16", "16 streams")):
        case = relay[key]
        ratio = case["gateway"]["chunks_per_s"] / case["direct"]["chunks_per_s"]
        rows.append(
            _goal(f"relay chunks/s, {label} unpaced: gateway / direct", f"{ratio:.2f}x",
                  ratio >= GOALS["relay"], f">= {GOALS['relay']:.2f}x")
        )  # fmt: skip
    judged, quiet = results["judged_rounds"], results["quiet_rounds"]
    basis = (
        f"the {judged} quiet rounds (other processes <= {QUIET_CORES:g} cores in every turn)"
        if quiet >= MIN_QUIET_ROUNDS
        else f"all {judged} rounds (only {quiet} quiet: noisy machine, read with care)"
    )
    title = f"goals (issue 9); side-by-side ratios: medians over {basis}"
    return report.table(title, ["what", "measured", "goal", "verdict"], rows)


def _goal(label: str, measured: str, ok: bool, goal: str) -> list[str]:
    return [label, measured, goal, "ok" if ok else "MISSED"]


def _why(results: dict[str, Any]) -> str:
    cpu, relayed = results["worker_cpu_us_per_token"], results["relay"]["stream_16"]["gateway"]
    worker_us, gateway_us = relayed["worker_cpu_ms"] * 1e3, relayed["gateway_cpu_ms"] * 1e3
    others = results["other_processes_cores"]
    return "\n".join(
        [
            f"worker CPU per token, direct: event loop {cpu['event_loop']:.0f} us,"
            f" llama.cpp threads {cpu['generation']:.0f} us",
            f"relay CPU per chunk, 16 unpaced streams through the gateway: worker"
            f" {worker_us:.1f} us, gateway {gateway_us:.1f} us",
            f"other processes kept {others:.2f} of {os.cpu_count()} cores busy meanwhile"
            " (llama.cpp's threads wait for each other: any of it slows decoding)",
        ]
    )
