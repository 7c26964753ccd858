"""Every configured model's worker: its state machine (states.py), what the gateway
knows of it (worker_handle.py), loading and unloading (fleet.py), supervisord's XML-RPC
client (supervisor.py) and program files (programs.py), and the per-tick watch (watch.py)."""
