"""memwatch, its own supervisord program (an event listener on TICK_5): keeps each
worker under its max_rss_gb and the machine under its threshold. `python -m gateway.memwatch`."""
