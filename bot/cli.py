"""The `zdm` command line: check, fix, deploy, stats, docs, rules, serve, worker.

Start-up stays light: each command imports what it needs inside its body, so `zdm check` never loads the
GitHub App's dependencies, nor pydantic (only a `.github/zdm.yml` to validate does). The command line is
click: typer builds a pydantic adapter for every option before a command runs.
"""

from __future__ import annotations

import gc
import os
import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from bot.report.per_file import ShowFile, ShownFile
from bot.report.tally import Tally

if TYPE_CHECKING:
    from bot.analysis.config import RepoConfig
    from bot.analysis.history import Hazard
    from bot.analysis.model import FileResult
    from bot.git_changes import Changes


@click.group(
    help="zdm: stops Prisma migrations from taking PostgreSQL production down.",
    context_settings={"help_option_names": ["-h", "--help"]},
)
def app() -> None:
    pass


def repository_root(start: Path) -> Path:
    """The git top level above `start`, else the current directory."""
    here = (start if start.is_dir() else start.parent).resolve()
    for candidate in (here, *here.parents):
        if (candidate / ".git").exists():
            return candidate
    return Path.cwd().resolve()


def _fail(message: str) -> click.exceptions.Exit:
    click.echo(f"zdm: {message}", err=True)
    return click.exceptions.Exit(2)


def _load_config(root: Path, postgres_version: int | None, prisma_version: str | None) -> RepoConfig:
    """`<root>/.github/zdm.yml` with the command line's overrides; a bad file exits 2 naming the key."""
    from dataclasses import replace

    from bot.analysis.config import ConfigError, load_config

    try:
        config = load_config(root)
    except ConfigError as error:
        raise _fail(str(error)) from None
    if postgres_version is not None:
        if not 11 <= postgres_version <= 18:
            raise _fail("--postgres-version must be between 11 and 18")
        config = replace(config, postgres_version=postgres_version)
    if prisma_version is not None:
        config = replace(config, prisma_version=prisma_version)
    return config


@app.command()
# Plain strings: click.Path stats every argument, and a pre-commit hook or a whole corpus passes thousands;
# `check` tells which are missing itself.
@click.argument("paths", nargs=-1, metavar="[PATHS]...")
@click.option(
    "--format",
    "-f",
    "output",
    type=click.Choice(["text", "json", "sarif", "github"]),
    default="text",
    show_default=True,
    help="Output format.",
)
@click.option(
    "--base",
    metavar="REF",
    help="Check only the migrations added or changed since the merge base with REF (committed, staged, "
    "modified or untracked); the others are replayed for the schema.",
)
@click.option("--postgres-version", type=int, help="PostgreSQL major version in production.")
@click.option("--prisma-version", help="Prisma version (default: read from package.json).")
@click.option("--verbose", "-v", is_flag=True, help="Show safe statements too.")
@click.option("--no-cache", is_flag=True, help="Analyse everything again; neither read nor write .zdm_cache.")
def check(
    paths: tuple[str, ...],
    output: str,
    base: str | None,
    postgres_version: int | None,
    prisma_version: str | None,
    verbose: bool,
    no_cache: bool,
) -> None:
    """Classify every statement of the Prisma migrations found; exit 1 if one blocks or cannot be read.

    With no path: the current repository (the git top level above the current directory). Exit 2 for a
    configuration error or a missing path. Text and JSON show paths from the current directory; SARIF and
    annotations from the repository root. In GitHub Actions (GITHUB_STEP_SUMMARY set) the verdict, statement
    table, safe plans and checklist are appended to the job summary.
    """
    if _own_process:
        gc.disable()
    targets = [Path(path) for path in paths] or [repository_root(Path.cwd())]
    missing = [str(p) for p in targets if not p.exists()]
    if missing:
        raise _fail(f"no such file or directory: {', '.join(missing)}")
    root = repository_root(targets[0])
    config = _load_config(root, postgres_version, prisma_version)
    only: frozenset[Path] | None = None
    nothing_found = "no Prisma migration found (looked for migration_lock.toml folders)"
    hazards: list[Hazard] = []
    # Hazards name files by their path in the repository git reports (`--base`).
    top = root
    if base is not None:
        from bot.git_changes import GitError, changed_since

        try:
            changes = changed_since(root, base)
            hazards = _history_hazards(changes, targets, config)
            top = changes.top or root
        except GitError as error:
            raise _fail(f"--base {base}: {error}") from None
        only = changes.paths
        nothing_found = (
            f"no migration added or changed since {changes.merge_base[:12]} (merge base with {base})"
        )
    # GitHub reads annotations and SARIF: paths from the repository root. People read text and JSON: paths
    # from where they ran zdm, as ruff and eslint print them.
    shown_from = Path.cwd() if output in ("text", "json") else root
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    terminal = output == "text" and sys.stdout.isatty()
    show = ShowFile(
        output,
        color=terminal,
        width=shutil.get_terminal_size().columns - 2 if terminal else None,
        verbose=verbose,
        keep_result=bool(summary),
    )
    shown: list[ShownFile] = []
    notes: list[str] = []
    # Nothing to check (a pull request that touches no SQL) needs no parser: answer before importing it.
    if only is None or any(path.suffix == ".sql" for path in only):
        from bot.analysis.roots import check_paths

        # Only JSON and the job summary show plans: text, annotations and SARIF need no planner's keys.
        plans = output == "json" or bool(summary)
        cache = None
        if not no_cache and not os.environ.get("ZDM_NO_CACHE"):
            from bot.analysis.cache import AnalysisCache

            cache = AnalysisCache.at(root, repr(config))
        run = check_paths(
            targets,
            config,
            relative_to=root,
            shown_from=shown_from,
            only=only,
            each=show,
            plans=plans,
            cache=cache,
        )
        shown, notes = run.files, run.notes
    if not shown and not hazards:
        notes.append(nothing_found)
    tally = Tally.total(file.tally for file in shown)
    results = [file.result for file in shown if file.result is not None]
    hazards = [_shown_hazard(hazard, top, shown_from) for hazard in hazards]
    _print_report(output, shown, results, tally, notes, color=terminal, hazards=hazards)
    if summary:
        _append_job_summary(Path(summary), results, notes, shown_from, hazards)
    failing = tally.fails_check or any(hazard.fails_check for hazard in hazards)
    global _exit_without_teardown
    _exit_without_teardown = True
    raise click.exceptions.Exit(1 if failing else 0)


def _history_hazards(changes: Changes, targets: list[Path], config: RepoConfig) -> list[Hazard]:
    """What the change does to the history of the roots it touches (an edited, deleted or reordered
    migration, a changed lock file); nothing to read when it touches none."""
    from bot.git_history import touched_histories

    histories = touched_histories(changes, targets, config)
    if not histories:
        return []
    from bot.analysis.history import find_hazards

    return [hazard for history in histories for hazard in find_hazards(history, config)]


def _shown_hazard(hazard: Hazard, repository: Path, shown_from: Path) -> Hazard:
    """The hazard's repository path shown as the files are (from the current directory, for people)."""
    from dataclasses import replace

    from bot.analysis.roots import shown_path

    return replace(hazard, path=shown_path(repository / hazard.path, shown_from))


def _print_report(
    output: str,
    shown: list[ShownFile],
    results: list[FileResult],
    tally: Tally,
    notes: list[str],
    color: bool,
    hazards: list[Hazard],
) -> None:
    """The files' parts of the report, made where they were analysed, and what goes around them. Problems
    with the migration history come first: they concern the change as a whole."""
    if output == "json":
        from bot.report.json_report import render_json_document

        click.echo(render_json_document([file.text for file in shown], tally, notes, hazards))
    elif output == "sarif":
        from bot.report.sarif import render_sarif

        click.echo(render_sarif(results, hazards=hazards))
    elif output == "github":
        from bot.report.github import render_github_hazards

        click.echo(render_github_hazards(hazards) + "".join(file.text for file in shown), nl=False)
    else:
        from bot.report.text import render_hazards_text, render_text_end

        width = shutil.get_terminal_size().columns - 2 if color else None
        click.echo(
            render_hazards_text(hazards, color=color, width=width)
            + "".join(file.text for file in shown)
            + render_text_end(tally, notes, color=color, hazards=hazards),
            nl=False,
        )


def _append_job_summary(
    summary: Path, files: list[FileResult], notes: list[str], shown_from: Path, hazards: list[Hazard]
) -> None:
    """The App's summary comment (verdict, history, table, plans, checklist), for the workflow run's page."""
    from bot.analysis.roots import read_sql
    from bot.report.pull_request import ChangedMigration, job_summary

    changes = [ChangedMigration(f.path, read_sql(shown_from / f.path), f) for f in files]
    # Each step has its own summary file, and other steps of the job may have written to it: append.
    with summary.open("a", encoding="utf-8") as out:
        out.write(job_summary(changes, notes, hazards) + "\n")


@app.command()
@click.argument("migration", type=click.Path(path_type=Path))
@click.option("--dry-run", is_flag=True, help="Print the plan and the SQL; write nothing.")
@click.option(
    "--database-url", help="A database to ask (_prisma_migrations) whether the migration was applied."
)
@click.option("--prisma-version", help="Prisma version (default: read from package.json).")
def fix(migration: Path, dry_run: bool, database_url: str | None, prisma_version: str | None) -> None:
    """Rewrite a migration that has not been applied yet into migrations that do not block, like `ruff --fix`.

    MIGRATION is a migration folder: prisma/migrations/<timestamp>_<name>.
    """
    from bot.fixes.apply import FixError, applied_migrations, plan_migration, write_plan

    root = repository_root(migration)
    config = _load_config(root, None, prisma_version)
    try:
        outcome = plan_migration(migration, config, root)
    except FixError as error:
        raise _fail(str(error)) from None
    plan = outcome.plan
    if not plan.changes_anything:
        click.echo(f"{migration}: nothing to fix.")
        return
    if database_url:
        if migration.name in applied_migrations(database_url):
            raise _fail(
                f"{migration.name} is already applied in that database: editing it would make Prisma report a "
                "checksum mismatch. Put the fix in a new migration instead."
            )
    elif not dry_run:
        click.echo(
            "zdm cannot see your databases: if this migration was already applied anywhere (staging, a shared "
            "dev database), undo this edit and put the fix in a new migration (`npx prisma migrate status` tells).",
            err=True,
        )
    click.echo(
        f"Prisma {outcome.prisma or 'version unknown (assuming before 7.4)'}: {migration.name} becomes"
    )
    click.echo(plan.render())
    for line in plan.summaries:
        click.echo(f"  - {line}")
    for index, reason in sorted(plan.no_rewrite.items()):
        click.echo(f"  - line {outcome.result.statements[index].line_start}: kept as written, {reason}")
    from bot.fixes.checklist import checklist, render_checklist

    items = checklist([outcome.result], outcome.prisma)
    if items:
        click.echo("\nBefore deploying (for the migration as it was written):")
        click.echo(render_checklist(items, markdown=False))
    if dry_run:
        for item in plan.migrations:
            click.echo(f"\n-- {item.name}/migration.sql\n{item.sql}")
        return
    try:
        written = write_plan(migration, outcome).written
    except FixError as error:
        raise _fail(str(error)) from None
    for path in written:
        click.echo(f"wrote {path}")


@app.command()
@click.option("--database-url", required=True, help="The database to read table sizes from (catalog only).")
@click.option(
    "--repo",
    type=click.Path(path_type=Path),
    default=Path("."),
    help="Repository to write .github/zdm-stats.yml into.",
)
@click.option(
    "--calibrate",
    is_flag=True,
    help="Instead: time each kind of work on tables built in this SCRATCH database (refused when it holds any "
    "table) and record the fitted constants.",
)
def stats(database_url: str, repo: Path, calibrate: bool) -> None:
    """Record table sizes (from the catalog; nothing is scanned) so lock-time estimates and severities follow
    them; commit the file it writes."""
    from bot.stats import read_stats_file, read_table_sizes, write_stats

    root = repository_root(repo)
    if calibrate:
        from bot.verify.lock_time import CalibrationRefused
        from bot.verify.lock_time import calibrate as fit_constants

        try:
            calibration, samples = fit_constants(
                database_url, progress=lambda line: click.echo(line, err=True)
            )
        except CalibrationRefused as error:
            raise _fail(str(error)) from None
        kept, _ = read_stats_file(root)
        path = write_stats(root, kept, calibration)
        click.echo(
            f"wrote {path}: constants fitted on {len(samples)} timings (PostgreSQL {calibration.postgres}); "
            f"measured/estimated stayed within {calibration.low:g}-{calibration.high:g}"
        )
        return
    sizes = read_table_sizes(database_url)
    path = write_stats(root, sizes)
    click.echo(f"wrote {path}: {len(sizes)} tables")


# `zdm deploy`'s exit codes: pipelines tell a refusal (nothing was touched) from a failure.
DEPLOY_FAILED = 1
DEPLOY_REFUSED = 3
DEPLOY_NOTHING_TO_DO = 4


@app.command()
@click.argument("path", required=False, type=click.Path(path_type=Path, exists=True))
@click.option(
    "--database-url",
    help="The database to migrate (default: the direct URL the Prisma schema or prisma.config.ts names, "
    "then DATABASE_URL).",
)
@click.option("--dry-run", is_flag=True, help="Read, plan and ask the preflight; change nothing.")
@click.option("--format", "output", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option(
    "--lock-timeout",
    type=float,
    default=0.5,
    show_default=True,
    help="Seconds a statement waits for its lock.",
)
@click.option(
    "--deadline",
    type=float,
    default=900.0,
    show_default=True,
    help="Seconds a statement keeps retrying for its locks before the deploy stops.",
)
@click.option("--as-written", is_flag=True, help="Run each migration as written, not zdm fix's rewrite.")
@click.option(
    "--allow-blocking",
    is_flag=True,
    help="Go ahead when a statement will block its table longer than max_lock_seconds.",
)
@click.option(
    "--detailed-exitcode",
    is_flag=True,
    help=f"Exit {DEPLOY_NOTHING_TO_DO} when nothing was pending (else 0).",
)
def deploy(
    path: Path | None,
    database_url: str | None,
    dry_run: bool,
    output: str,
    lock_timeout: float,
    deadline: float,
    as_written: bool,
    allow_blocking: bool,
    detailed_exitcode: bool,
) -> None:
    """Apply the pending Prisma migrations of PATH (default: the current repository) as the careful manual
    process would: preflight, short lock timeouts with retries, index builds CONCURRENTLY, Prisma's own
    bookkeeping. Exit 0 applied (or nothing to do), 1 failed or stopped, 2 usage error, 3 refused by the
    preflight (nothing changed), 4 nothing to do with --detailed-exitcode."""
    from bot.deploy.database_url import DatabaseUrlError, resolve_database_url
    from bot.deploy.deploy import DeployOptions, DeployUsageError, migration_root, write_github_summary
    from bot.deploy.deploy import deploy as run_deploy
    from bot.deploy.events import Collect, JsonLines, Text
    from bot.deploy.runner import Outcome, Timing

    start = path or repository_root(Path.cwd())
    collect = Collect(JsonLines() if output == "json" else Text())
    try:
        root = migration_root(start)
        target = resolve_database_url(database_url, root.path.parent)
    except (DeployUsageError, DatabaseUrlError) as error:
        raise _fail(str(error)) from None
    options = DeployOptions(
        timing=Timing(lock_timeout=lock_timeout, deadline=deadline),
        dry_run=dry_run,
        as_written=as_written,
        allow_blocking=allow_blocking,
    )
    try:
        result = run_deploy(root.path, target, options, collect)
    except DeployUsageError as error:
        raise _fail(str(error)) from None
    except Exception as error:
        if type(error).__module__.startswith("psycopg"):
            raise _fail(f"cannot use the database at {target.shown}: {str(error).strip()}") from None
        raise
    from bot.deploy.events import Event

    verdict = {
        Outcome.APPLIED: "Applied.",
        Outcome.NOTHING_TO_DO: "Dry run: nothing changed." if dry_run else "Nothing to do.",
        Outcome.REFUSED: f"Refused: {result.message}.",
        Outcome.FAILED: f"Failed: {result.message}.",
        Outcome.STOPPED: f"Stopped: {result.message}.",
    }[result.outcome]
    done = Event(
        "done",
        verdict + (f"\nNext: {result.next_step}." if result.next_step else ""),
        {"outcome": result.outcome.value, "next_step": result.next_step},
    )
    collect(done)
    write_github_summary(result, collect.events)
    code = {
        Outcome.APPLIED: 0,
        Outcome.NOTHING_TO_DO: DEPLOY_NOTHING_TO_DO if detailed_exitcode and not dry_run else 0,
        Outcome.REFUSED: DEPLOY_REFUSED,
        Outcome.FAILED: DEPLOY_FAILED,
        Outcome.STOPPED: DEPLOY_FAILED,
    }[result.outcome]
    raise click.exceptions.Exit(code)


@app.command()
@click.option(
    "--output", type=click.Path(path_type=Path), default=Path("docs/rules"), help="Where the rule pages go."
)
@click.option("--check", "check_only", is_flag=True, help="Fail if the pages are out of date.")
def docs(output: Path, check_only: bool) -> None:
    """Write one documentation page per rule, generated from the rule modules."""
    from bot.report.docs import is_rule_page, rule_pages

    pages = rule_pages()
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
    click.echo(f"wrote {len(pages)} pages to {output}" + (f", removed {len(orphans)}" if orphans else ""))


@app.command()
def rules() -> None:
    """List the rules."""
    from bot.rules import ALL_RULES, HISTORY_RULES

    for rule in (*ALL_RULES, *HISTORY_RULES):
        click.echo(f"{rule.id:<30} {rule.severity.value:<8} {rule.title}")


@app.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=int, default=3000, show_default=True, help="Port to listen on.")
@click.option(
    "--workers",
    type=click.IntRange(min=0),
    default=1,
    show_default=True,
    help="RQ workers to start beside the receiver.",
)
def serve(host: str, port: int, workers: int) -> None:
    """Run the GitHub App: the webhook receiver and workers. Without REDIS_URL, an embedded Redis is started."""
    from bot.service import serve as run
    from bot.settings import Settings, SettingsError

    try:
        run(Settings(), host, port, workers)
    except SettingsError as error:
        raise _fail(str(error)) from None


@app.command()
@click.option("--burst/--no-burst", default=False, help="Stop once the queue is empty.")
def worker(burst: bool) -> None:
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


# Set by `check` once its report is written: it started no process that outlives it and holds no file open,
# so the interpreter's teardown (freeing every object of a large analysis, a tenth of a second on the
# corpus) is skipped, as mypy does.
_exit_without_teardown = False
# True when zdm runs as its own process (not inside a test's CliRunner): `check` then also pauses the cycle
# collector, which only slows the imports and the one analysis such a process makes.
_own_process = False


def main() -> None:
    global _own_process
    _own_process = True
    try:
        app(prog_name="zdm")
    except SystemExit as done:
        if not _exit_without_teardown:
            raise
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except (BrokenPipeError, ValueError):  # the reader went away (`| head`); nothing left to say
            pass
        os._exit(0 if done.code is None else done.code if isinstance(done.code, int) else 1)


if __name__ == "__main__":
    main()
