"""Showing an answer: the text (streamed or whole), then a one-line footer on a terminal."""

from __future__ import annotations

from .assist import Answer, answer_from_stream
from .client import ChatStream
from .output import Output


def footer(answer: Answer) -> str:
    parts = [answer.model + (f" ({answer.tier})" if answer.tier else "")]
    if answer.tokens.get("total"):
        parts.append(f"{answer.tokens['input']} in / {answer.tokens['output']} out tokens")
    if answer.cost is not None:
        parts.append(f"${answer.cost:.6f}")
    return " · ".join(parts)


def show_answer(output: Output, answer: Answer, *, body: bool = True) -> None:
    if body:
        output.markdown(answer.message)
    if output.err.is_terminal:
        output.info(footer(answer))


def stream_answer(output: Output, stream: ChatStream) -> Answer:
    """Print deltas as they come; the footer follows once the stream is done."""
    with output.live_markdown() as view:
        for delta in stream.deltas():
            view.add(delta)
    answer = answer_from_stream(stream)
    show_answer(output, answer, body=False)
    return answer
