"""Keyword vocabularies that stay fast on long text.

A big regex alternation costs (positions x alternatives): 15 ms for 100
phrases over a 4k-character turn. A `Vocabulary` instead files each phrase
under the first three letters of its first word (or under a literal needle
when it starts with a symbol, a CJK character or a digit). A `Scan` of a text
lists which three-letter word starts occur in it with one C-level `findall`;
a phrase is then tried only at the offsets where its key occurs. Unused
phrases cost a set intersection, so a classification stays well under a
millisecond whatever was pasted.

Phrases are ordinary `re` syntax, matched case-insensitively against the
lowercased text. A phrase that starts with `^` only matches at a line start.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_WORD_START = re.compile(r"(\w{1,3})\w*")
_LITERAL = re.compile(r"(?:[^\\\[\](){}.*+?|^$]|\\[-/.$+#@:<>])+")
_FLAGS = re.IGNORECASE | re.MULTILINE


@dataclass(slots=True)
class Scan:
    """A lowercased text and the three-letter starts of its words."""

    low: str
    keys: set[str] = field(default_factory=set)

    @classmethod
    def of(cls, text: str) -> Scan:
        low = text.lower()
        return cls(low, set(_WORD_START.findall(low)))


@dataclass(slots=True)
class _Phrase:
    pattern: re.Pattern[str]
    line_start: bool


def _strip_lead(alt: str) -> tuple[str, bool]:
    line_start = False
    while True:
        if alt.startswith("^"):
            alt, line_start = alt[1:], True
        elif alt.startswith(r"\s*"):
            alt = alt[3:]
        elif alt.startswith(r"\b"):
            alt = alt[2:]
        else:
            return alt, line_start


def _branches(alt: str) -> list[str] | None:
    """The top-level branches of a leading `(?:a|b|c)` group, each with the rest appended."""
    if not alt.startswith("(?:"):
        return None
    depth = 0
    parts: list[str] = []
    current = ""
    for index, char in enumerate(alt[3:], start=3):
        if char == "\\" and index + 1 < len(alt):
            current += char
            continue
        if char == "(" and alt[index - 1] != "\\":
            depth += 1
        elif char == ")" and alt[index - 1] != "\\":
            if depth == 0:
                rest = alt[index + 1 :]
                if rest[:1] in ("?", "*", "+", "{"):
                    return None
                parts.append(current)
                return [part + rest for part in parts]
            depth -= 1
        elif char == "|" and depth == 0:
            parts.append(current)
            current = ""
            continue
        current += char
    return None


def _split_top(item: str | tuple[str, str]) -> list[str | tuple[str, str]]:
    """`a|b` written as one phrase is two phrases, each filed under its own key."""
    if isinstance(item, tuple):
        return [item]
    parts: list[str | tuple[str, str]] = []
    depth = 0
    current = ""
    escaped = False
    in_class = False
    for char in item:
        if escaped:
            current, escaped = current + char, False
            continue
        if char == "\\":
            current, escaped = current + char, True
            continue
        if in_class:
            in_class = char != "]"
        elif char == "[":
            in_class = True
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == "|" and depth == 0:
            parts.append(current)
            current = ""
            continue
        current += char
    parts.append(current)
    return parts


def _keys(alt: str) -> list[str] | None:
    """Three-letter word keys (or needles prefixed with '=') under which a phrase is filed."""
    body, _ = _strip_lead(alt)
    branches = _branches(body)
    if branches is not None:
        keys: list[str] = []
        for branch in branches:
            found = _keys(branch)
            if found is None:
                return None
            keys.extend(found)
        return keys
    match = _LITERAL.match(body)
    literal = match.group(0).replace("\\", "").lower() if match else ""
    if not literal:
        return None
    first = literal[0]
    if first.isalpha() and ord(first) < 0x2E80:
        word = re.match(r"\w+", literal)
        assert word is not None
        token = word.group(0)
        whole_word = (
            len(token) < len(literal)
            or (match is not None and match.end() == len(body))
            or body[len(literal) :].startswith(r"\b")
        )
        if len(token) >= 3:
            return [token[:3]]
        if whole_word:
            return [token]
        return None
    if len(literal) >= 2 or not first.isalnum():
        return ["=" + literal]
    return None


class Vocabulary:
    """Phrases filed by key; `first`, `found` and `distinct` over a `Scan`."""

    def __init__(self, *alternatives: str | tuple[str, str]) -> None:
        self.by_key: dict[str, list[_Phrase]] = {}
        self.needles: dict[str, list[_Phrase]] = {}
        self.searched: list[tuple[str, re.Pattern[str]]] = []
        for alternative in [part for item in alternatives for part in _split_top(item)]:
            if isinstance(alternative, tuple):
                needle, alt = alternative
                self.searched.append((needle.lower(), re.compile(alt, _FLAGS)))
                continue
            else:
                alt = alternative
                found = _keys(alt)
                if found is None:
                    raise ValueError(f"phrase {alt!r} has no literal start; give it a needle: (needle, phrase)")
                keys = found
            body, line_start = _strip_lead(alt)
            phrase = _Phrase(re.compile(alt, _FLAGS), line_start)
            for key in dict.fromkeys(keys):
                if key.startswith("="):
                    self.needles.setdefault(key[1:], []).append(phrase)
                else:
                    self.by_key.setdefault(key, []).append(phrase)
        self.key_set = frozenset(self.by_key)

    def _hits(self, scan: Scan) -> list[tuple[int, str]]:
        low = scan.low
        hits: list[tuple[int, str]] = []
        for key in self.key_set & scan.keys:
            self._try(low, key, self.by_key[key], True, hits)
        for needle, phrases in self.needles.items():
            if needle in low:
                self._try(low, needle, phrases, False, hits)
        for needle, pattern in self.searched:
            if needle in low:
                hits.extend((m.start(), m.group(0)) for m in pattern.finditer(low))
        return hits

    @staticmethod
    def _try(low: str, key: str, phrases: list[_Phrase], word: bool, hits: list[tuple[int, str]]) -> None:
        index = low.find(key)
        while index >= 0:
            if not word or index == 0 or not low[index - 1].isalnum():
                for phrase in phrases:
                    start = low.rfind("\n", 0, index) + 1 if phrase.line_start else index
                    matched = phrase.pattern.match(low, start)
                    if matched is not None:
                        hits.append((start, matched.group(0)))
            index = low.find(key, index + 1)

    def first(self, scan: Scan) -> int | None:
        """Offset of the earliest phrase found, or None."""
        hits = self._hits(scan)
        return min(hits)[0] if hits else None

    def found(self, scan: Scan) -> bool:
        return bool(self._hits(scan))

    def distinct(self, scan: Scan) -> int:
        """How many different phrases (as matched) occur."""
        return len({text for _, text in self._hits(scan)})
