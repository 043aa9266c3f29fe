"""The `zdm` command line: check, fix, stats, docs, rules.

Start-up stays light: each command imports what it needs inside its body, so `zdm check` never loads the
GitHub App's dependencies. Commands that run services (`serve`, `worker`) belong here too, importing their
frameworks the same way.
"""

from __future__ import annotations

import shutil
import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from bot.analysis.config import RepoConfig

app = typer.Typer(
    help="zdm: stops Prisma migrations from taking PostgreSQL production down.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


class Format(StrEnum):
    text = "text"
    json = "json"
    sarif = "sarif"
    github = "github"


def repository_root(start: Path) -> Path:
    """The git top level above `start`, else the current directory."""
    here = (start if start.is_dir() else start.parent).resolve()
    for candidate in (here, *here.parents):
        if (candidate / ".git").exists():
            return candidate
    return Path.cwd().resolve()


def _fail(message: str) -> typer.Exit:
    typer.echo(f"zdm: {message}", err=True)
    return typer.Exit(2)


def _load_config(root: Path, postgres_version: int | None, prisma_version: str | None) -> RepoConfig:
    """`<root>/.github/zdm.yml` with the command line's overrides; a bad file exits 2 naming the key."""
    from bot.analysis.config import ConfigError, load_config

    try:
        config = load_config(root)
    except ConfigError as error:
        raise _fail(str(error)) from None
    update: dict[str, object] = {}
    if postgres_version is not None:
        if not 11 <= postgres_version <= 18:
            raise _fail("--postgres-version must be between 11 and 18")
        update["postgres_version"] = postgres_version
    if prisma_version is not None:
        update["prisma_version"] = prisma_version
    return config.model_copy(update=update) if update else config


@app.command()
def check(
    paths: Annotated[
        list[Path] | None, typer.Argument(help="Repositories, migration folders or migration.sql files.")
    ] = None,
    output: Annotated[Format, typer.Option("--format", "-f", help="Output format.")] = Format.text,
    postgres_version: Annotated[
        int | None, typer.Option(help="PostgreSQL major version in production.")
    ] = None,
    prisma_version: Annotated[
        str | None, typer.Option(help="Prisma version (default: read from package.json).")
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show safe statements too.")] = False,
) -> None:
    """Classify every statement of the Prisma migrations found; exit 1 if one blocks or cannot be read.

    With no path: the current repository (the git top level above the current directory). Exit 2 for a
    configuration error or a missing path.
    """
    from bot.analysis.roots import check_paths

    targets = paths or [repository_root(Path.cwd())]
    missing = [str(p) for p in targets if not p.exists()]
    if missing:
        raise _fail(f"no such file or directory: {', '.join(missing)}")
    root = repository_root(targets[0])
    config = _load_config(root, postgres_version, prisma_version)
    run = check_paths(targets, config, relative_to=root)
    notes = list(run.notes)
    if not run.files:
        notes.append("no Prisma migration found (looked for migration_lock.toml folders)")
    if output is Format.json:
        from bot.analysis.prisma import PrismaVersion
        from bot.fixes.plan import plan_as_data, plan_file
        from bot.report.json_report import render_json

        fixes = {
            f.path: plan_as_data(
                plan_file(Path(f.path).parent.name, f, PrismaVersion.parse(f.prisma_version or ""))
            )
            for f in run.files
            if any(s.has_fix for s in f.statements)
        }
        typer.echo(render_json(run.files, notes, fixes))
    elif output is Format.sarif:
        from bot.report.sarif import render_sarif

        typer.echo(render_sarif(run.files))
    elif output is Format.github:
        from bot.report.github import render_github

        typer.echo(render_github(run.files), nl=False)
    else:
        from bot.report.text import render_text

        terminal = sys.stdout.isatty()
        width = shutil.get_terminal_size().columns - 2 if terminal else None
        typer.echo(render_text(run.files, notes, color=terminal, width=width, verbose=verbose), nl=False)
    raise typer.Exit(1 if any(f.fails_check for f in run.files) else 0)


@app.command()
def fix(
    migration: Annotated[
        Path, typer.Argument(help="A migration folder: prisma/migrations/<timestamp>_<name>.")
    ],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the plan and the SQL; write nothing.")
    ] = False,
    database_url: Annotated[
        str | None,
        typer.Option(help="A database to ask (_prisma_migrations) whether the migration was applied."),
    ] = None,
    prisma_version: Annotated[
        str | None, typer.Option(help="Prisma version (default: read from package.json).")
    ] = None,
) -> None:
    """Rewrite a migration that has not been applied yet into migrations that do not block, like `ruff --fix`."""
    from bot.fixes.apply import FixError, applied_migrations, plan_migration, write_plan

    root = repository_root(migration)
    config = _load_config(root, None, prisma_version)
    try:
        outcome = plan_migration(migration, config, root)
    except FixError as error:
        raise _fail(str(error)) from None
    plan = outcome.plan
    if not plan.changes_anything:
        typer.echo(f"{migration}: nothing to fix.")
        return
    if database_url:
        if migration.name in applied_migrations(database_url):
            raise _fail(
                f"{migration.name} is already applied in that database: editing it would make Prisma report a "
                "checksum mismatch. Put the fix in a new migration instead."
            )
    elif not dry_run:
        typer.echo(
            "zdm cannot see your databases: if this migration was already applied anywhere (staging, a shared "
            "dev database), undo this edit and put the fix in a new migration (`npx prisma migrate status` tells).",
            err=True,
        )
    typer.echo(
        f"Prisma {outcome.prisma or 'version unknown (assuming before 7.4)'}: {migration.name} becomes"
    )
    typer.echo(plan.render())
    for line in plan.summaries:
        typer.echo(f"  - {line}")
    for index, reason in sorted(plan.no_rewrite.items()):
        typer.echo(f"  - line {outcome.result.statements[index].line_start}: kept as written, {reason}")
    from bot.fixes.checklist import checklist, render_checklist

    items = checklist([outcome.result], outcome.prisma)
    if items:
        typer.echo("\nBefore deploying (for the migration as it was written):")
        typer.echo(render_checklist(items, markdown=False))
    if dry_run:
        for item in plan.migrations:
            typer.echo(f"\n-- {item.name}/migration.sql\n{item.sql}")
        return
    try:
        written = write_plan(migration, outcome).written
    except FixError as error:
        raise _fail(str(error)) from None
    for path in written:
        typer.echo(f"wrote {path}")


@app.command()
def stats(
    database_url: Annotated[str, typer.Option(help="The database to read pg_class row estimates from.")],
    repo: Annotated[Path, typer.Option(help="Repository to write .github/zdm-stats.yml into.")] = Path("."),
) -> None:
    """Record table sizes (planner estimates only) so severities follow them; commit the file it writes."""
    from bot.stats import read_table_rows, write_stats

    rows = read_table_rows(database_url)
    path = write_stats(repository_root(repo), rows)
    typer.echo(f"wrote {path}: {len(rows)} tables")


@app.command()
def docs(
    output: Annotated[Path, typer.Option(help="Where the rule pages go.")] = Path("docs/rules"),
    check_only: Annotated[bool, typer.Option("--check", help="Fail if the pages are out of date.")] = False,
) -> None:
    """Write one documentation page per rule, generated from the rule modules."""
    from bot.report.docs import is_rule_page, render_index, render_rule_page
    from bot.rules import ALL_RULES

    pages = {f"{rule.id}.md": render_rule_page(rule) for rule in ALL_RULES}
    pages["README.md"] = render_index(ALL_RULES)
    # Generated pages of rules that no longer exist: stale too, and removed when writing.
    orphans = sorted(
        page.name
        for page in (output.glob("*.md") if output.is_dir() else ())
        if page.name not in pages and is_rule_page(page.read_text(encoding="utf-8", errors="replace"))
    )
    if check_only:
        stale = [
            name
            for name, text in pages.items()
            if not (output / name).is_file() or (output / name).read_text(encoding="utf-8") != text
        ]
        if stale or orphans:
            raise _fail(f"out of date in {output}: {', '.join(sorted(stale + orphans))} (run `zdm docs`)")
        return
    output.mkdir(parents=True, exist_ok=True)
    for name, text in pages.items():
        (output / name).write_text(text, encoding="utf-8")
    for name in orphans:
        (output / name).unlink()
    typer.echo(f"wrote {len(pages)} pages to {output}" + (f", removed {len(orphans)}" if orphans else ""))


@app.command()
def rules() -> None:
    """List the rules."""
    from bot.rules import ALL_RULES

    for rule in ALL_RULES:
        typer.echo(f"{rule.id:<30} {rule.severity.value:<8} {rule.title}")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 3000,
    workers: Annotated[int, typer.Option(min=0, help="RQ workers to start beside the receiver.")] = 1,
) -> None:
    """Run the GitHub App: the webhook receiver and workers. Without REDIS_URL, an embedded Redis is started."""
    from bot.service import serve as run
    from bot.settings import Settings, SettingsError

    try:
        run(Settings(), host, port, workers)
    except SettingsError as error:
        raise _fail(str(error)) from None


@app.command()
def worker(
    burst: Annotated[bool, typer.Option(help="Stop once the queue is empty.")] = False,
) -> None:
    """Run one more worker against the shared Redis at REDIS_URL (receivers are stateless; workers scale out)."""
    from bot.service import run_worker
    from bot.settings import Settings, SettingsError

    settings = Settings()
    if not settings.redis_url:
        raise _fail("REDIS_URL is not set: extra workers join the Redis a `zdm serve` or deployment uses")
    try:
        run_worker(settings, settings.redis_url, burst=burst)
    except SettingsError as error:
        raise _fail(str(error)) from None


def main() -> None:
    app()


if __name__ == "__main__":
    main()
