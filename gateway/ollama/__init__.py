"""Ollama's API spoken over the workers' OpenAI API, on the gateway's own port.

`requests` turns Ollama bodies into OpenAI requests, `answers` turns a worker's stream
back into Ollama's answer objects (streamed as lines, or whole), `models` writes the
listings (/api/tags, /api/ps, /api/show), `keep_alive` reads that field, and `errors`
renders an `ApiError` as Ollama's `{"error": ...}`.
"""
