"""The scheduler's rule (gateway.memory.turns): who loads, who makes way, and when to
look again, as a pure function of holders, wants, free memory and time."""

from __future__ import annotations

from dataclasses import replace

from gateway.memory.turns import IN_USE_GAP_S, Holder, TurnRules, Want, plan_turns

GB = 1024**3
NOW = 1000.0
RULES = TurnRules(min_resident_s=10.0)


def holder(model_id: str, **fields: object) -> Holder:
    base = Holder(
        model_id=model_id,
        bytes=5 * GB,
        ready=True,
        leaving=False,
        pinned=False,
        in_flight=0,
        ready_at=NOW - 60,  # its turn is long over
        released_at=NOW - 30,
        last_activity=NOW - 30,
    )
    return replace(base, **fields)  # type: ignore[arg-type]


def want(model_id: str, oldest: float = NOW - 1, needed: int = 5 * GB) -> Want:
    return Want(model_id, oldest, needed)


def test_a_model_that_fits_is_loaded_at_once() -> None:
    plan = plan_turns(NOW, 6 * GB, [holder("a")], [want("b")], RULES)
    assert plan.load == ("b",) and plan.close == {}


def test_an_idle_model_whose_turn_is_over_makes_way() -> None:
    plan = plan_turns(NOW, 1 * GB, [holder("a")], [want("b")], RULES)
    assert plan.load == () and plan.close == {"a": "b"}
    assert plan.waits_for == {"b": ("a",)}


def test_a_fresh_model_in_use_keeps_its_turn_and_the_plan_says_when_it_ends() -> None:
    fresh = holder("a", ready_at=NOW - 3, in_flight=1)
    plan = plan_turns(NOW, 1 * GB, [fresh], [want("b")], RULES)
    assert plan.close == {} and plan.load == ()
    assert plan.wake_at == NOW - 3 + 10
    assert plan.waits_for == {"b": ("a",)}


def test_a_fresh_model_idle_past_the_in_use_gap_makes_way_before_its_turn_ends() -> None:
    idle = holder("a", ready_at=NOW - 3, released_at=NOW - IN_USE_GAP_S - 0.1)
    assert plan_turns(NOW, 1 * GB, [idle], [want("b")], RULES).close == {"a": "b"}
    just_used = holder("a", ready_at=NOW - 3, released_at=NOW - 0.5)
    plan = plan_turns(NOW, 1 * GB, [just_used], [want("b")], RULES)
    assert plan.close == {} and plan.wake_at == NOW - 0.5 + IN_USE_GAP_S


def test_a_busy_model_whose_turn_is_over_closes_and_drains() -> None:
    # Requests keep coming for it, but the other model's waiter bounds its hold.
    busy = holder("a", in_flight=3, last_activity=NOW)
    assert plan_turns(NOW, 1 * GB, [busy], [want("b")], RULES).close == {"a": "b"}


def test_with_no_turn_length_every_waiter_closes_the_resident_at_once() -> None:
    fresh = holder("a", ready_at=NOW - 0.1, in_flight=1)
    plan = plan_turns(NOW, 1 * GB, [fresh], [want("b")], TurnRules(min_resident_s=0))
    assert plan.close == {"a": "b"}


def test_pinned_models_never_make_way_and_an_impossible_want_holds_nobody_up() -> None:
    holders = [holder("p", pinned=True, bytes=8 * GB), holder("a", bytes=2 * GB)]
    # "big" would need p gone too: passed over; "small" fits after a goes.
    wants = [want("big", NOW - 5, needed=9 * GB), want("small", NOW - 1, needed=2 * GB)]
    plan = plan_turns(NOW, 1 * GB, holders, wants, RULES)
    assert plan.close == {"a": "small"}
    assert set(plan.waits_for["big"]) == {"p", "a"}


def test_idle_victims_go_before_busy_ones_then_the_least_recently_used() -> None:
    holders = [
        holder("busy", in_flight=1, last_activity=NOW - 100),
        holder("recent", last_activity=NOW - 5),
        holder("oldest", last_activity=NOW - 50),
    ]
    plan = plan_turns(NOW, 0, holders, [want("w", needed=5 * GB)], RULES)
    assert plan.close == {"oldest": "w"}
    plan = plan_turns(NOW, 0, holders, [want("w", needed=10 * GB)], RULES)
    assert plan.close == {"oldest": "w", "recent": "w"}


def test_memory_goes_to_the_oldest_want_first_and_stays_promised() -> None:
    # a's turn is not over: b (older) waits for it; c (younger) would fit in what is free
    # now but must not take memory b was promised.
    fresh = holder("a", ready_at=NOW - 1, in_flight=1)
    wants = [want("c", NOW - 1, needed=2 * GB), want("b", NOW - 2, needed=6 * GB)]
    plan = plan_turns(NOW, 3 * GB, [fresh], wants, RULES)
    assert plan.load == () and plan.close == {}


def test_memory_already_on_its_way_back_is_waited_for_not_taken_again() -> None:
    holders = [holder("leaving", leaving=True), holder("a")]
    plan = plan_turns(NOW, 1 * GB, holders, [want("b")], RULES)
    assert plan.close == {} and plan.waits_for == {"b": ("leaving",)}


def test_a_model_with_older_waiters_of_its_own_is_kept() -> None:
    # a has requests older than b's: they are served first, a is not b's victim.
    holders = [holder("a")]
    wants = [want("a", NOW - 5, needed=5 * GB), want("b", NOW - 1)]
    plan = plan_turns(NOW, 1 * GB, holders, wants, RULES)
    assert plan.close == {}


def test_late_comers_for_a_closing_model_wait_for_its_next_turn() -> None:
    holders = [holder("a", closing=True, in_flight=1)]
    wants = [want("b", NOW - 5), want("a", NOW - 1)]
    plan = plan_turns(NOW, 1 * GB, holders, wants, RULES)
    assert plan.close == {"a": "b"}
    assert plan.waits_for["a"] == ("b",)


def test_a_closing_model_reopens_when_nobody_waits_for_its_memory_any_more() -> None:
    holders = [holder("a", closing=True)]
    plan = plan_turns(NOW, 1 * GB, holders, [want("a", NOW - 1)], RULES)
    assert plan.close == {}


def test_a_model_on_its_way_out_is_loaded_again_once_gone() -> None:
    holders = [holder("a", leaving=True)]
    plan = plan_turns(NOW, 1 * GB, holders, [want("a")], RULES)
    assert plan.load == () and plan.waits_for == {"a": ("a",)}


def test_a_loading_model_is_waited_for_not_evicted() -> None:
    loading = holder("a", ready=False, ready_at=0.0)
    plan = plan_turns(NOW, 1 * GB, [loading], [want("b")], TurnRules(min_resident_s=0))
    assert plan.close == {} and plan.wake_at is None  # its ready plans again


def test_no_eviction_when_the_config_forbids_it() -> None:
    rules = TurnRules(min_resident_s=10.0, may_evict=False)
    assert plan_turns(NOW, 1 * GB, [holder("a")], [want("b")], rules).close == {}


def test_alternating_clients_swap_once_per_turn_not_per_request() -> None:
    """A small simulation: client 1 always wants a, client 2 always wants b, one request
    at a time each; a request takes 0.5 s, a swap 2 s. With 5 s turns about ten requests
    share one; with none, every request swaps."""
    assert _simulate(TurnRules(min_resident_s=5.0)) <= 5
    assert _simulate(TurnRules(min_resident_s=0.0)) == 39


def _simulate(rules: TurnRules, requests: int = 20) -> int:
    resident, ready_at, now, swaps = "a", 0.0, 0.0, 0
    left = {"a": requests, "b": requests}
    waiting_since = {"a": 0.0, "b": 0.0}
    while any(left.values()):
        if left[resident]:  # the request that waited for it, then its client's next
            now += 0.5
            left[resident] -= 1
        other = "b" if resident == "a" else "a"
        if not left[other]:
            continue
        h = holder(resident, ready_at=ready_at, released_at=now)
        plan = plan_turns(now, 0, [h], [want(other, waiting_since[other])], rules)
        if plan.close or not left[resident]:
            now += 2.0
            swaps += 1
            waiting_since[resident] = now
            resident, ready_at = other, now
    return swaps
