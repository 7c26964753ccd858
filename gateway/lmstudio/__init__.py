"""LM Studio's REST API (v0) spoken over the workers' OpenAI API.

`models` writes the model documents (/api/v0/models) and the `model_info` and `runtime`
an answer carries; `stats` measures an answer as LM Studio's `stats` does (tokens per
second, time to first token, generation time, why it stopped).
"""
