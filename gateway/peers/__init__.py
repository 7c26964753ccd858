"""Other Opta-LMX gateways this one routes to (the config's `peers`): what each one serves
as its /v1/models says (state.py, read by refresh.py), which host answers a request
(hosts.py), and the set of them kept current across reloads (directory.py).

Each host stays a whole Opta-LMX of its own; nothing is shared but HTTP.
"""

from gateway.peers.directory import Peers
from gateway.peers.hosts import HOP_HEADER, PeerModel, Target, from_peer

__all__ = ["HOP_HEADER", "PeerModel", "Peers", "Target", "from_peer"]
