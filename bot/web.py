"""The webhook receiver: verify, drop duplicates, queue, answer. No GitHub calls, no analysis.

POST /api/github/webhooks   202 queued or ignored, 200 duplicate, 401 bad signature, 413 too large,
                            400 malformed, 503 Redis unavailable (GitHub records a failure to redeliver)
GET  /healthz               the process is alive
GET  /readyz                Redis answers
GET  /metrics               Prometheus
"""

from __future__ import annotations

import json
import time
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from githubkit.webhooks import verify
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from redis import Redis
from redis.exceptions import RedisError

from bot import metrics
from bot.events import EventError, work_for
from bot.logs import log, register_secret
from bot.queue import DuplicateDelivery, enqueue_delivery, queue_for
from bot.settings import Settings

WEBHOOK_PATH = "/api/github/webhooks"


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


def create_app(settings: Settings, connection: Redis) -> FastAPI:
    secret = settings.webhook_secret()
    register_secret(secret)
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

    app.state.settings = settings
    app.state.connection = connection
    app.state.queue = queue
    return app
