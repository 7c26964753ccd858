"""./scripts/bench: the benchmarks (run as `python -m scripts.benchmarks`)."""
