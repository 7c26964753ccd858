"""Which host answers: ready before a load, the chain's order, this host before a peer."""

from gateway.peers.hosts import PeerModel, from_peer, order_hosts


def test_a_model_ready_here_is_answered_here_even_when_a_peer_has_it_ready() -> None:
    on_b = PeerModel("b", "m", ready=True)
    assert order_hosts(["m"], {"m": True}, {"m": [on_b]}) == ["m", on_b]


def test_a_peer_that_has_it_ready_beats_a_load_here() -> None:
    on_b = PeerModel("b", "m", ready=True)
    assert order_hosts(["m"], {"m": False}, {"m": [on_b]}) == [on_b, "m"]


def test_ready_nowhere_loads_here_first_then_on_peers() -> None:
    on_b, on_c = PeerModel("b", "m"), PeerModel("c", "m")
    assert order_hosts(["m"], {"m": False}, {"m": [on_b, on_c]}) == ["m", on_b, on_c]


def test_a_model_only_on_peers_goes_to_the_ready_ones_first() -> None:
    on_b, on_c = PeerModel("b", "m"), PeerModel("c", "m", ready=True)
    assert order_hosts(["m"], {}, {"m": [on_b, on_c]}) == [on_c, on_b]


def test_an_alias_chain_keeps_its_order_among_ready_hosts() -> None:
    # The alias prefers `big`: ready on a peer, it beats `small` ready here.
    big_on_b = PeerModel("b", "big", ready=True)
    hosts = order_hosts(["big", "small"], {"big": False, "small": True}, {"big": [big_on_b]})
    assert hosts == [big_on_b, "small", "big"]


def test_nothing_anywhere_is_an_empty_plan() -> None:
    assert order_hosts(["m"], {}, {}) == []


def test_a_peer_model_is_named_peer_slash_id() -> None:
    assert PeerModel("studio", "qwen-7b").id == "studio/qwen-7b"


def test_a_forwarded_request_is_known_by_its_hop_header() -> None:
    assert from_peer({"headers": [(b"x-lmx-hop", b"1")]})
    assert not from_peer({"headers": [(b"authorization", b"Bearer k")]})
    assert not from_peer({})
