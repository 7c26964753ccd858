"""What a client gets back: chat (chat.py) and completion (completion.py) answers with
logprobs, built from parser events, and their delivery, streamed or whole (delivery.py)."""
