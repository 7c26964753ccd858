"""`python -m llama_cpp.server`, with the same AMX workaround as our worker (without it,
llama.cpp faults on this CPU). Arguments are llama_cpp.server's own."""

from __future__ import annotations

import runpy

from workers.backends.llama_cpp.backend import _avoid_amx_if_present

if __name__ == "__main__":
    _avoid_amx_if_present()
    runpy.run_module("llama_cpp.server", run_name="__main__", alter_sys=True)
