"""GGUF models through llama-cpp-python: the backend, its pool of contexts, its core budget."""
