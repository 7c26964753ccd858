"""The worker's HTTP routes, one module per endpoint, thin; boundary.py wraps them all
(keys, the error envelope, one log line per request)."""
