from __future__ import annotations

from bot.analysis.splitter import split_statements


def test_multi_line_statements_get_exact_spans() -> None:
    text = '-- CreateTable\nCREATE TABLE "a" (\n    "id" INT\n);\n\n-- CreateIndex\nCREATE INDEX "i" ON "a"("id");\n'
    first, second = split_statements(text)
    assert (first.line_start, first.line_end) == (2, 4)
    assert (second.line_start, second.line_end) == (7, 7)
    assert "-- CreateIndex" in second.leading


def test_crlf_files_count_lines_the_same_way() -> None:
    text = 'SELECT 1;\r\n\r\nALTER TABLE "a"\r\n  ADD COLUMN "b" TEXT;\r\n'
    statements = split_statements(text)
    assert [(s.line_start, s.line_end) for s in statements] == [(1, 1), (3, 4)]


def test_semicolons_in_comments_strings_and_dollar_bodies_do_not_split() -> None:
    text = (
        "-- a; b\n/* c; d */ SELECT 'x;y';\n"
        "CREATE FUNCTION f() RETURNS void AS $$ BEGIN PERFORM 1; END $$ LANGUAGE plpgsql;\n"
        "DO $body$ BEGIN RAISE NOTICE 'a;b'; END $body$;\n"
    )
    statements = split_statements(text)
    assert len(statements) == 3
    assert statements[1].text.endswith("LANGUAGE plpgsql;")
    assert statements[2].line_start == 4


def test_transaction_control_and_a_last_statement_without_semicolon() -> None:
    statements = split_statements("BEGIN;\nCREATE TYPE \"x\" AS ENUM ('a');\nCOMMIT;\nSELECT 1")
    assert [s.text for s in statements] == [
        "BEGIN;",
        "CREATE TYPE \"x\" AS ENUM ('a');",
        "COMMIT;",
        "SELECT 1",
    ]


def test_empty_and_comment_only_files_have_no_statement() -> None:
    assert split_statements("") == []
    assert split_statements("-- This is an empty migration.\n/* nothing */\n") == []


def test_unterminated_quote_keeps_earlier_statements() -> None:
    statements = split_statements("SELECT 1;\nSELECT 2;\nSELECT 'oops\n;\n")
    assert [s.line_start for s in statements][:2] == [1, 2]
    assert statements[2].line_start == 3
