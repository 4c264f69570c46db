"""The ingest pipeline that turns raw ``wg show all dump`` lines (shipped by Filebeat) into ECS.

For teams that cannot run wgsiem on the gateway but can schedule ``wg show all dump`` and ship its
output: each line arrives as ``message``; the pipeline turns it into a ``wireguard.dump`` document
shaped like wgsiem's own ``wg_state`` state (same ``wireguard.interface.*``/``wireguard.peer.*`` names).

Why it is written this way:

* **Few, standard processors** (``dissect``, ``set``, ``gsub``, ``convert``, ``split``, ``date``,
  ``remove``, ``rename``) and ``if`` conditions of one form only (``ctx.a?.b == null`` / ``!= null`` /
  ``== 'literal'``, joined with ``&&``). No Painless scripts: the tests run this exact list through a
  small model of those processors (``tests/sinks/elasticsearch/ingest_model.py``), which is only
  possible when nothing else is used. There is no Elasticsearch here — the model is not Elasticsearch.
* **Secrets never reach the index**: the interface line's private key is a named skip key
  (``%{?private_key}``), the peer's preshared key is reduced to ``present: true/false`` and dropped,
  and ``message`` and ``event.original`` (the raw line, which holds both) are removed — also by the
  pipeline's ``on_failure``, so a line that does not parse is indexed as an error *without* its text.
  The content pack's capture script redacts both keys before the line is ever written (``(hidden)``,
  read as "present"), so the keys need not reach the shipper at all.
* The peer pattern is tried first: the interface pattern (4 tabs) would also match a peer line (8
  tabs), its last key taking the rest of the line.
"""

from __future__ import annotations

from typing import Any

__all__ = ["DUMP_PIPELINE", "dump_pipeline"]

DUMP_PIPELINE = "wgsiem-wg-dump"

_PEER = (
    "%{wireguard.interface.name}\t%{wireguard.peer.public_key}\t%{_wgdump.psk}\t%{_wgdump.endpoint}\t"
    "%{_wgdump.allowed_ips}\t%{_wgdump.latest_handshake}\t%{_wgdump.rx}\t%{_wgdump.tx}\t%{_wgdump.keepalive}"
)
_INTERFACE = (
    "%{wireguard.interface.name}\t%{?private_key}\t%{wireguard.interface.public_key}\t"
    "%{_wgdump.listen_port}\t%{_wgdump.fwmark}"
)
_IS_PEER = "ctx.wireguard?.peer?.public_key != null"
_IS_INTERFACE = "ctx.wireguard?.peer?.public_key == null"


def _set(field: str, value: Any, cond: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"field": field, "value": value}
    if cond:
        body["if"] = cond
    return {"set": body}


def dump_pipeline() -> dict[str, Any]:
    """``PUT _ingest/pipeline/wgsiem-wg-dump`` body."""
    processors: list[dict[str, Any]] = [
        {"dissect": {"tag": "dump_peer", "field": "message", "pattern": _PEER, "ignore_failure": True}},
        {
            "dissect": {
                "tag": "dump_interface",
                "field": "message",
                "pattern": _INTERFACE,
                "if": _IS_INTERFACE,
            }
        },
        {"remove": {"field": "message"}},
        {"remove": {"field": "event.original", "ignore_missing": True}},  # Logstash/Filebeat keep the line
        _set("event.kind", "state"),
        _set("event.module", "wireguard"),
        _set("event.dataset", "wireguard.dump"),
        _set("event.category", ["configuration"]),
        _set("event.type", ["info"]),
        _set("event.action", "dump-interface", _IS_INTERFACE),
        _set("event.action", "dump-peer", _IS_PEER),
        _set("observer.type", "vpn"),
        _set("observer.vendor", "WireGuard"),
        _set("network.protocol", "wireguard"),
        _set("network.transport", "udp"),
        {"set": {"field": "observer.ingress.interface.name", "copy_from": "wireguard.interface.name"}},
        # interface line
        {
            "convert": {
                "field": "_wgdump.listen_port",
                "target_field": "wireguard.interface.listen_port",
                "type": "long",
                "if": "ctx._wgdump?.listen_port != null",
            }
        },
        {
            "rename": {
                "field": "_wgdump.fwmark",
                "target_field": "wireguard.interface.fwmark",
                "if": "ctx._wgdump?.fwmark != null && ctx._wgdump?.fwmark != 'off'",
            }
        },
        # peer line: preshared key → present (the key itself is removed with _wgdump)
        {"gsub": {"field": "_wgdump.psk", "pattern": "^\\(none\\)$", "replacement": "false", "if": _IS_PEER}},
        {
            # a key, or whatever a redacting script put there instead ("(hidden)"): present
            "gsub": {
                "field": "_wgdump.psk",
                "pattern": "^(?!false$).+$",
                "replacement": "true",
                "if": _IS_PEER,
            }
        },
        {
            "convert": {
                "field": "_wgdump.psk",
                "target_field": "wireguard.peer.preshared_key.present",
                "type": "boolean",
                "if": _IS_PEER,
            }
        },
        # endpoint: ip:port or [ipv6]:port, or (none)
        {
            "set": {
                "field": "wireguard.peer.endpoint",
                "copy_from": "_wgdump.endpoint",
                "if": "ctx._wgdump?.endpoint != null && ctx._wgdump?.endpoint != '(none)'",
            }
        },
        {
            "set": {
                "field": "source.ip",
                "copy_from": "wireguard.peer.endpoint",
                "if": "ctx.wireguard?.peer?.endpoint != null",
            }
        },
        {
            "gsub": {
                "field": "source.ip",
                "pattern": "^\\[?(.*?)\\]?:\\d+$",
                "replacement": "$1",
                "ignore_missing": True,
            }
        },
        {"convert": {"field": "source.ip", "type": "ip", "ignore_missing": True}},
        {
            "set": {
                "field": "source.port",
                "copy_from": "wireguard.peer.endpoint",
                "if": "ctx.wireguard?.peer?.endpoint != null",
            }
        },
        {
            "gsub": {
                "field": "source.port",
                "pattern": "^.*:(\\d+)$",
                "replacement": "$1",
                "ignore_missing": True,
            }
        },
        {"convert": {"field": "source.port", "type": "long", "ignore_missing": True}},
        {
            "set": {
                "field": "source.address",
                "copy_from": "source.ip",
                "if": "ctx.source?.ip != null",
            }
        },
        # allowed IPs: a,b,c or (none)
        {
            "split": {
                "field": "_wgdump.allowed_ips",
                "target_field": "wireguard.peer.allowed_ips",
                "separator": ",",
                "if": "ctx._wgdump?.allowed_ips != null && ctx._wgdump?.allowed_ips != '(none)'",
            }
        },
        # latest handshake: epoch seconds, 0 = never
        {
            "date": {
                "field": "_wgdump.latest_handshake",
                "target_field": "wireguard.peer.latest_handshake",
                "formats": ["UNIX"],
                "if": "ctx._wgdump?.latest_handshake != null && ctx._wgdump?.latest_handshake != '0'",
            }
        },
        {
            "convert": {
                "field": "_wgdump.rx",
                "target_field": "wireguard.peer.rx_bytes",
                "type": "long",
                "if": _IS_PEER,
            }
        },
        {
            "convert": {
                "field": "_wgdump.tx",
                "target_field": "wireguard.peer.tx_bytes",
                "type": "long",
                "if": _IS_PEER,
            }
        },
        {"gsub": {"field": "_wgdump.keepalive", "pattern": "^off$", "replacement": "0", "if": _IS_PEER}},
        {
            "convert": {
                "field": "_wgdump.keepalive",
                "target_field": "wireguard.peer.persistent_keepalive_secs",
                "type": "long",
                "if": _IS_PEER,
            }
        },
        {"remove": {"field": "_wgdump", "ignore_missing": True}},
    ]
    return {
        "description": "wgsiem: parse `wg show all dump` lines (interface: 5 fields, peer: 9 fields) into "
        "ECS; keys never indexed",
        "processors": processors,
        "on_failure": [
            {"remove": {"field": ["message", "event.original", "_wgdump"], "ignore_missing": True}},
            _set("event.kind", "pipeline_error"),
            _set("error.message", "{{ _ingest.on_failure_message }}"),
        ],
        "_meta": {"managed_by": "wgsiem"},
    }
