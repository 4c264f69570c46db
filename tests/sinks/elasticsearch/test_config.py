"""The ``elasticsearch`` sink's configuration model."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from wgsiem.sinks.elasticsearch.config import ElasticsearchSinkConfig


def make(**kw: Any) -> ElasticsearchSinkConfig:
    return ElasticsearchSinkConfig.model_validate({"type": "elasticsearch", **kw})


def test_defaults() -> None:
    cfg = make()
    assert cfg.hosts == ["https://localhost:9200"] and cfg.namespace == "default"
    assert cfg.distribution == "elasticsearch" and not cfg.install.template


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"namespace": "prod-eu"}, "no '-'"),
        ({"hosts": ["es1:9200"]}, "a host is a URL"),
        ({"api_key": "k", "username": "u", "password": "p"}, "choose one authentication method"),
        ({"username": "u"}, "needs both username and password"),
        ({"ca_fingerprint_sha256": "abc"}, "SHA-256 fingerprint"),
        ({"distribution": "opensearch", "api_key": "k"}, "opensearch: use username/password"),
        ({"distribution": "opensearch", "install": {"ilm": True}}, "opensearch has no ILM"),
        ({"bogus": 1}, "Extra inputs are not permitted"),
    ],
)
def test_invalid(kw: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        make(**kw)


def test_secrets_are_never_printed() -> None:
    cfg = make(api_key="s3cr3t-key")
    assert "s3cr3t-key" not in repr(cfg) and "s3cr3t-key" not in str(cfg.model_dump())
    cfg = make(username="u", password="pa55")
    assert "pa55" not in repr(cfg) and "pa55" not in cfg.model_dump_json()


def test_fingerprint_accepts_colons() -> None:
    fp = ":".join(["AB"] * 32)
    assert make(ca_fingerprint_sha256=fp).ca_fingerprint_sha256 == fp
