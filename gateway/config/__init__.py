"""config/lmx.yaml: schema.py holds every key and default, loader.py reads and checks it."""
