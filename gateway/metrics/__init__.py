"""GET /metrics in Prometheus text format: counts taken as things happen (counters.py:
finished requests, fleet events) and gauges read at scrape time from the objects
/admin/status reads (fleet_gauges.py), so /metrics and the dashboard agree."""
