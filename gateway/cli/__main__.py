"""python -m gateway.cli: the same as the `lmx` console script."""

from gateway.cli import main

main()
