"""Shared helpers: real ECS documents, outbox records, and the contract server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from wgsiem.sinks.elasticsearch.config import ElasticsearchSinkConfig
from wgsiem.sinks.outbox.contract import Pending

from .tls import TlsMaterial, make_tls

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"


def real_documents() -> list[dict[str, Any]]:
    """Every pinned real ECS document (one per source and action), in a stable order."""
    return [orjson.loads(p.read_bytes()) for p in sorted((FIXTURES / "schema" / "ecs").glob("*/*.json"))]


def pending(docs: list[dict[str, Any]], start: int = 0) -> list[Pending]:
    return [Pending(start + i, str(d.get("event", {}).get("id", "")), d) for i, d in enumerate(docs)]


def config(url: str, **kwargs: Any) -> ElasticsearchSinkConfig:
    return ElasticsearchSinkConfig.model_validate({"type": "elasticsearch", "hosts": [url], **kwargs})


@pytest.fixture(scope="session")
def tls_material(tmp_path_factory: pytest.TempPathFactory) -> TlsMaterial:
    return make_tls(tmp_path_factory.mktemp("es-tls"))
