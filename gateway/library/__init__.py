"""The model library: every GGUF file and MLX folder under models_dir is a model. What
counts (scan.py), the ids derived from names (naming.py), the context a model was made
for (context.py), the watch that keeps the gateway's list true to the folder (watch.py);
pulling models from a hub (pull_spec.py, download.py, pulls.py) and deleting them
(removal.py)."""
