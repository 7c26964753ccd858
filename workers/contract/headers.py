"""The response headers Opta-LMX adds of its own, named once for both programs."""

# "gateway" or "worker": who refused the request (an error answer only).
ERROR_ORIGIN = "x-lmx-error-origin"
# The concrete model that answers, when the request named an alias, a preset or `default`.
MODEL = "x-lmx-model"
# A worker's stream says how long the prompt was before its first token, so the gateway's
# Anthropic stream can report input tokens in `message_start`, as Anthropic does.
PROMPT_TOKENS = "x-lmx-prompt-tokens"
