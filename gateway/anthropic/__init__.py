"""Anthropic's Messages API spoken over the workers' OpenAI chat API.

`requests` turns a Messages body into an OpenAI chat request, `responses` turns a chat
completion back into a message, `stream` does the same for SSE chunks, and `errors`
renders an `ApiError` in Anthropic's envelope.
"""

from gateway.anthropic.errors import anthropic_error_body, anthropic_error_response
from gateway.anthropic.requests import to_openai_count_request, to_openai_request
from gateway.anthropic.responses import to_anthropic_message
from gateway.anthropic.stream import AnthropicStream

__all__ = [
    "AnthropicStream",
    "anthropic_error_body",
    "anthropic_error_response",
    "to_anthropic_message",
    "to_openai_count_request",
    "to_openai_request",
]
