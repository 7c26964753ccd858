"""Inference backends behind one small interface (base.py), chosen by name (registry.py):
llama_cpp/ for GGUF files, mlx/ for MLX folders (and the offline GGUF converter), and a
deterministic scripted backend for tests."""
