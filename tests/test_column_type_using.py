"""USING in a type change: which spellings keep the rows and which rewrite the table (their locks and rewrites
are measured by the lock-truth examples of change-column-type and enum-rebuild)."""

from __future__ import annotations

import pytest

from bot.analysis import operations as op
from bot.analysis.config import RepoConfig
from bot.analysis.engine import analyze_sql
from bot.analysis.model import Classification
from bot.analysis.parser import parse_statement
from bot.analysis.splitter import split_statements
from bot.rules.base import STANDARD_SETUP


def _type_change(sql: str) -> op.AlterColumnType:
    (raw,) = split_statements(sql)
    (operation,) = parse_statement(raw, sql).operations
    assert isinstance(operation, op.AlterColumnType)
    return operation


@pytest.mark.parametrize(
    ("using", "expression", "casts"),
    [
        ("", False, ()),
        ('USING "c"', False, ()),
        ('USING ("c")', False, ()),
        ('USING "c"::"E"', False, ("E",)),
        ('USING ("c"::text::"E")', False, ("text", "E")),
        ('USING CAST(CAST("c" AS TEXT) AS "E")', False, ("text", "E")),
        ('USING lower("c")::"E"', True, ()),
        ('USING "d"::"E"', True, ()),
        ("USING 'A'::\"E\"", True, ()),
    ],
)
def test_using_is_read_as_the_column_and_its_casts(
    using: str, expression: bool, casts: tuple[str, ...]
) -> None:
    operation = _type_change(f'ALTER TABLE "T" ALTER COLUMN "c" TYPE "E" {using};')
    assert operation.using_expression is expression
    assert tuple(c.base if c else None for c in operation.using_casts) == casts


@pytest.mark.parametrize(
    ("sql", "classification"),
    [
        # The enum renamed earlier in the file: the column already has the type, the cast through text still
        # rewrites every row.
        (
            'ALTER TYPE "Role" RENAME TO "UserRole";\n'
            'ALTER TABLE "User" ALTER COLUMN "role" TYPE "UserRole" USING ("role"::text::"UserRole");',
            Classification.BLOCKING,
        ),
        ('ALTER TABLE "User" ALTER COLUMN "role" TYPE "Role" USING "role"::"Role";', Classification.BRIEF),
        (
            'ALTER TABLE "User" ALTER COLUMN "name" TYPE TEXT USING "name"::varchar::text;',
            Classification.BRIEF,
        ),
        # Without USING, varchar(50) to varchar(80) keeps the rows; through text, the length check runs again.
        ('ALTER TABLE "User" ALTER COLUMN "name" TYPE VARCHAR(80);', Classification.BRIEF),
        (
            'ALTER TABLE "User" ALTER COLUMN "name" TYPE VARCHAR(80) USING "name"::text::varchar(80);',
            Classification.BLOCKING,
        ),
        # A column zdm never saw: whatever its type, a cast through text into an enum rewrites.
        (
            'ALTER TABLE "Elsewhere" ALTER COLUMN "x" TYPE "Role" USING "x"::text::"Role";',
            Classification.BLOCKING,
        ),
        ('ALTER TABLE "Elsewhere" ALTER COLUMN "x" TYPE "Role";', Classification.UNKNOWN),
    ],
)
def test_a_using_expression_rewrites_even_to_the_same_type(sql: str, classification: Classification) -> None:
    result = analyze_sql(sql, setup=STANDARD_SETUP, config=RepoConfig())
    statement = result.statements[-1]
    assert statement.classification is classification
    assert bool(statement.rewrites) is (classification is Classification.BLOCKING)
