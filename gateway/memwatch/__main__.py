"""`python -m gateway.memwatch`: the supervisord event listener (see listener.py)."""

from gateway.memwatch.listener import main

main()
