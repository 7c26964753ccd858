"""What a worker publishes and the gateway reads: the one copy both programs share.

The error envelope, the key check, request bodies and their limit, SSE framing, the
settings a worker is started with and the typed `/health` document. Nothing here
imports the rest of `workers`, and `workers` imports nothing from `gateway`; the
import-linter contracts in pyproject.toml keep both true.
"""
