"""Showing an answer: the text (streamed or whole), then a one-line footer on a terminal."""

from __future__ import annotations

from ..types import JSON
from .assist import Answer, answer_from_stream, ask, ask_streaming
from .client import ChatStream, GatewayClient
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


def answer_once(client: GatewayClient, output: Output, body: JSON, *, busy: str) -> int:
    """One request: a JSON object with --json (behind a spinner), else the streamed answer."""
    if output.json_mode:
        with output.spinner(busy):
            answer = ask(client, body)
        output.json(answer.to_json())
        return 0
    with ask_streaming(client, body) as stream:
        stream_answer(output, stream)
    return 0


def stream_answer(output: Output, stream: ChatStream) -> Answer:
    """Print deltas as they come; the footer follows once the stream is done."""
    with output.live_markdown() as view:
        for delta in stream.deltas():
            view.add(delta)
    answer = answer_from_stream(stream)
    show_answer(output, answer, body=False)
    return answer
