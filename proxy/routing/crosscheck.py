"""Cross-check: compare two answers to the same request (pure, no I/O).

Code and JSON are compared structurally (the parsed JSON's shape and values;
the code blocks with whitespace and comments normalised); prose by word
overlap. `verdict` says whether they agree; when they do not and a judge
model is configured, `judge_prompt` builds the cheap judge's question and
`judge_choice` reads its answer.
"""

from __future__ import annotations

import difflib
import re
from typing import Any, Literal

import orjson

from ..types import JSON

Verdict = Literal["agreed", "disagreed"]

_FENCED = re.compile(r"```[\w+-]*\n(.*?)```", re.DOTALL)
_COMMENT = re.compile(r"(?m)(?:#|//).*$")
_WORD = re.compile(r"\w+")
_AGREE_CODE = 0.85
_AGREE_PROSE = 0.6


def answer_text(response: JSON) -> str:
    choices = response.get("choices") or [{}]
    message = choices[0].get("message") or {} if isinstance(choices[0], dict) else {}
    parts = [message.get("content") or ""]
    for call in message.get("tool_calls") or []:
        function = call.get("function") or {}
        parts.append(f"{function.get('name')}({function.get('arguments')})")
    return "".join(p for p in parts if isinstance(p, str))


def _json(text: str) -> Any:
    stripped = text.strip()
    if stripped.startswith("```"):
        found = _FENCED.search(stripped)
        stripped = found.group(1) if found else stripped
    try:
        return orjson.loads(stripped)
    except orjson.JSONDecodeError:
        return None


def _shape(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in sorted(value.items())}
    if isinstance(value, list):
        return [_shape(v) for v in value[:3]]
    return type(value).__name__


def _code(text: str) -> str | None:
    blocks = _FENCED.findall(text)
    if not blocks:
        return None
    joined = "\n".join(blocks)
    return " ".join(_COMMENT.sub("", joined).split())


def verdict(first: str, second: str, *, json_mode: bool) -> tuple[Verdict, str]:
    """Whether two answers agree, and how that was decided."""
    if json_mode or (_json(first) is not None and _json(second) is not None):
        a, b = _json(first), _json(second)
        if a is not None and b is not None:
            if a == b:
                return "agreed", "json_equal"
            return ("agreed", "json_same_shape") if _shape(a) == _shape(b) else ("disagreed", "json_differs")
    code_a, code_b = _code(first), _code(second)
    if code_a is not None and code_b is not None:
        ratio = difflib.SequenceMatcher(None, code_a, code_b, autojunk=False).ratio()
        return ("agreed" if ratio >= _AGREE_CODE else "disagreed"), f"code_similarity_{ratio:.2f}"
    words_a = set(_WORD.findall(first.lower()))
    words_b = set(_WORD.findall(second.lower()))
    if not words_a and not words_b:
        return "agreed", "both_empty"
    overlap = len(words_a & words_b) / max(1, len(words_a | words_b))
    return ("agreed" if overlap >= _AGREE_PROSE else "disagreed"), f"word_overlap_{overlap:.2f}"


def judge_prompt(request_text: str, first: str, second: str) -> list[JSON]:
    return [
        {
            "role": "system",
            "content": "You compare two answers to the same request. Reply with one letter: A or B, "
            "the answer that is more correct and complete.",
        },
        {
            "role": "user",
            "content": f"Request:\n{request_text[:4000]}\n\nAnswer A:\n{first[:6000]}\n\n"
            f"Answer B:\n{second[:6000]}\n\nWhich is better? Reply A or B.",
        },
    ]


def judge_choice(text: str) -> Literal["A", "B"] | None:
    match = re.search(r"\b([AB])\b", text.strip()[:40])
    return match.group(1) if match else None  # type: ignore[return-value]
