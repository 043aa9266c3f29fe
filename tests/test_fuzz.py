"""Hostile input: whatever the text, the analyzer answers, with sane line spans, and never raises."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.analysis.engine import analyze_sql
from bot.rules.base import STANDARD_SETUP

FRAGMENTS = [
    'CREATE INDEX "i" ON "Tip"("note")',
    'ALTER TABLE "User" ADD COLUMN "x" TEXT NOT NULL DEFAULT now()',
    "ALTER TYPE \"Role\" ADD VALUE 'X'",
    "DO $$ BEGIN PERFORM 1; END $$",
    "'unterminated",
    '"unterminated',
    "$$ unterminated",
    "/* unterminated",
    "-- comment",
    "(" * 300,
    ")" * 300,
    "\x00\x01\x02",
    "SELECT " + ", ".join(["1"] * 200),
    "BEGIN",
    "COMMIT",
    ";",
    "\r\n",
]


def _check(text: str) -> None:
    result = analyze_sql(text, setup=STANDARD_SETUP)
    line_count = text.count("\n") + 1
    for statement in result.statements:
        assert 1 <= statement.line_start <= statement.line_end <= line_count
        assert statement.classification is not None


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=400))
def test_any_text_is_analysed_without_raising(text: str) -> None:
    _check(text)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(FRAGMENTS), max_size=12), st.sampled_from([";\n", " ", "\n", ";"]))
def test_mixed_real_and_broken_fragments_are_analysed(fragments: list[str], joiner: str) -> None:
    _check(joiner.join(fragments))


def test_a_two_megabyte_file_is_analysed() -> None:
    statement = 'ALTER TABLE "User" ADD COLUMN "c{}" TEXT;\n'
    text = "".join(statement.format(i) for i in range(50_000))
    assert len(text) > 2_000_000
    result = analyze_sql(text, setup=STANDARD_SETUP)
    assert len(result.statements) == 50_000


def test_pathological_statements_are_reported_unknown() -> None:
    cases = [
        "SELECT " + "(" * 5000 + "1" + ")" * 5000,
        'UPDATE "User" SET a = \'never closed',
        "\x00\xff garbage \x01",
        "DO $$ BEGIN EXECUTE 'DROP TABLE ' || 'x'; END $$",
    ]
    for text in cases:
        (statement,) = analyze_sql(text, setup=STANDARD_SETUP).statements
        assert statement.classification.value == "unknown", text[:40]
