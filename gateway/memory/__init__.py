"""Memory: what the machine has (probe.py), whether a model fits (admission.py, with the
footprint estimate from gguf_meta.py), and which model goes first (eviction.py)."""
