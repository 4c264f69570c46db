"""Configuration: safe defaults, paired settings, secrets never printed, doc examples parse."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from wgsiem.config.model import Config
from wgsiem.sinks.prometheus_exporter.config import DEFAULT_PORT, PrometheusExporterConfig

DOC = Path(__file__).parents[3] / "docs" / "sinks" / "prometheus_exporter.md"


def test_defaults_are_loopback_the_wireguard_exporter_port_and_interface_labels_only() -> None:
    cfg = PrometheusExporterConfig()
    assert (cfg.listen_address, cfg.port, DEFAULT_PORT) == ("127.0.0.1", 9586, 9586)
    assert cfg.per_peer_labels is False and cfg.peer_names == {}
    assert cfg.basic_auth_username is None and cfg.tls_cert_path is None


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"basic_auth_username": "prom"}, "basic_auth_username and basic_auth_password"),
        ({"basic_auth_password": "pw"}, "basic_auth_username and basic_auth_password"),
        ({"tls_cert_path": "/c.pem"}, "tls_cert_path and tls_key_path"),
        ({"peer_names": {"k": "alice"}}, "peer_names needs per_peer_labels"),
        ({"port": 70000}, "less than or equal to 65535"),
        ({"listen_adress": "0.0.0.0"}, "Extra inputs are not permitted"),
    ],
)
def test_invalid_settings_are_rejected_with_the_reason(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(message)):
        PrometheusExporterConfig.model_validate(fields)


def test_both_pair_problems_are_reported_at_once() -> None:
    with pytest.raises(ValidationError) as info:
        PrometheusExporterConfig(basic_auth_username="prom", tls_key_path="/k.pem")
    assert "basic_auth" in str(info.value) and "tls_cert_path" in str(info.value)


def test_the_password_is_never_printed() -> None:
    cfg = PrometheusExporterConfig(basic_auth_username="prom", basic_auth_password="s3cr3t-pw")
    assert "s3cr3t-pw" not in repr(cfg) and "s3cr3t-pw" not in str(cfg.model_dump())


def doc_examples() -> list[str]:
    return re.findall(r"```yaml\n(.*?)```", DOC.read_text(), flags=re.S)


def test_every_yaml_example_in_the_docs_is_a_valid_configuration() -> None:
    examples = doc_examples()
    assert len(examples) >= 2
    for text in examples:
        cfg = Config.model_validate(yaml.safe_load(text))
        assert any(isinstance(s, PrometheusExporterConfig) for s in cfg.sinks.values())
