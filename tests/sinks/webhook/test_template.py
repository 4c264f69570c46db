"""The ``${field.path}`` body template: typed substitution over structure, errors at config time."""

from __future__ import annotations

import orjson
import pytest
from pydantic import ValidationError

from wgsiem.sinks.webhook.config import WebhookSinkConfig
from wgsiem.sinks.webhook.template import compile_template

DOC = {
    "@timestamp": "2026-11-25T21:00:00.000Z",
    "event": {"id": "e1", "action": "handshake", "risk_score": 42},
    "source": {"ip": "198.51.100.7"},
    "wireguard": {"peer": {"name": 'evil","x":"y'}},
}


def test_exact_placeholders_keep_their_json_type_and_missing_is_null() -> None:
    render = compile_template(
        {
            "id": "${event.id}",
            "score": "${event.risk_score}",
            "ev": "${event}",
            "none": "${host.name}",
            "k": 1,
        }
    )
    assert render(DOC) == {
        "id": "e1",
        "score": 42,
        "ev": DOC["event"],
        "none": None,
        "k": 1,
    }


def test_interpolation_in_text_flat_keys_escape_and_whole_document() -> None:
    render = compile_template(
        ["${@timestamp} ${event.action} from ${source.ip}${nope}", "$${literal}", "${.}"]
    )
    assert render(DOC) == ["2026-11-25T21:00:00.000Z handshake from 198.51.100.7", "${literal}", DOC]


def test_values_cannot_break_out_of_their_string() -> None:
    body = orjson.dumps(compile_template({"text": "peer ${wireguard.peer.name}"})(DOC))
    assert orjson.loads(body) == {"text": 'peer evil","x":"y'}


def test_no_template_sends_the_document() -> None:
    assert compile_template(None)(DOC) is DOC


@pytest.mark.parametrize("bad", ["${event id}", "${}", "${a..b}", "${__import__('os')}"])
def test_bad_placeholders_are_config_errors(bad: str) -> None:
    with pytest.raises(ValidationError, match="bad placeholder"):
        WebhookSinkConfig(type="webhook", url="http://127.0.0.1:9/hook", body_template={"x": bad})


def test_url_must_be_http() -> None:
    with pytest.raises(ValidationError, match="http"):
        WebhookSinkConfig(type="webhook", url="file:///etc/passwd")
