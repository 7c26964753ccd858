"""Forwarding a request to a worker (forward.py: alias chains, retries) over the
gateway's own HTTP/1.1 client (upstream.py), and relaying its answer back (relay.py)."""
