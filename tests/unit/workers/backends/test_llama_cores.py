"""Threads per llama.cpp context follow the free cores."""

from __future__ import annotations

from workers.backends.llama_cpp.cores import CoreBudget


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
