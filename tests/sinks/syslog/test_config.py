"""Unit tests of ``SyslogSinkConfig``: defaults per transport and format, and every problem reported."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from wgsiem.sinks.syslog.config import SyslogSinkConfig


def _config(**kw: Any) -> SyslogSinkConfig:
    return SyslogSinkConfig.model_validate({"type": "syslog", "host": "127.0.0.1", **kw})


@pytest.mark.parametrize(
    ("kw", "port", "framing", "max_bytes"),
    [
        ({}, 514, "octet_counting", 8096),
        ({"transport": "udp"}, 514, "octet_counting", 2048),
        ({"transport": "tls", "framing": "lf"}, 6514, "octet_counting", 8096),  # RFC 5425: always counted
        ({"format": "rfc3164", "transport": "udp"}, 514, "octet_counting", 1024),
        ({"port": 1514, "framing": "lf", "max_message_bytes": 4000}, 1514, "lf", 4000),
    ],
)
def test_effective_defaults(kw: dict[str, Any], port: int, framing: str, max_bytes: int) -> None:
    config = _config(**kw)
    assert (config.effective_port, config.effective_framing, config.effective_max_bytes) == (
        port,
        framing,
        max_bytes,
    )


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(ValidationError) as err:
        _config(facility="local9", sd_id="nopen", leef_delimiter="=", app_name="two words")
    text = str(err.value)
    for fragment in ("facility 'local9'", "sd_id 'nopen'", "leef_delimiter", "app_name"):
        assert fragment in text


def test_unknown_keys_and_half_client_certs_are_refused() -> None:
    with pytest.raises(ValidationError):
        _config(protocol="tcp")
    with pytest.raises(ValidationError, match=r"cert_file and tls\.key_file"):
        _config(transport="tls", tls={"cert_file": "/c.pem"})


def test_tls_files_that_cannot_be_read_are_a_config_error(tmp_path: Any) -> None:
    from wgsiem.errors import ConfigError
    from wgsiem.sinks.syslog.sink import SyslogDeliverer

    key = tmp_path / "client.key"
    key.write_text("-----BEGIN PRIVATE KEY-----\nnot-a-real-key\n-----END PRIVATE KEY-----\n")
    with pytest.raises(ConfigError) as err:
        SyslogDeliverer(
            _config(transport="tls", tls={"cert_file": str(key), "key_file": str(key)}), hostname="h"
        )
    assert "not-a-real-key" not in str(err.value)
    assert "tls.ca_file / tls.cert_file / tls.key_file" in str(err.value)
