"""``SplunkHecSinkConfig``: what is accepted, what is refused, and that the token stays hidden."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from wgsiem.sinks.splunk_hec.config import SplunkHecSinkConfig

from .support import TOKEN


def make(**kw: Any) -> SplunkHecSinkConfig:
    return SplunkHecSinkConfig.model_validate(
        {"type": "splunk_hec", "endpoint": "https://s:8088", "token": TOKEN, **kw}
    )


def test_defaults() -> None:
    c = make(endpoint="https://splunk.example.net:8088/")
    assert c.endpoint == "https://splunk.example.net:8088"
    assert (c.output_schema, c.compression, c.gzip_level, c.ack, c.index) == (
        "cim+ecs",
        "gzip",
        1,
        False,
        None,
    )
    assert make(schema="ecs").output_schema == "ecs"


@pytest.mark.parametrize(
    "bad",
    [
        {"endpoint": "https://s:8088/services/collector"},
        {"endpoint": "ftp://s"},
        {"token": "  "},
        {"index": "_internal"},
        {"index": "Wire Guard"},
        {"channel": "not-a-guid"},
        {"schema": "ocsf"},
        {"ack_timeout_secs": 0},
        {"gzip_level": 0},
        {"unknown": 1},
    ],
)
def test_refused(bad: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        make(**bad)


def test_token_is_never_printed() -> None:
    c = make(channel="0aeeac95-ac74-4aa9-b30d-6c4c0ac581ba")
    for text in (repr(c), str(c), str(c.model_dump()), c.model_dump_json()):
        assert TOKEN not in text
    assert c.token.get_secret_value() == TOKEN
