"""A backend faster than the event loop: the tokens that waited are written together, and
the client still gets every token, in order, each as its own delta."""

from __future__ import annotations

from tests.integration.workers.conftest import StartScripted
from workers.backends.scripted import split_tokens

WORDS = " ".join(f"w{i}" for i in range(1500))
FAST = {"default": WORDS, "token_delay_s": 0.0}


def test_an_unpaced_chat_stream_arrives_whole_in_order_one_delta_per_token(
    start_scripted: StartScripted,
) -> None:
    worker = start_scripted(FAST)
    chunks = list(
        worker.client().chat.completions.create(
            model="m",
            messages=[{"role": "user", "content": "go"}],
            max_tokens=5000,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    deltas = [
        c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content
    ]
    assert "".join(deltas) == WORDS
    assert deltas == split_tokens(WORDS)  # not merged: each token is its own event
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == len(split_tokens(WORDS))


def test_an_unpaced_completion_stream_matches_the_whole_answer(
    start_scripted: StartScripted,
) -> None:
    client = start_scripted(FAST).client()
    whole = client.completions.create(model="m", prompt="go", max_tokens=5000)
    streamed = client.completions.create(model="m", prompt="go", max_tokens=5000, stream=True)
    pieces = [c.choices[0].text for c in streamed if c.choices and c.choices[0].text]
    assert "".join(pieces) == whole.choices[0].text == WORDS
    assert pieces == split_tokens(WORDS)


def test_a_stop_sequence_deep_in_an_unpaced_stream_ends_it_there(
    start_scripted: StartScripted,
) -> None:
    client = start_scripted(FAST).client()
    chunks = list(
        client.chat.completions.create(
            model="m",
            messages=[{"role": "user", "content": "go"}],
            max_tokens=5000,
            stop=[" w1200 "],
            stream=True,
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == WORDS.split(" w1200 ")[0]
    final = chunks[-1].choices[0]
    assert final.finish_reason == "stop"
    assert (final.model_extra or {}).get("stop_sequence") == " w1200 "
