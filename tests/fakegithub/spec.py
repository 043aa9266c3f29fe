"""GitHub's own descriptions, vendored by `extract.py`: the REST OpenAPI subset zdm calls, the GraphQL schema,
real webhook payloads."""

from __future__ import annotations

import copy
import gzip
import json
from functools import cache
from pathlib import Path
from typing import Any

import graphql
from openapi_core import OpenAPI

SPEC = Path(__file__).parent / "spec"


@cache
def rest_description() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(gzip.decompress((SPEC / "rest-openapi.json.gz").read_bytes()))
    return data


@cache
def openapi() -> OpenAPI:
    return OpenAPI.from_dict(rest_description())


@cache
def graphql_schema() -> graphql.GraphQLSchema:
    # GitHub's published SDL defines a few fields twice; GitHub's own server accepts it, so do we.
    text = gzip.decompress((SPEC / "schema.graphql.gz").read_bytes()).decode()
    schema = graphql.build_schema(text, assume_valid_sdl=True)
    # It also deprecates some interface implementations and not the interface, which graphql-core's strict
    # schema check refuses; queries are still validated against every type and field.
    schema._validation_errors = []
    return schema


def example(name: str) -> Any:
    """A response example from the REST description (a fresh copy to modify)."""
    value = rest_description()["components"]["examples"][name]["value"]
    return copy.deepcopy(value)


@cache
def _webhooks() -> dict[str, list[dict[str, Any]]]:
    data: dict[str, list[dict[str, Any]]] = json.loads(
        gzip.decompress((SPEC / "webhook-examples.json.gz").read_bytes())
    )
    return data


def webhook_example(event: str, action: str | None = None) -> dict[str, Any]:
    """GitHub's first example payload for the event and action (a fresh copy to modify)."""
    for payload in _webhooks()[event]:
        if action is None or payload.get("action") == action:
            return copy.deepcopy(payload)
    raise KeyError(f"no example for {event}.{action}")
