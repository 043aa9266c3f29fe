"""The webhook receiver: verify, drop duplicates, queue, answer. No GitHub calls, no analysis.

POST /api/github/webhooks   202 queued or ignored, 200 duplicate, 401 bad signature, 413 too large,
                            400 malformed, 503 Redis unavailable (GitHub records a failure to redeliver)
GET  /healthz               the process is alive
GET  /readyz                Redis answers
GET  /metrics               Prometheus
GET  /                      before an App exists: the setup page (GitHub's manifest flow); then the status page,
                            behind ZDM_ADMIN_TOKEN (off without it)
GET  /setup/callback        GitHub's way back from the manifest flow: stores the App's credentials
POST /login                 the admin token, for a session cookie
POST /jobs/{id}/retry       a failed job, queued again
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

from fastapi import FastAPI, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from githubkit.webhooks import verify
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from redis import Redis
from redis.exceptions import RedisError

from bot import lifecycle, manifest, metrics, pages, status
from bot.events import FORGET, EventError, work_for
from bot.logs import log, redact, register_secret
from bot.queue import DuplicateDelivery, enqueue_delivery, queue_for, waiting
from bot.settings import Settings, SettingsError

WEBHOOK_PATH = manifest.WEBHOOK_PATH
SETUP_STATE_KEY = "zdm:setup:state:{}"
# GitHub's manifest codes expire after an hour; so does the state that goes with one.
SETUP_STATE_SECONDS = 3600
SESSION_COOKIE = "zdm_admin"


class _BodyTooLarge(Exception):
    pass


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _BodyTooLarge
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def create_app(
    settings: Settings, connection: Redis, on_configured: Callable[[], None] | None = None
) -> FastAPI:
    """The receiver. `on_configured` runs once the setup page has registered an App (to start the workers)."""
    if settings.configured() or settings.has_environment_credentials():
        register_secret(settings.webhook_secret())
    queue = queue_for(connection, settings)
    app = FastAPI(title="zdm", docs_url=None, redoc_url=None, openapi_url=None)
    receiver_metrics = metrics.ReceiverMetrics(connection)

    def answer(status: int, event: str, outcome: str, started: float, **extra: Any) -> JSONResponse:
        receiver_metrics.deliveries.labels(event=event, outcome=outcome).inc()
        receiver_metrics.ack_seconds.observe(time.perf_counter() - started)
        return JSONResponse({"outcome": outcome, **extra}, status_code=status)

    @app.post(WEBHOOK_PATH)
    async def webhook(request: Request) -> JSONResponse:
        started = time.perf_counter()
        event = request.headers.get("x-github-event", "")
        delivery = request.headers.get("x-github-delivery", "")
        try:
            body = await _read_body(request, settings.max_body_bytes)
        except _BodyTooLarge:
            return answer(413, event, "too-large", started)
        try:
            # Read per delivery: the setup page may have just stored the first one.
            secret = settings.webhook_secret()
        except SettingsError:
            return answer(401, event, "not-set-up", started, error="no GitHub App yet: register it at /")
        if secret is not None:
            signature = request.headers.get("x-hub-signature-256", "")
            if not signature or not verify(secret, body, signature):
                log.warning("webhook.refused", reason="bad signature", delivery=delivery, event_name=event)
                return answer(401, event, "bad-signature", started, error="signature missing or invalid")
        if not event or not delivery:
            return answer(
                400, event, "malformed", started, error="X-GitHub-Event and X-GitHub-Delivery are required"
            )
        try:
            payload = json.loads(body)
            if not isinstance(payload, dict):
                raise ValueError("payload is not a JSON object")
            work = work_for(event, delivery, payload)
        except (ValueError, EventError, KeyError, TypeError) as error:
            return answer(400, event, "malformed", started, error=f"unreadable payload: {error}")
        if work is None:
            return answer(202, event, "ignored", started)
        try:
            job_id = enqueue_delivery(connection, queue, settings, work)
        except DuplicateDelivery:
            return answer(200, event, "duplicate", started)
        except RedisError as error:
            log.error("webhook.queue_unavailable", delivery=delivery, error=str(error))
            return answer(
                503, event, "queue-unavailable", started, error="queue unavailable, redeliver later"
            )
        if work.kind == FORGET:
            try:
                lifecycle.drop_waiting(connection, queue, settings, work)
            except RedisError as error:  # queued all the same: the forget job drops them when it runs
                log.warning("webhook.drop_failed", delivery=delivery, error=str(error))
        log.info("webhook.queued", delivery=delivery, event_name=event, action=work.action, job=job_id)
        return answer(202, event, "queued", started, job=job_id)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz() -> JSONResponse:
        try:
            connection.ping()
        except RedisError as error:
            return JSONResponse({"status": "redis unavailable", "error": str(error)}, status_code=503)
        return JSONResponse({"status": "ready"})

    @app.get("/metrics")
    async def prometheus() -> Response:
        return Response(generate_latest(receiver_metrics.registry), media_type=CONTENT_TYPE_LATEST)

    def page(template: str, status_code: int = 200, **values: Any) -> HTMLResponse:
        return HTMLResponse(pages.render(template, **values), status_code=status_code)

    def message(title: str, body: str, status_code: int, link: str = "", link_text: str = "") -> HTMLResponse:
        return page(
            "message.html",
            status_code,
            title=title,
            message=body,
            error=status_code >= 400,
            link=link,
            link_text=link_text,
        )

    def session_value() -> str:
        # The cookie proves the token was typed without being the token.
        token = settings.admin_token.get_secret_value() if settings.admin_token else ""
        return hmac.new(token.encode(), b"zdm admin session", hashlib.sha256).hexdigest()

    def admitted(request: Request) -> bool:
        if settings.admin_token is None or not settings.admin_token.get_secret_value():
            return False
        scheme, _, bearer = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and bearer:
            return hmac.compare_digest(bearer.encode(), settings.admin_token.get_secret_value().encode())
        return hmac.compare_digest(request.cookies.get(SESSION_COOKIE, "").encode(), session_value().encode())

    def public_url(request: Request) -> str:
        return (settings.public_url or str(request.base_url)).rstrip("/")

    def needs_setup() -> bool:
        return not settings.configured() and not settings.demo

    @app.get("/", response_class=HTMLResponse)
    def home(request: Request, organization: str = "") -> HTMLResponse:
        if needs_setup():
            # Whoever finishes setup decides which App this server acts as: with a token set, only its holder.
            if settings.admin_token is not None and not admitted(request):
                return page("login.html", 401, title="Sign in", error="", next="/")
            return setup_page(request, organization.strip())
        if settings.admin_token is None:
            return message("Status page off", "Set ZDM_ADMIN_TOKEN to turn the status page on.", 404)
        if not admitted(request):
            return page("login.html", 401, title="Sign in", error="", next="/")
        if not settings.configured():
            return message("No App", "ZDM_DEMO=1 without a GitHub App: there is nothing to show.", 404)
        return status_page()

    def setup_page(request: Request, organization: str) -> HTMLResponse:
        state = secrets.token_urlsafe(24)
        connection.set(SETUP_STATE_KEY.format(state), "1", ex=SETUP_STATE_SECONDS)
        github = settings.web_url()
        try:
            action = manifest.registration_url(github, state, organization or None)
        except ValueError as error:
            return message("Set up zdm", str(error), 400, link="/", link_text="Back")
        base = public_url(request)
        return page(
            "setup.html",
            title="Set up zdm",
            action=action,
            manifest=manifest.manifest_for(base),
            webhook_url=base + WEBHOOK_PATH,
            github_host=github,
            organization=organization,
            permissions=manifest.permissions(),
            events=manifest.events(),
        )

    @app.get(manifest.CALLBACK_PATH, response_class=HTMLResponse)
    def setup_callback(code: str = "", state: str = "") -> HTMLResponse:
        from githubkit.exception import GitHubException

        from bot.github import register_from_manifest

        if not needs_setup():
            return message(
                "Already set up",
                "This server already acts as a GitHub App.",
                409,
                link="/",
                link_text="Status",
            )
        if not code or not state or not connection.getdel(SETUP_STATE_KEY.format(state)):
            log.warning("setup.refused", reason="unknown or expired state")
            return message(
                "Setup link not valid",
                "This link was not issued by this server, was used already, or is over an hour old.",
                400,
                link="/",
                link_text="Start again",
            )
        try:
            registered = register_from_manifest(settings, connection, code)
        except GitHubException as error:
            log.error("setup.conversion_failed", error=redact(str(error)))
            return message("GitHub refused", f"GitHub did not hand over the App: {redact(str(error))}", 502)
        register_secret(registered.webhook_secret)
        registered.save(settings.credentials_path())
        log.info("setup.registered", app_id=registered.id, slug=registered.slug, owner=registered.owner)
        if on_configured is not None:
            on_configured()
        return page(
            "registered.html",
            title="Registered",
            name=registered.name,
            app_id=registered.id,
            owner=registered.owner,
            install_url=f"{registered.html_url}/installations/new",
        )

    def status_page() -> HTMLResponse:
        from rq.job import Job
        from rq.registry import FailedJobRegistry, ScheduledJobRegistry, StartedJobRegistry

        from bot.github import AppAdapter, Installation

        stored = settings.stored_app()
        app_name, app_url = (stored.name, stored.html_url) if stored else (f"App {settings.app_id()}", "")
        installations: list[Installation] = []
        github_error = ""
        try:
            with AppAdapter(settings, connection) as github:
                if stored is None:
                    app_name, app_url = github.describe()
                installations = github.installations()
        except Exception as error:  # the page still shows what Redis knows
            github_error = redact(f"{type(error).__name__}: {error}")[:300]
        failed = FailedJobRegistry(queue=queue)
        failed_jobs = [
            {"id": job.id, "description": job.description or job.id, "reason": _reason(job)}
            for job in Job.fetch_many(failed.get_job_ids(0, 49), connection=connection)
            if job is not None
        ]
        return page(
            "status.html",
            title=app_name,
            app_name=app_name,
            app_url=app_url,
            install_url=f"{app_url}/installations/new" if app_url else "",
            installations=installations,
            github_error=github_error,
            # Waiting in RQ's queue, and behind their installation's job there.
            queued=queue.count + waiting(connection),
            running=StartedJobRegistry(queue=queue).count,
            scheduled=ScheduledJobRegistry(queue=queue).count,  # type: ignore[no-untyped-call]
            reviews=status.recent(connection),
            failed=failed_jobs,
        )

    @app.post("/login", response_class=HTMLResponse, response_model=None)
    async def login(request: Request) -> Response:
        form = parse_qs((await request.body()).decode(errors="replace"))
        token = form.get("token", [""])[0]
        expected = settings.admin_token.get_secret_value() if settings.admin_token else ""
        if not expected or not hmac.compare_digest(token.encode(), expected.encode()):
            log.warning("admin.refused")
            return page("login.html", 401, title="Sign in", error="That is not the admin token.", next="/")
        response = RedirectResponse("/", status_code=303)
        response.set_cookie(
            SESSION_COOKIE,
            session_value(),
            httponly=True,
            samesite="strict",
            secure=public_url(request).startswith("https://"),
        )
        return response

    @app.post("/jobs/{job_id}/retry", response_model=None)
    def retry(job_id: str, request: Request) -> Response:
        from rq.registry import FailedJobRegistry

        if not admitted(request):
            return message("Sign in", "Sign in on the status page first.", 401, link="/", link_text="Sign in")
        try:
            FailedJobRegistry(queue=queue).requeue(job_id)
        except Exception as error:  # the job expired or was retried already
            return message("Not retried", redact(str(error)), 404, link="/", link_text="Status")
        log.info("admin.retried", job=job_id)
        return RedirectResponse("/", status_code=303)

    app.state.settings = settings
    app.state.connection = connection
    app.state.queue = queue
    return app


def _reason(job: Any) -> str:
    """A failed job's last error line, redacted (a token may sit in an exception's text)."""
    result = job.latest_result()
    text = (result.exc_string if result is not None else None) or job.exc_info or ""
    lines = [line for line in str(text).strip().splitlines() if line.strip()]
    return redact(lines[-1] if lines else "unknown")[:500]
