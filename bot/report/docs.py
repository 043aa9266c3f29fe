"""Rule documentation, generated from the rule modules so it cannot drift from what zdm does."""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence

from bot.analysis.model import Classification
from bot.rules.base import Example, FileRule, HistoryExample, HistoryRule, Rule

AnyRule = Rule | FileRule | HistoryRule


def _first_problem(examples: Sequence[Example]) -> Example | None:
    return next(
        (e for e in examples if e.classification is not Classification.SAFE),
        examples[0] if examples else None,
    )


def render_rule_page(rule: AnyRule) -> str:
    if isinstance(rule, HistoryRule):
        return _history_rule_page(rule)
    lines = [f"# {rule.id}: {rule.title}", "", rule.summary, "", "## Why is this bad?", "", rule.why, ""]
    example = _first_problem(rule.examples)
    if example is not None:
        lines += ["## Example", "", "```sql", example.sql, "```", ""]
    lines += ["## Use instead", "", rule.instead, ""]
    if rule.examples:
        lines += [
            "## Lock behaviour",
            "",
            "Each example runs on a real PostgreSQL in zdm's tests (`tests/test_lock_truth.py`); the locks, "
            "rewrites and scans zdm claims for it are the ones the server shows.",
            "",
            "| example | zdm says |",
            "|---|---|",
        ]
        for item in rule.examples:
            sql = " ".join(item.sql.split()).replace("|", "\\|")
            note = f" ({item.title})" if item.title else ""
            prisma = f", Prisma {item.prisma}" if item.prisma else ""
            refused = f"; PostgreSQL refuses it: {item.refused_with}" if item.refused_with else ""
            lines.append(f"| `{sql}`{note} | {item.classification.value}{prisma}{refused} |")
        lines.append("")
    lines += [f"{_FOOTER}`{rule.severity.value}`. Suppress with `-- zdm:ignore {rule.id} <reason>`.", ""]
    return "\n".join(lines)


_FOOTER = "Default severity: "


def _history_rule_page(rule: HistoryRule) -> str:
    """A history rule's page: its example is a change (a diff between two commits) and what zdm says of it,
    made by running the rule on it."""
    from bot.analysis.config import RepoConfig
    from bot.analysis.history import find_hazards

    lines = [f"# {rule.id}: {rule.title}", "", rule.summary, "", "## Why is this bad?", "", rule.why, ""]
    example = next((e for e in rule.examples if e.hazards), None)
    if example is not None:
        lines += ["## Example", "", "```diff", _change_diff(example), "```", ""]
        for hazard in find_hazards(example.history(), RepoConfig(), [rule]):
            lines += [
                f"zdm says on `{hazard.path}`:",
                "",
                f"> {hazard.message}",
                ">",
                f"> **Fix:** {hazard.fix}",
                "",
            ]
    lines += ["## Use instead", "", rule.instead, ""]
    if rule.examples:
        lines += [
            "## Examples",
            "",
            "Each example is a change between two commits; the tests check zdm reports what the table says.",
            "",
            "| change | zdm says |",
            "|---|---|",
        ]
        for item in rule.examples:
            said = f"{item.hazards} {rule.severity.value}(s)" if item.hazards else "nothing"
            lines.append(f"| {_cell(item.title)} | {said} |")
        lines.append("")
    lines += [
        f"{_FOOTER}`{rule.severity.value}`. It judges the change as a whole (`zdm check --base <ref>`, or a pull "
        f'request): set `rules: {{{rule.id}: warning}}` (or `"off"`) in `.github/zdm.yml`, or accept it on '
        "a pull request with `/zdm approve <reason>`.",
        "",
    ]
    return "\n".join(lines)


def _change_diff(example: HistoryExample) -> str:
    def files(migrations: Mapping[str, str], others: Mapping[str, str]) -> dict[str, str]:
        return {f"{example.root}/{name}/migration.sql": text for name, text in migrations.items()} | dict(
            others
        )

    before, after = files(example.base, example.base_files), files(example.head, example.head_files)
    diff: list[str] = []
    for path in sorted({*before, *after}):
        old, new = before.get(path), after.get(path)
        if old == new:
            continue
        diff += difflib.unified_diff(
            (old or "").splitlines(),
            (new or "").splitlines(),
            f"a/{path}" if old is not None else "/dev/null",
            f"b/{path}" if new is not None else "/dev/null",
            lineterm="",
        )
    return "\n".join(diff)


def is_rule_page(text: str) -> bool:
    """Whether `text` looks like a page `render_rule_page` wrote (so `zdm docs` may replace or remove it)."""
    return text.startswith("# ") and f"\n{_FOOTER}`" in text and "## Why is this bad?" in text


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def render_index(rules: Sequence[AnyRule]) -> str:
    lines = [
        "# zdm rules",
        "",
        "Generated by `zdm docs` from `bot/rules/`. Each rule states what PostgreSQL does, and its examples are "
        "run on a real server by the tests.",
        "",
        "| rule | what it catches |",
        "|---|---|",
    ]
    lines += [f"| [{rule.id}]({rule.id}.md) | {_cell(rule.summary)} |" for rule in rules]
    return "\n".join(lines) + "\n"


def rule_pages() -> dict[str, str]:
    """Every page `zdm docs` writes, by file name: one per rule (statement, file and history rules) and the
    index."""
    from bot.rules import ALL_RULES, HISTORY_RULES

    rules: tuple[AnyRule, ...] = (*ALL_RULES, *HISTORY_RULES)
    pages = {f"{rule.id}.md": render_rule_page(rule) for rule in rules}
    pages["README.md"] = render_index(rules)
    return pages
