"""Request bodies parsed once, at the edge, into typed objects (parse.py, fields.py)."""
