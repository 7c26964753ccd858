"""MLX models through mlx-lm (backend.py), and the offline GGUF -> MLX converter
(`python -m workers.backends.mlx.convert_gguf`, what scripts/convert-gguf runs)."""
