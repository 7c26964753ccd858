"""The `lmx` command (placeholder until the CLI lands)."""

import sys


def main() -> None:
    sys.exit("lmx: not built yet")
