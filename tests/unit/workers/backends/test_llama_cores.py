"""Threads per llama.cpp context follow the free cores."""

from __future__ import annotations

import threading

from workers.backends.llama_cpp.cores import REFRESH_S, CoreBudget


class FakeMachine:
    """Cumulative CPU seconds for a machine where others keep `others` cores busy."""

    def __init__(self, others: float, own: float = 0.0) -> None:
        self.now = 0.0
        self.others = others
        self.own = own

    def clock(self) -> float:
        return self.now

    def sample(self) -> tuple[float, float]:
        return (self.others + self.own) * self.now, self.own * self.now

    def budget(self, cores: int) -> CoreBudget:
        return CoreBudget(cores, sample=self.sample, clock=self.clock)


def test_an_idle_machine_gives_one_context_every_core() -> None:
    machine = FakeMachine(others=0.0, own=2.0)
    budget = machine.budget(8)
    machine.now = 1.0
    assert budget.threads(active_contexts=1) == 8


def test_active_contexts_split_the_cores() -> None:
    machine = FakeMachine(others=0.0)
    budget = machine.budget(8)
    machine.now = 1.0
    assert budget.threads(active_contexts=4) == 2
    assert budget.threads(active_contexts=16) == 1


def test_cores_busy_elsewhere_are_left_alone() -> None:
    machine = FakeMachine(others=1.0, own=1.0)
    budget = machine.budget(2)
    machine.now = 1.0
    assert budget.threads(active_contexts=1) == 1
    assert budget.others_busy == 1.0


def test_a_fully_busy_machine_still_gets_one_thread() -> None:
    machine = FakeMachine(others=8.0)
    budget = machine.budget(8)
    machine.now = 1.0
    assert budget.threads(active_contexts=1) == 1


class BurstMachine(FakeMachine):
    """Others keep `others` cores busy until `until`, then nothing."""

    def __init__(self, others: float, until: float) -> None:
        super().__init__(others)
        self.until = until

    def sample(self) -> tuple[float, float]:
        return self.others * min(self.now, self.until), 0.0


def test_a_burst_elsewhere_that_ended_is_not_averaged_into_the_next_request() -> None:
    machine = BurstMachine(others=2.0, until=2.0)
    stale, fresh = machine.budget(2), machine.budget(2)
    # The background sampler measures every half second (here: by hand, on the fake clock).
    for step in range(1, 7):
        machine.now = step * REFRESH_S
        fresh._refresh()
    machine.now = 3.0
    assert fresh.threads(active_contexts=1) == 2  # the last half second was quiet
    assert stale.threads(active_contexts=1) == 1  # 4 core-seconds over 3 s: looks busy


def test_the_sampler_measures_in_the_background_until_stopped() -> None:
    samples = threading.Semaphore(0)

    def sample() -> tuple[float, float]:
        samples.release()
        return 0.0, 0.0

    budget = CoreBudget(2, sample=sample)
    assert samples.acquire(timeout=1)  # the first, from the constructor
    budget.start()
    try:
        assert samples.acquire(timeout=5 * REFRESH_S)
        assert samples.acquire(timeout=5 * REFRESH_S)
    finally:
        budget.stop()
    assert budget._sampler is not None
    budget._sampler.join(timeout=5 * REFRESH_S)
    assert not budget._sampler.is_alive()
