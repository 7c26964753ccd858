"""The models under models_dir: pulling them from a hub, deleting them."""
