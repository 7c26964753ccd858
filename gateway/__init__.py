"""The gateway: one OpenAI- and Anthropic-compatible port in front of every model.

A request's path through the tree: app.py (dispatch) -> routes/ (one module per API)
-> routing.py (model name -> chain of ids) -> fleet/ (make the worker ready: memory/
admission, supervisord) -> proxy/ (forward to the worker, relay its answer back).
service.py builds those parts once from config/; memwatch/ is a separate supervisord
program. What the gateway knows of workers comes from workers.contract only.
"""
