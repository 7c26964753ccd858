from gateway.fleet.states import ALLOWED, State, worker_machine
from workers.contract.state_machine import StateMachine


def test_allowed_transition_is_applied() -> None:
    machine = worker_machine("m")
    assert machine.move(State.LOADING)
    assert machine.state is State.LOADING


def test_disallowed_transition_is_refused_and_state_kept() -> None:
    machine = worker_machine("m")
    assert not machine.move(State.DRAINING)
    assert machine.state is State.UNLOADED


def test_compare_and_swap_refuses_when_state_moved_on() -> None:
    # LOADING -> STOPPING is in the table; only the expectation refuses it.
    machine = StateMachine("m", ALLOWED, State.LOADING)
    assert not machine.move(State.STOPPING, expect=State.READY)
    assert machine.state is State.LOADING
    assert machine.move(State.STOPPING, expect=State.LOADING)
