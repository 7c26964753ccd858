"""OpenAI's Responses API spoken over the workers' chat API.

`items` checks conversation items and turns them into chat messages, `requests` turns a
request body into a chat request, `answer` turns a chat completion into a Response,
`stream` does the same for SSE chunks, and `store` keeps responses for
`previous_response_id` and the GET and DELETE routes.
"""

from gateway.responses.answer import Draft, to_response
from gateway.responses.requests import ResponsesRequest, chat_request, parse_request
from gateway.responses.store import ResponseStore, StoredResponse
from gateway.responses.stream import ResponsesStream

__all__ = [
    "Draft",
    "ResponseStore",
    "ResponsesRequest",
    "ResponsesStream",
    "StoredResponse",
    "chat_request",
    "parse_request",
    "to_response",
]
