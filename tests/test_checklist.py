from __future__ import annotations

from bot.analysis.engine import analyze_sql
from bot.fixes.checklist import checklist, render_checklist
from bot.rules.base import STANDARD_SETUP


def test_checklist_for_a_blocking_index_names_the_table_and_watches_the_build() -> None:
    result = analyze_sql('CREATE INDEX "i" ON "Tip"("note");', setup=STANDARD_SETUP)
    items = checklist([result])
    texts = " ".join(item.text for item in items)
    assert "Estimate the migration time" in texts and "Tip" in texts
    assert any("pg_stat_progress_create_index" in item.query for item in items)
    assert "backup" not in texts  # nothing is dropped
    assert render_checklist(items).startswith("- [ ] ")


def test_checklist_for_a_drop_asks_for_a_backup_and_rollback_plan() -> None:
    items = checklist([analyze_sql('ALTER TABLE "User" DROP COLUMN "bio";', setup=STANDARD_SETUP)])
    texts = " ".join(item.text for item in items)
    assert "backup" in texts and "rollback" in texts


def test_safe_migration_needs_no_checklist() -> None:
    assert checklist([analyze_sql('CREATE TABLE "New" ("id" INTEGER);', setup=STANDARD_SETUP)]) == []
