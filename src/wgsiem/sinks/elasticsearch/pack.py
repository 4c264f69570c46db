"""The Elastic content pack as files: ``{relative path: bytes}`` (written by ``wgsiem export elastic``).

Pure: nothing here touches the disk or the network, so every artifact is built and checked in the
tests exactly as it is written. Layout:

==================================  ============================================================
``elasticsearch/``                  request bodies: ``_component_template/``, ``_index_template/``,
                                    ``_ilm/policy/``, ``_ingest/pipeline/``, ``_security/role/``,
                                    an API key request; ``install.sh`` PUTs them with curl
``filebeat/``                       ``filebeat.yml`` (filestream + journald → the ingest pipeline)
                                    and the capture timer that writes redacted dump lines
``logstash/wgsiem-wg-dump.conf``    the same dump path through Logstash
``metricbeat/prometheus-wgsiem.yml`` Prometheus module for wgsiem's ``/metrics`` (port 9586)
``kibana/wgsiem.ndjson``            data view, visualizations, alerts search, dashboard
``detection_rules/``                the built-in detections as Elastic detection rules
==================================  ============================================================
"""

from __future__ import annotations

import importlib
import importlib.util
import json
from collections.abc import Iterable
from typing import Any

from wgsiem.errors import WgsiemError

from .dashboard import saved_objects
from .ingest import DUMP_PIPELINE, dump_pipeline
from .templates import ILM_POLICY, component_templates, ilm_policy, index_templates

__all__ = ["DETECT_EXPORT", "ROLES", "build_pack", "detection_rules"]

DETECT_EXPORT = "wgsiem.detect.export"
STREAMS = "logs-wireguard.*-*"
DUMP_STREAM = "logs-wireguard.dump-default"
DUMP_LOG = "/var/log/wgsiem/wg-dump.log"

ROLES: dict[str, dict[str, Any]] = {
    # what the sink needs: write new documents into the WireGuard data streams, nothing else
    "wgsiem_writer": {
        "cluster": ["monitor"],
        "indices": [{"names": [STREAMS], "privileges": ["create_doc", "auto_configure"]}],
        "metadata": {"managed_by": "wgsiem"},
    },
    # what `install:` needs, once: templates, ILM, pipeline
    "wgsiem_setup": {
        "cluster": ["monitor", "manage_index_templates", "manage_ilm", "manage_pipeline"],
        "indices": [],
        "metadata": {"managed_by": "wgsiem"},
    },
    # analysts: read the VPN data streams only
    "wgsiem_reader": {
        "cluster": [],
        "indices": [{"names": [STREAMS], "privileges": ["read", "view_index_metadata"]}],
        "metadata": {"managed_by": "wgsiem"},
    },
}


def _json(body: Any) -> bytes:
    return (json.dumps(body, indent=2, sort_keys=False) + "\n").encode()


def _api_key_request() -> dict[str, Any]:
    """``POST _security/api_key`` body: a key limited to the writer role, for the sink's ``api_key``."""
    return {
        "name": "wgsiem-sink",
        "role_descriptors": {
            "wgsiem_writer": {k: v for k, v in ROLES["wgsiem_writer"].items() if k != "metadata"}
        },
        "metadata": {"managed_by": "wgsiem"},
    }


def _install_script(files: Iterable[str]) -> bytes:
    lines = [
        "#!/bin/sh",
        "# PUT every request body of this folder into the cluster, in dependency order.",
        '# Usage: ES_URL=https://es:9200 ES_AUTH="ApiKey <key>" [ES_CA=ca.pem] sh install.sh',
        "set -eu",
        'cd "$(dirname "$0")"',
        'ca=""; [ -n "${ES_CA:-}" ] && ca="--cacert $ES_CA"',
        "put() {",
        '  echo "PUT $1"',
        '  curl -fsS $ca -X PUT "$ES_URL/$1" -H "Authorization: $ES_AUTH" \\',
        '       -H "Content-Type: application/json" --data-binary "@$2" >/dev/null',
        "}",
    ]
    for rel in files:
        api = rel.removesuffix(".json")
        lines.append(f"put '{api}' '{rel}'")
    return ("\n".join(lines) + "\n").encode()


def _filebeat_yml() -> str:
    return f"""\
# Filebeat: ship `wg show all dump` lines (written by wg-dump.service, keys redacted) through the
# `{DUMP_PIPELINE}` ingest pipeline into the `{DUMP_STREAM}` data stream.
filebeat.inputs:
  - type: filestream
    id: wgsiem-wg-dump
    enabled: true
    paths:
      - {DUMP_LOG}
    index: {DUMP_STREAM}
    pipeline: {DUMP_PIPELINE}
    prospector.scanner.check_interval: 10s
  - type: journald
    id: wgsiem-wg-dump-journald
    enabled: false        # enable instead of filestream when wg-dump.service logs to the journal
    include_matches.match:
      - SYSLOG_IDENTIFIER=wg-dump
    index: {DUMP_STREAM}
    pipeline: {DUMP_PIPELINE}

# the data stream's template comes from `wgsiem export elastic` (elasticsearch/), not from Filebeat
setup.template.enabled: false
setup.ilm.enabled: false

output.elasticsearch:
  hosts: ["${{ES_URL:https://localhost:9200}}"]
  api_key: "${{ES_API_KEY}}"          # id:api_key of a key with the wgsiem_writer role
  ssl.certificate_authorities: ["/etc/filebeat/es-ca.pem"]
"""


def _capture_units() -> dict[str, str]:
    # the private key (interface column 2) and any preshared key (peer column 3) are replaced
    # before the line is written: the file and the shipper never hold a key
    awk = 'awk \'BEGIN{FS=OFS="\\t"} NF==5{$2="(hidden)"} NF==9&&$3!="(none)"{$3="(hidden)"} {print}\''
    service = f"""\
[Unit]
Description=wgsiem: append a redacted `wg show all dump` to {DUMP_LOG}

[Service]
Type=oneshot
UMask=0077
ExecStart=/bin/sh -c 'mkdir -p /var/log/wgsiem && wg show all dump | {awk.replace("$", "$$")} >> {DUMP_LOG}'
"""
    timer = """\
[Unit]
Description=wgsiem: capture WireGuard state every 30 seconds

[Timer]
OnBootSec=30s
OnUnitActiveSec=30s
AccuracySec=1s

[Install]
WantedBy=timers.target
"""
    return {"filebeat/wg-dump.service": service, "filebeat/wg-dump.timer": timer}


def _logstash_conf() -> str:
    return f"""\
# Logstash: the scripted-dump path without Filebeat. Reads the redacted dump lines written by
# wg-dump.service and lets the `{DUMP_PIPELINE}` ingest pipeline parse them.
input {{
  file {{
    id => "wgsiem_wg_dump"
    path => ["{DUMP_LOG}"]
    start_position => "end"
    mode => "tail"
  }}
}}

filter {{
  mutate {{
    id => "wgsiem_drop_original"
    # ECS mode copies the raw line to [event][original]; the pipeline needs only [message]
    remove_field => ["[event][original]", "[log][file][path]", "host"]
  }}
}}

output {{
  elasticsearch {{
    id => "wgsiem_elasticsearch"
    hosts => ["${{ES_URL}}"]
    api_key => "${{ES_API_KEY}}"
    ssl_enabled => true
    ssl_certificate_authorities => ["/etc/logstash/es-ca.pem"]
    data_stream => "true"
    data_stream_type => "logs"
    data_stream_dataset => "wireguard.dump"
    data_stream_namespace => "default"
    pipeline => "{DUMP_PIPELINE}"
  }}
}}
"""


def _metricbeat_yml() -> str:
    return """\
# Metricbeat Prometheus module (modules.d/prometheus-wgsiem.yml): wgsiem's own telemetry
# (events received/sent/dropped per component, outbox depth and lag, delivery errors).
- module: prometheus
  metricsets: ["collector"]
  period: 15s
  hosts: ["localhost:9586"]
  metrics_path: /metrics
  metrics_filters:
    include: ["wgsiem_*"]
"""


def detection_rules() -> tuple[list[dict[str, Any]], str | None]:
    """The built-in detections as Kibana detection rules (import NDJSON lines), from
    ``wgsiem.detect.export`` (the detection component owns the conversion; this only packs it).

    Each rule as a Lucene ``query`` rule; a rule Lucene cannot express (a Sigma correlation) as an
    ES|QL rule instead. Returns ``(rules, None)``, or ``([], why)`` when that module is absent or
    cannot convert here (a pySigma backend missing) — the pack is still written, without rules.
    """
    if importlib.util.find_spec(DETECT_EXPORT) is None:
        return [], f"{DETECT_EXPORT} is not installed"
    module = importlib.import_module(DETECT_EXPORT)
    convert = getattr(module, "convert_rules", None)
    to_kibana = getattr(module, "kibana_rule", None)
    if convert is None or to_kibana is None:
        return [], f"{DETECT_EXPORT} offers no convert_rules()/kibana_rule()"
    try:
        skipped: list[tuple[str, str]] = []
        converted = list(convert("lucene", skipped=skipped))
        if skipped:
            names = {name for name, _ in skipped}
            converted += [c for c in convert("esql") if getattr(c, "name", None) in names]
        rules = [dict(to_kibana(c)) for c in converted]
    except (WgsiemError, ImportError) as exc:
        return [], f"the detections could not be converted: {exc}"
    return rules, None


def build_pack(*, retention_days: int = 180, namespace: str = "default") -> dict[str, bytes]:
    """Every artifact of the pack, by relative path."""
    files: dict[str, bytes] = {}
    order: list[str] = []

    def request(rel: str, body: Any) -> None:
        files[f"elasticsearch/{rel}"] = _json(body)
        order.append(rel)

    request(f"_ilm/policy/{ILM_POLICY}.json", ilm_policy(retention_days=retention_days))
    request(f"_ingest/pipeline/{DUMP_PIPELINE}.json", dump_pipeline())
    for name, body in component_templates("elasticsearch", ilm=True).items():
        request(f"_component_template/{name}.json", body)
    for name, body in index_templates().items():
        request(f"_index_template/{name}.json", body)
    for name, body in ROLES.items():
        request(f"_security/role/{name}.json", body)
    files["elasticsearch/api_key_request.json"] = _json(_api_key_request())
    files["elasticsearch/install.sh"] = _install_script(order)

    files["filebeat/filebeat.yml"] = _filebeat_yml().replace("-default", f"-{namespace}").encode()
    files.update({k: v.encode() for k, v in _capture_units().items()})
    files["logstash/wgsiem-wg-dump.conf"] = _logstash_conf().replace('"default"', f'"{namespace}"').encode()
    files["metricbeat/prometheus-wgsiem.yml"] = _metricbeat_yml().encode()
    files["kibana/wgsiem.ndjson"] = b"".join(
        json.dumps(obj, sort_keys=True).encode() + b"\n" for obj in saved_objects()
    )
    rules, why = detection_rules()
    if rules:
        files["detection_rules/wgsiem_rules.ndjson"] = b"".join(
            json.dumps(r, sort_keys=True).encode() + b"\n" for r in rules
        )
    else:
        files["detection_rules/README.md"] = (
            "# detection rules not included\n\n"
            f"{why}. Re-run `wgsiem export elastic` with a wgsiem that ships `{DETECT_EXPORT}`.\n"
        ).encode()
    return files
