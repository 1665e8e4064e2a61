"""Fixtures for the collection API: a write key per cast workspace, and a client that posts
Segment messages the way the official libraries do."""

import base64
import gzip
import json

import pytest
from django.test import Client

from siyu.tracking import actions


def basic(raw: str) -> str:
    return "Basic " + base64.b64encode(f"{raw}:".encode()).decode()


class Collector:
    """Posts JSON (optionally gzipped) to the collection API with a write key in the
    Authorization header (the default), in the body, or not at all."""

    def __init__(self, key: str | None):
        self.key = key
        self.client = Client()

    def post(
        self,
        path: str,
        body,
        *,
        auth: str = "basic",
        gzipped: bool = False,
        raw: bytes | None = None,
        headers: dict | None = None,
    ):
        headers = dict(headers or {})
        if raw is None:
            if auth == "body" and isinstance(body, dict):
                body = {**body, "writeKey": self.key}
            raw = json.dumps(body).encode()
        if gzipped:
            raw = gzip.compress(raw)
            headers["Content-Encoding"] = "gzip"
        if auth == "basic" and self.key is not None:
            headers["Authorization"] = basic(self.key)
        return self.client.post(path, raw, content_type="application/json", headers=headers)


@pytest.fixture
def write_key(cast, system_actor):
    """(key, raw) for the cast's workspace."""
    return actions.writekey_create(workspace=cast.workspace, actor=system_actor, name="website")


@pytest.fixture
def collector(write_key) -> Collector:
    return Collector(write_key[1])


@pytest.fixture
def outsider_collector(cast, system_actor) -> Collector:
    _, raw = actions.writekey_create(
        workspace=cast.outsider_workspace, actor=system_actor, name="their site"
    )
    return Collector(raw)
