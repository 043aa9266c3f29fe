"""The analysis cache (bot/analysis/cache.py): a warm run parses nothing and reports exactly what a cold one
does; content, settings and zdm's version invalidate it; a corrupt or foreign entry is a miss; two runs may
write at once."""

from __future__ import annotations

import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from bot.analysis.cache import CACHE_FOLDER, AnalysisCache
from bot.analysis.config import RepoConfig
from bot.analysis.roots import check_paths

SHOP = Path(__file__).parent.parent / "examples" / "shop"


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "user-cache"))
    copy = tmp_path / "shop"
    shutil.copytree(SHOP, copy)
    (copy / ".git").mkdir()
    return copy


def _check(repo: Path, config: RepoConfig, cache: AnalysisCache | None) -> list[object]:
    return list(check_paths([repo], config, relative_to=repo, cache=cache).files)


def test_a_warm_run_parses_nothing_and_says_the_same(repo: Path, parsed_statements: list[str]) -> None:
    config = RepoConfig()
    cold = _check(repo, config, AnalysisCache.at(repo, repr(config)))
    assert (repo / CACHE_FOLDER / ".gitignore").read_text().splitlines()[-1] == "*"
    parsed_statements.clear()
    parses = parsed_statements
    warm = _check(repo, config, AnalysisCache.at(repo, repr(config)))
    assert parses == []
    assert warm == cold == _check(repo, config, None)


def test_an_edit_analyses_that_file_and_the_ones_after_it(repo: Path, parsed_statements: list[str]) -> None:
    config = RepoConfig()
    _check(repo, config, AnalysisCache.at(repo, repr(config)))
    second = sorted((repo / "prisma" / "migrations").glob("*/migration.sql"))[-1]
    second.write_text(second.read_text() + '\nCREATE INDEX "User_country_idx" ON "User"("country");\n')
    parsed_statements.clear()
    parses = parsed_statements
    edited = _check(repo, config, AnalysisCache.at(repo, repr(config)))
    # Only the edited file is read again: the first one's result comes from the cache, and the schema it built
    # from the entry the cold run kept... or by replaying it, never by analysing it again.
    assert any("User_country_idx" in text for text in parses)
    assert edited == _check(repo, config, None)


def test_a_new_migration_starts_from_the_kept_schema(repo: Path, parsed_statements: list[str]) -> None:
    config = RepoConfig()
    _check(repo, config, AnalysisCache.at(repo, repr(config)))
    folder = repo / "prisma" / "migrations" / "20240401000000_more"
    folder.mkdir()
    (folder / "migration.sql").write_text('ALTER TABLE "User" ADD COLUMN "bio" TEXT;\n')
    parsed_statements.clear()
    parses = parsed_statements
    grown = _check(repo, config, AnalysisCache.at(repo, repr(config)))
    assert parses == ['ALTER TABLE "User" ADD COLUMN "bio" TEXT;']
    assert grown == _check(repo, config, None)


def test_settings_and_versions_that_change_a_result_miss(repo: Path, parsed_statements: list[str]) -> None:
    config = RepoConfig()
    cache = AnalysisCache.at(repo, repr(config))
    _check(repo, config, cache)
    parsed_statements.clear()
    parses = parsed_statements
    other = replace(config, postgres_version=11)
    assert _check(repo, other, AnalysisCache.at(repo, repr(other))) == _check(repo, other, None)
    assert parses, "another PostgreSQL version is another result"
    parses.clear()
    newer = replace(cache, folder=cache.folder.parent / "0.2.0-other")
    _check(repo, config, newer)
    assert parses, "another zdm version reads none of this one's entries"


def test_corrupt_and_foreign_entries_are_misses(repo: Path, parsed_statements: list[str]) -> None:
    config = RepoConfig()
    cache = AnalysisCache.at(repo, repr(config))
    expected = _check(repo, config, cache)
    entries = sorted(cache.folder.rglob("*.pickle"))
    assert entries
    entries[0].write_bytes(entries[0].read_bytes()[:40])
    # Written by someone without this user's key (a cache folder committed to a pull request).
    foreign = replace(cache, key=b"x" * 32)
    foreign.store_result(entries[1].stem, "anything")
    parsed_statements.clear()
    parses = parsed_statements
    assert _check(repo, config, cache) == expected
    assert parses


def test_two_runs_at_once_write_the_same_cache(repo: Path, tmp_path: Path) -> None:
    command = [sys.executable, "-m", "bot.cli", "check", str(repo), "--format", "json"]
    env = {"XDG_CACHE_HOME": str(tmp_path / "user-cache"), "PATH": "/usr/bin:/bin"}
    runs = [subprocess.Popen(command, stdout=subprocess.PIPE, env=env, cwd=repo) for _ in range(2)]
    outputs = [run.communicate(timeout=120)[0] for run in runs]
    warm = subprocess.run(command, stdout=subprocess.PIPE, env=env, cwd=repo, check=False).stdout
    uncached = subprocess.run(
        [*command, "--no-cache"], stdout=subprocess.PIPE, env=env, cwd=repo, check=False
    ).stdout
    assert outputs[0] == outputs[1] == warm == uncached
    assert not list((repo / CACHE_FOLDER).rglob(".tmp-*"))
