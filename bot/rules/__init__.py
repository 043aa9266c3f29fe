"""The registry: every rule zdm knows, in the order their findings are reported."""

from __future__ import annotations

from bot.rules import (
    add_check_constraint,
    add_column,
    add_column_generated,
    add_column_required,
    add_column_volatile_default,
    add_foreign_key,
    add_primary_key,
    add_unique_constraint,
    backfill,
    catalog_change,
    change_column_type,
    column_metadata,
    create_index,
    drop_column,
    drop_constraint,
    drop_index,
    drop_table,
    enum_rebuild,
    enum_value_used_too_early,
    enum_values,
    explicit_lock,
    lock_timeout_missing,
    locks_held_until_commit,
    migration_edited,
    migration_lock_changed,
    migration_out_of_order,
    needs_own_migration,
    prisma_warnings,
    refresh_materialized_view,
    rename_column,
    rename_index_or_constraint,
    rename_table,
    row_level_security,
    schema_drift,
    set_not_null,
    table_option,
    table_rewrite,
    trigger,
    truncate,
    unrecognized_statement,
    validate_constraint,
)
from bot.rules.base import FileRule, HistoryRule, Rule

RULES: tuple[Rule, ...] = (
    create_index.RULE,
    drop_index.RULE,
    add_column.RULE,
    add_column_volatile_default.RULE,
    add_column_generated.RULE,
    add_column_required.RULE,
    set_not_null.RULE,
    column_metadata.RULE,
    change_column_type.RULE,
    enum_rebuild.RULE,
    add_check_constraint.RULE,
    add_foreign_key.RULE,
    validate_constraint.RULE,
    add_unique_constraint.RULE,
    add_primary_key.RULE,
    drop_constraint.RULE,
    rename_column.RULE,
    rename_table.RULE,
    drop_column.RULE,
    drop_table.RULE,
    rename_index_or_constraint.RULE,
    enum_values.RULE,
    refresh_materialized_view.RULE,
    table_rewrite.RULE,
    truncate.RULE,
    trigger.RULE,
    explicit_lock.RULE,
    backfill.RULE,
    row_level_security.RULE,
    table_option.RULE,
    catalog_change.RULE,
    unrecognized_statement.RULE,
)

FILE_RULES: tuple[FileRule, ...] = (
    needs_own_migration.RULE,
    enum_value_used_too_early.RULE,
    locks_held_until_commit.RULE,
    prisma_warnings.RULE,
    lock_timeout_missing.RULE,
)

# Rules over a root's history at the base and head commits (see bot.analysis.history).
HISTORY_RULES: tuple[HistoryRule, ...] = (
    migration_edited.RULE,
    migration_out_of_order.RULE,
    migration_lock_changed.RULE,
    schema_drift.RULE,
)

ALL_RULES: tuple[Rule | FileRule, ...] = (*RULES, *FILE_RULES)
# Every id `.github/zdm.yml` may configure.
ALL_RULE_IDS: frozenset[str] = frozenset(r.id for r in (*ALL_RULES, *HISTORY_RULES))
