"""Split a migration file into statements with exact 1-based line spans.

sqlglot's tokenizer does the work: it keeps quoted identifiers, strings and dollar-quoted bodies whole, and
its token offsets give exact positions. When it cannot tokenize a file (an unterminated quote, say), a small
scanner of our own splits on top-level semicolons so that one bad statement never hides the others.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass
from typing import Any

from sqlglot.dialects.postgres import Postgres
from sqlglot.errors import SqlglotError
from sqlglot.tokenizer_core import TokenType

# One tokenizer for every file: each call starts from a clean state.
_TOKENIZER = Postgres().tokenizer()


@dataclass(frozen=True)
class RawStatement:
    text: str
    start: int
    end: int
    line_start: int
    line_end: int
    # Comments and blank space between the previous statement and this one (Prisma's `-- CreateIndex` header,
    # a `-- zdm:ignore` line), plus any comment after the semicolon on the statement's last line.
    leading: str
    trailing: str
    tokens: tuple[Any, ...] | None


class _Lines:
    def __init__(self, text: str) -> None:
        self._starts = [0] + [m.end() for m in re.finditer("\n", text)]

    def line_of(self, offset: int) -> int:
        return bisect.bisect_right(self._starts, offset)


def split_statements(text: str) -> list[RawStatement]:
    try:
        tokens = _TOKENIZER.tokenize(text)
    except (SqlglotError, ValueError, IndexError):
        return _split_by_scanner(text)
    return _split_tokens(text, tokens)


def _split_tokens(text: str, tokens: list[Any]) -> list[RawStatement]:
    lines = _Lines(text)
    statements: list[RawStatement] = []
    semicolon = TokenType.SEMICOLON
    previous_end = 0
    start = 0
    for at in [i for i, token in enumerate(tokens) if token.token_type is semicolon]:
        if at > start:
            statements.append(_statement(text, lines, tokens[start:at], tokens[at].end + 1, previous_end))
        previous_end = tokens[at].end + 1
        start = at + 1
    if start < len(tokens):
        chunk = tokens[start:]
        statements.append(_statement(text, lines, chunk, chunk[-1].end + 1, previous_end))
    return statements


def _statement(text: str, lines: _Lines, chunk: list[Any], end: int, previous_end: int) -> RawStatement:
    # sqlglot's first token of `/* c */ SELECT` starts at SELECT; the statement starts there too.
    return _raw(text, lines, max(chunk[0].start, previous_end), end, previous_end, tuple(chunk))


def _raw(
    text: str, lines: _Lines, start: int, end: int, previous_end: int, tokens: tuple[Any, ...] | None
) -> RawStatement:
    return RawStatement(
        text=text[start:end],
        start=start,
        end=end,
        line_start=lines.line_of(start),
        line_end=lines.line_of(max(start, end - 1)),
        leading=text[previous_end:start],
        trailing=_rest_of_line(text, end),
        tokens=tokens,
    )


def _rest_of_line(text: str, end: int) -> str:
    newline = text.find("\n", end)
    return text[end : len(text) if newline == -1 else newline]


_SCANNER = re.compile(
    r"""
      (?P<line_comment>--[^\n]*)
    | (?P<block_comment>/\*.*?(?:\*/|\Z))
    | (?P<dollar>\$(?P<tag>[A-Za-z_][A-Za-z_0-9]*|)\$.*?(?:\$(?P=tag)\$|\Z))
    | (?P<single>'(?:[^']|'')*(?:'|\Z))
    | (?P<double>"(?:[^"]|"")*(?:"|\Z))
    | (?P<semicolon>;)
    | (?P<word>[^\s;'"$\-/]+|[\-/$])
    """,
    re.VERBOSE | re.DOTALL,
)


def _split_by_scanner(text: str) -> list[RawStatement]:
    """Top-level semicolon splitting for text the tokenizer rejects; unterminated literals run to the end."""
    lines = _Lines(text)
    statements: list[RawStatement] = []
    previous_end = 0
    first: int | None = None
    last = 0
    for match in _SCANNER.finditer(text):
        kind = match.lastgroup
        if kind in ("line_comment", "block_comment"):
            continue
        if kind == "semicolon":
            if first is not None:
                statements.append(_raw(text, lines, first, match.end(), previous_end, None))
            previous_end = match.end()
            first = None
            continue
        if first is None:
            first = match.start()
        last = match.end()
    if first is not None:
        statements.append(_raw(text, lines, first, last, previous_end, None))
    return statements
