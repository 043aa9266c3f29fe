"""The App's settings, read from the environment in one place (repository settings live in `.github/zdm.yml`)."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PUBLIC_API = "https://api.github.com"
PUBLIC_WEB = "https://github.com"
CHECK_NAME = "zdm / migrations"
# What the setup page's manifest flow registered, in the data directory (mode 0600).
CREDENTIALS_FILE = "github-app.json"


class SettingsError(ValueError):
    """The environment cannot run the App; the message says which variable to set."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=None, extra="ignore", populate_by_name=True)

    github_app_id: int | None = Field(default=None, alias="GITHUB_APP_ID")
    github_private_key: SecretStr | None = Field(default=None, alias="GITHUB_PRIVATE_KEY")
    github_private_key_path: Path | None = Field(default=None, alias="GITHUB_PRIVATE_KEY_PATH")
    github_webhook_secret: SecretStr | None = Field(default=None, alias="GITHUB_WEBHOOK_SECRET")
    github_api_url: str = Field(default=PUBLIC_API, alias="GITHUB_API_URL")
    redis_url: str | None = Field(default=None, alias="REDIS_URL")
    # Where the embedded Redis keeps its data when REDIS_URL is not set.
    data_dir: Path = Field(default=Path(".zdm"), alias="ZDM_DATA_DIR")
    queue_name: str = Field(default="zdm", alias="ZDM_QUEUE")
    # GitHub redelivers up to 3 days back; a delivery id is remembered longer than that.
    delivery_ttl_seconds: int = Field(default=4 * 24 * 3600, alias="ZDM_DELIVERY_TTL_SECONDS")
    max_body_bytes: int = Field(default=25 * 1024 * 1024, alias="ZDM_MAX_BODY_BYTES")
    # Local demo: accept unsigned webhooks. Never in production.
    demo: bool = Field(default=False, alias="ZDM_DEMO")
    job_timeout_seconds: int = Field(default=600, alias="ZDM_JOB_TIMEOUT_SECONDS")
    # A failed job runs again after each of these delays (seconds), then lands in RQ's failed registry.
    retry_intervals: str = Field(default="10,60,300", alias="ZDM_RETRY_INTERVALS")
    github_timeout_seconds: float = Field(default=30.0, alias="ZDM_GITHUB_TIMEOUT_SECONDS")
    # Rate-limit waits up to this long are slept inside the job; longer ones reschedule it.
    max_inline_wait_seconds: float = Field(default=20.0, alias="ZDM_MAX_INLINE_WAIT_SECONDS")
    log_json: bool = Field(default=True, alias="ZDM_LOG_JSON")
    # How often a receiver asks GitHub for failed deliveries and redelivers them; 0 turns the sweep off.
    sweep_seconds: int = Field(default=300, alias="ZDM_SWEEP_SECONDS")
    # Signs approval records in zdm's comments; defaults to a key derived from the App's private key.
    approval_secret: SecretStr | None = Field(default=None, alias="ZDM_APPROVAL_SECRET")
    # GitHub's web pages (the manifest flow, installation pages); derived from GITHUB_API_URL when unset.
    github_url: str | None = Field(default=None, alias="ZDM_GITHUB_URL")
    # How GitHub and browsers reach this server (behind a proxy, or another port); else the request's own URL.
    public_url: str | None = Field(default=None, alias="ZDM_PUBLIC_URL")
    # Opens the status page (and the setup page, once set); the status page is off without it.
    admin_token: SecretStr | None = Field(default=None, alias="ZDM_ADMIN_TOKEN")
    # On SIGTERM, how long a worker's running job may take to finish before it is stopped and run again later.
    shutdown_grace_seconds: float = Field(default=30.0, alias="ZDM_SHUTDOWN_GRACE_SECONDS")

    @model_validator(mode="after")
    def _key_source(self) -> Settings:
        if self.github_private_key is not None and self.github_private_key_path is not None:
            raise SettingsError("set GITHUB_PRIVATE_KEY or GITHUB_PRIVATE_KEY_PATH, not both")
        return self

    def private_key(self) -> str:
        if self.github_private_key is not None:
            # Environments often carry the PEM with literal \n.
            return self.github_private_key.get_secret_value().replace("\\n", "\n")
        if self.github_private_key_path is not None:
            return self.github_private_key_path.read_text(encoding="utf-8")
        stored = self.stored_app()
        if stored is not None:
            return stored.private_key
        raise SettingsError("GITHUB_PRIVATE_KEY or GITHUB_PRIVATE_KEY_PATH is not set")

    def credentials_path(self) -> Path:
        return self.data_dir / CREDENTIALS_FILE

    def stored_app(self) -> StoredApp | None:
        """The App the setup page registered, when the environment names none. Read on every call: workers and
        the receiver pick it up the moment setup stores it."""
        if self.github_app_id is not None:
            return None
        try:
            data = json.loads(self.credentials_path().read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        return StoredApp(**data)

    def has_environment_credentials(self) -> bool:
        return any(
            value is not None
            for value in (
                self.github_app_id,
                self.github_private_key,
                self.github_private_key_path,
                self.github_webhook_secret,
            )
        )

    def configured(self) -> bool:
        """An App to act as: from the environment, or registered by the setup page."""
        return self.github_app_id is not None or self.stored_app() is not None

    def web_url(self) -> str:
        """GitHub's web address: github.com for the public API, https://HOST for Enterprise Server's /api/v3."""
        if self.github_url:
            return self.github_url.rstrip("/")
        api = self.github_api_url.rstrip("/")
        if api == PUBLIC_API:
            return PUBLIC_WEB
        return api.removesuffix("/api/v3")

    def retry_delays(self) -> list[int]:
        return [int(part) for part in self.retry_intervals.split(",") if part.strip()]

    def approval_key(self) -> bytes:
        from bot.commands import signing_key

        if self.approval_secret is not None and self.approval_secret.get_secret_value():
            return signing_key(self.approval_secret.get_secret_value())
        return signing_key(self.private_key())

    def app_id(self) -> int:
        if self.github_app_id is not None:
            return self.github_app_id
        stored = self.stored_app()
        if stored is not None:
            return stored.id
        raise SettingsError("GITHUB_APP_ID is not set")

    def webhook_secret(self) -> str | None:
        """The secret, or None in demo mode; refuses to run without one otherwise."""
        if self.github_webhook_secret is not None and self.github_webhook_secret.get_secret_value():
            return self.github_webhook_secret.get_secret_value()
        stored = self.stored_app()
        if stored is not None and stored.webhook_secret:
            return stored.webhook_secret
        if self.demo:
            return None
        raise SettingsError(
            "GITHUB_WEBHOOK_SECRET is not set: zdm refuses unsigned webhooks (set ZDM_DEMO=1 for a local demo)"
        )


@dataclass(frozen=True)
class StoredApp:
    """What GitHub's manifest conversion returned that zdm needs, kept in the data directory."""

    id: int
    slug: str
    name: str
    html_url: str
    owner: str
    private_key: str = field(repr=False)
    webhook_secret: str = field(repr=False)

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".partial")
        partial.unlink(missing_ok=True)
        # Created 0600 rather than chmod-ed after: the key is never readable by others, not even for a moment.
        descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            json.dump(asdict(self), file)
        os.replace(partial, path)
