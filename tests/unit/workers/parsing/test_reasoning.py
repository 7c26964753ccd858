"""<think> reasoning separated from the answer, streaming, and detected from chat templates."""

from __future__ import annotations

from collections.abc import Iterable

import pytest

from workers.parsing.events import OutputEvent, ReasoningDelta, TextDelta
from workers.parsing.output import merge_events
from workers.parsing.reasoning import ReasoningSplitter, detect_reasoning_parser


def split(pieces: Iterable[str], *, starts_in_reasoning: bool = False) -> list[OutputEvent]:
    splitter = ReasoningSplitter(starts_in_reasoning=starts_in_reasoning)
    events: list[OutputEvent] = []
    for piece in pieces:
        events += splitter.feed(piece)
    return merge_events(events + splitter.finish())


@pytest.mark.parametrize(
    ("text", "starts_in_reasoning", "expected"),
    [
        (
            "<think>\nCompare the two.\n</think>\n\nThe second is larger.",
            False,
            [ReasoningDelta("Compare the two."), TextDelta("The second is larger.")],
        ),
        (
            "Counting letters: r, r, r.\n</think>\n\nThree.",
            True,
            [ReasoningDelta("Counting letters: r, r, r."), TextDelta("Three.")],
        ),
        (
            "<think>\nThe template opened it already.\n</think>\nOk.",
            True,
            [ReasoningDelta("The template opened it already."), TextDelta("Ok.")],
        ),
        ("<think>\n\n</think>\n\nHello!", False, [TextDelta("Hello!")]),
        ("\n\nPlain answer.", False, [TextDelta("\n\nPlain answer.")]),
        ("<think>Cut off by max_tok", False, [ReasoningDelta("Cut off by max_tok")]),
        ("Still thinking </thi", True, [ReasoningDelta("Still thinking </thi")]),
        (
            "<thinking>is not the tag</thinking>",
            False,
            [TextDelta("<thinking>is not the tag</thinking>")],
        ),
        ("Use <think> tags.", False, [TextDelta("Use <think> tags.")]),
        (
            "<think>a</think>Write <think>x</think> literally.",
            False,
            [ReasoningDelta("a"), TextDelta("Write <think>x</think> literally.")],
        ),
        ("  <thi", False, [TextDelta("  <thi")]),
        ("Über → 🧠 ok</think>Ja.", True, [ReasoningDelta("Über → 🧠 ok"), TextDelta("Ja.")]),
    ],
)
def test_reasoning_is_separated_the_same_at_every_split(
    text: str, starts_in_reasoning: bool, expected: list[OutputEvent]
) -> None:
    assert split([text], starts_in_reasoning=starts_in_reasoning) == expected
    assert split(text, starts_in_reasoning=starts_in_reasoning) == expected
    for cut in range(len(text) + 1):
        pieces = [text[:cut], text[cut:]]
        assert split(pieces, starts_in_reasoning=starts_in_reasoning) == expected, cut


def test_reasoning_streams_out_as_it_is_generated() -> None:
    splitter = ReasoningSplitter()
    assert splitter.feed("<think>\nFirst") == [ReasoningDelta("First")]
    assert splitter.feed(" idea") == [ReasoningDelta(" idea")]
    assert splitter.feed(".</th") == [ReasoningDelta(".")]
    assert splitter.feed("ink>\n\nAnswer") == [TextDelta("Answer")]
    assert splitter.feed(" here") == [TextDelta(" here")]
    assert splitter.finish() == []


QWEN3_HYBRID = """{%- for message in messages %}
{%- if message.role == 'assistant' and '</think>' in message.content %}
{%- set content = message.content.split('</think>')[-1].lstrip('\\n') %}
{%- else %}{%- set content = message.content %}{%- endif %}
{{- '<|im_start|>' + message.role + '\\n' + content + '<|im_end|>\\n' }}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\\n' }}
    {%- if enable_thinking is defined and enable_thinking is false %}
        {{- '<think>\\n\\n</think>\\n\\n' }}
    {%- endif %}
{%- endif %}"""

QWEN_THINKING_ONLY = """{%- for message in messages %}
{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>\\n' }}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\\n<think>\\n' }}
{%- endif %}"""

# DeepSeek's real markers use fullwidth bars; ASCII ones change nothing for detection.
DEEPSEEK_R1 = """{% if not add_generation_prompt is defined %}
{% set add_generation_prompt = false %}{% endif %}
{%- for message in messages %}
{%- if message['role'] == 'user' %}{{'<|User|>' + message['content']}}
{%- elif message['role'] == 'assistant' %}{% set content = message['content'] %}
{% if '</think>' in content %}{% set content = content.split('</think>')[-1] %}{% endif %}
{{'<|Assistant|>' + content + '<|end_of_sentence|>'}}{%- endif %}{%- endfor -%}
{% if add_generation_prompt %}{{'<|Assistant|><think>\\n'}}{% endif %}"""

MINIMAX_M2 = """{%- for message in messages %}
{{- ']~b]' ~ ('ai' if message.role == 'assistant' else message.role) ~ '\\n' }}
{%- if message.role == 'assistant' and '</think>' in message.content %}
{{- message.content.split('</think>')[-1] }}{%- else %}{{- message.content }}{%- endif %}
{{- '[e~[\\n' }}
{%- endfor %}
{%- if add_generation_prompt -%}
{{- ']~b]ai' ~ '\\n' ~ '<think>' ~ '\\n' }}
{%- endif -%}"""

NEEDS_A_SYSTEM_MESSAGE = """{%- if messages[0].role != 'system' %}
{{- raise_exception('The first message must be a system message') }}
{%- endif %}
{%- for message in messages %}{{ message.content }}{% endfor %}
{%- if add_generation_prompt %}{{ '<|assistant|>\\n<think>\\n' }}{% endif %}"""

SMOLLM2 = """{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}
{{ '<|im_start|>system\\nYou are a helpful AI assistant named SmolLM<|im_end|>\\n' }}{% endif %}
{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}
{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"""


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        (QWEN3_HYBRID, ("think", False)),
        (QWEN_THINKING_ONLY, ("think", True)),
        (DEEPSEEK_R1, ("think", True)),
        (MINIMAX_M2, ("think", True)),
        (NEEDS_A_SYSTEM_MESSAGE, ("think", True)),
        (SMOLLM2, (None, False)),
        ("{{ broken", (None, False)),
        (None, (None, False)),
    ],
    ids=["qwen3", "qwq", "deepseek-r1", "minimax-m2", "unrenderable", "smollm2", "junk", "none"],
)
def test_reasoning_parser_and_open_think_block_are_detected_from_the_template(
    template: str | None, expected: tuple[str | None, bool]
) -> None:
    assert detect_reasoning_parser(template) == expected
