"""Which hosts may answer a request, in the order to try them.

The rule: a model ready somewhere beats a load anywhere (the alias chain's order first,
then this host before a peer); after the ready ones, this host's loads, then the peers'.
So a model configured here is answered here unless this host would have to load it while
a peer has it ready; a model only peers have goes to them, ready ones first.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from starlette.types import Scope

# A request a peer forwarded here carries this header, and is answered here or not at all:
# a request travels one hop at most, so two gateways that list each other cannot loop.
HOP_HEADER = "x-lmx-hop"
_HOP = HOP_HEADER.encode()


@dataclass(frozen=True)
class PeerModel:
    """A model as one peer serves it."""

    peer: str
    model: str  # its id on the peer
    ready: bool = False

    @property
    def id(self) -> str:
        """How this gateway names it: `peer/model-id`."""
        return f"{self.peer}/{self.model}"


# A model id is this host's model; a PeerModel is a peer's.
Target = str | PeerModel


def order_hosts(
    chain: Sequence[str],
    local_ready: Mapping[str, bool],
    on_peers: Mapping[str, Sequence[PeerModel]],
) -> list[Target]:
    """`local_ready`: the chain's models configured here, and whether each is ready;
    `on_peers`: the peers that list each model (reachable ones only)."""
    candidates: list[tuple[bool, Target]] = []
    for model_id in chain:
        if model_id in local_ready:
            candidates.append((local_ready[model_id], model_id))
        candidates += [(p.ready, p) for p in on_peers.get(model_id, ())]
    ready = [target for is_ready, target in candidates if is_ready]
    return ready + [target for is_ready, target in candidates if not is_ready]


def from_peer(scope: Scope) -> bool:
    return any(name == _HOP for name, _ in scope.get("headers", ()))
