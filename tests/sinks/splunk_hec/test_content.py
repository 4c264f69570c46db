"""The exported Splunk app: strict conf syntax, known settings, CIM coverage of real events, the dump
extractions on a real `wg show all dump`, well-formed XML, and the alert action against a receiver."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar
from xml.etree import ElementTree as ET

import pytest
from click.testing import CliRunner

from wgsiem.schema import to_cim
from wgsiem.sinks.splunk_hec.content import (
    APP_ID,
    DUMP_SOURCETYPE,
    EVENTTYPES,
    SOURCETYPES,
    AppOptions,
    app_files,
    correlation_rules,
)
from wgsiem.sinks.splunk_hec.encoder import sourcetype_of

from .conf_parser import ConfError, ConfFile, parse_conf
from .support import FIXTURES, alert_document, real_documents

API_TOKEN = "wgsiem-api-token-7d1f0c2b9e"

# Setting names per file (Splunk's *.conf.spec); an entry ending in '*' is a prefix.
KNOWN: dict[str, set[str]] = {
    "app.conf": {
        "is_configured", "build", "is_visible", "label", "author", "version", "description", "id",
        "check_for_updates", "name",
    },
    "props.conf": {
        "description", "category", "pulldown_type", "KV_MODE", "SHOULD_LINEMERGE", "TRUNCATE", "LINE_BREAKER",
        "DATETIME_CONFIG", "REPORT-*", "EVAL-*", "SEDCMD-*", "FIELDALIAS-*", "EXTRACT-*",
    },
    "transforms.conf": {"REGEX", "FORMAT", "DELIMS", "FIELDS", "MV_ADD", "SOURCE_KEY"},
    "inputs.conf": {"disabled", "interval", "index", "sourcetype", "source"},
    "eventtypes.conf": {"search", "description", "priority", "disabled"},
    "savedsearches.conf": {
        "description", "search", "dispatch.earliest_time", "dispatch.latest_time", "cron_schedule",
        "enableSched", "alert.track", "alert.severity", "alert.digest_mode", "alert.suppress",
        "alert.suppress.fields", "alert.suppress.period", "counttype", "relation", "quantity",
        "action.wgsiem_propose", "action.wgsiem_propose.param.*",
    },
    "alert_actions.conf": {
        "is_custom", "label", "description", "payload_format", "python.version",
        "alert.execute.cmd", "alert.execute.cmd.arg.*", "param.*",
    },
    "default.meta": {"access", "export", "owner"},
}  # fmt: skip


@pytest.fixture(scope="module")
def files() -> dict[str, str]:
    return app_files(AppOptions(index="wireguard", respond_url="https://127.0.0.1:8443"))


def conf(files: dict[str, str], rel: str) -> ConfFile:
    return parse_conf(files[rel], rel)


def _known(file: str, key: str) -> bool:
    allowed = KNOWN[file]
    return key in allowed or any(a.endswith("*") and key.startswith(a[:-1]) for a in allowed)


def test_every_conf_parses_strictly_with_known_settings(files: dict[str, str]) -> None:
    offenders = []
    confs = [rel for rel in files if rel.endswith((".conf", ".meta"))]
    assert len(confs) == 9
    for rel in confs:
        parsed = conf(files, rel)
        base = rel.rsplit("/", 1)[1]
        assert parsed.stanzas, rel
        for stanza, settings in parsed.stanzas.items():
            for key in settings:
                if base == "tags.conf":
                    if settings[key] not in ("enabled", "disabled"):
                        offenders.append(f"{rel} [{stanza}] {key} = {settings[key]}")
                elif not _known(base, key):
                    offenders.append(f"{rel} [{stanza}] {key}")
    assert offenders == []


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("[a]\nkey value\n", 2),
        ("[a]\nk = 1\nk = 2\n", 3),
        ("[a]\n[a]\n", 2),
        ("[a]\n  k = 1\n", 2),
        ("[a]\nk = 1 \\\n", 2),
    ],
)
def test_the_conf_parser_is_strict(text: str, line: int) -> None:
    with pytest.raises(ConfError) as exc:
        parse_conf(text, "x.conf")
    assert exc.value.line == line


def test_conf_parser_continuation_and_default_stanza() -> None:
    parsed = parse_conf("# c\ntop = 1\n[s]\nsearch = a \\\n| b\nempty =\n", "x.conf")
    assert parsed.stanzas == {"default": {"top": "1"}, "s": {"search": "a \n| b", "empty": ""}}


def test_app_conf(files: dict[str, str]) -> None:
    app = conf(files, "default/app.conf").stanzas
    assert app["package"]["id"] == APP_ID and app["id"]["name"] == APP_ID
    assert app["launcher"]["version"] == app["id"]["version"]


def test_props_declares_every_sourcetype_the_sink_sends(files: dict[str, str]) -> None:
    props = conf(files, "default/props.conf").stanzas
    sent = {sourcetype_of(d, "wireguard") for d in [*real_documents(), alert_document()]}
    assert sent <= set(props) and set(SOURCETYPES) | {DUMP_SOURCETYPE} == set(props)
    for st in SOURCETYPES:
        assert props[st]["KV_MODE"] == "json"


def _eventtypes_matching(cim: dict[str, Any], eventtypes: dict[str, dict[str, str]]) -> set[str]:
    """Evaluate the app's eventtype searches (``cim_data_model=X`` and ``"tag{}"=t`` terms) on a body."""
    out = set()
    for name, stanza in eventtypes.items():
        terms = re.findall(r'(cim_data_model|"tag\{\}")=(\S+)', stanza["search"])
        if not terms or name == "wgsiem_dump":
            continue
        ok = all(
            (cim.get("cim_data_model") == v) if k == "cim_data_model" else (v in cim.get("tag", []))
            for k, v in terms
        )
        if ok:
            out.add(name)
    return out


def test_eventtypes_and_tags_give_each_real_event_exactly_its_cim_tags(files: dict[str, str]) -> None:
    eventtypes = conf(files, "default/eventtypes.conf").stanzas
    tags = conf(files, "default/tags.conf").stanzas
    models = set()
    for doc in [*real_documents(), alert_document()]:
        cim = to_cim(doc)
        matched = _eventtypes_matching(cim, eventtypes)
        got = {t for et in matched for t, state in tags[f"eventtype={et}"].items() if state == "enabled"}
        want = set(cim["tag"])
        if cim.get("cim_data_model"):
            models.add(cim["cim_data_model"])
            assert got == want | {"wireguard"}, doc["event"]["action"]
        else:
            assert want == {"wireguard"} and matched == set()
    assert models == {"Network_Sessions", "Network_Traffic", "Change", "Alerts", "Authentication"}
    assert {name for name, _, _ in EVENTTYPES} | {"wgsiem_dump"} == set(eventtypes)


# ---- the `wg show all dump` path ----------------------------------------------------------------


def _dump_fixture() -> str:
    return (FIXTURES / "wg" / "dump_3_peers.txt").read_text()


def _secrets(dump: str) -> set[str]:
    out = set()
    for line in dump.splitlines():
        f = line.split("\t")
        if len(f) == 5:
            out.add(f[1])
        elif len(f) == 9 and f[2] != "(none)":
            out.add(f[2])
    return out


def _py_regex(splunk: str) -> re.Pattern[str]:
    return re.compile(splunk.replace("(?<", "(?P<"))


def _sed(expr: str) -> tuple[re.Pattern[str], str]:
    m = re.fullmatch(r"s/((?:[^/\\]|\\.)*)/((?:[^/\\]|\\.)*)/g", expr)
    assert m, expr
    pattern = m.group(1).replace("\\/", "/")
    repl = re.sub(r"\\(\d)", r"\\g<\1>", m.group(2)).replace("\\t", "\t")
    return re.compile(pattern), repl


def test_sedcmds_mask_private_and_preshared_keys_of_a_real_dump(files: dict[str, str]) -> None:
    props = conf(files, "default/props.conf").stanzas[DUMP_SOURCETYPE]
    dump = _dump_fixture()
    secrets = _secrets(dump)
    assert len(secrets) >= 2
    masked = []
    for line in dump.splitlines():
        for key in ("SEDCMD-hide_private_key", "SEDCMD-hide_preshared_key"):
            rx, repl = _sed(props[key])
            line = rx.sub(repl, line)
        masked.append(line)
    text = "\n".join(masked)
    assert not [s for s in secrets if s in text]
    assert text.count("(hidden)") == len(secrets)
    assert [len(m.split("\t")) for m in masked] == [len(x.split("\t")) for x in dump.splitlines()]
    for key in ("SEDCMD-hide_private_key", "SEDCMD-hide_preshared_key"):
        assert re.fullmatch(r"s/.*/\\1\(hidden\)\\2/g", props[key])  # no escapes in the replacement


def test_src_ip_eval_regex_takes_the_address_out_of_endpoints(files: dict[str, str]) -> None:
    ev = conf(files, "default/props.conf").stanzas[DUMP_SOURCETYPE]["EVAL-src_ip"]
    m = re.search(r'replace\(endpoint, "(.*)", "\\1"\)\)$', ev)
    assert m
    rx = re.compile(m.group(1))
    endpoints = ("203.0.113.11:49437", "[2001:db8::7]:51820", "[fe80::1%eth0]:51820")
    got = [rx.sub(r"\1", e) for e in endpoints]
    assert got == ["203.0.113.11", "2001:db8::7", "fe80::1"]


def _run_dump_script(files: dict[str, str], tmp_path: Path) -> str:
    script = tmp_path / "wg_show_dump.sh"
    script.write_text(files["bin/wg_show_dump.sh"])
    fake_wg = tmp_path / "wg"
    fake_wg.write_text(
        f"#!/bin/sh\n[ \"$*\" = 'show all dump' ] && cat {FIXTURES / 'wg' / 'dump_3_peers.txt'}\n"
    )
    fake_wg.chmod(0o755)
    res = subprocess.run(
        ["sh", str(script)], env={**os.environ, "WG": str(fake_wg)}, capture_output=True, text=True
    )
    assert res.returncode == 0, res.stderr
    return res.stdout


def test_scripted_input_hides_keys_and_transforms_extract_the_fields(
    files: dict[str, str], tmp_path: Path
) -> None:
    out = _run_dump_script(files, tmp_path)
    dump = _dump_fixture()
    assert not [s for s in _secrets(dump) if s in out]
    transforms = conf(files, "default/transforms.conf").stanzas
    peer = _py_regex(transforms["wgsiem_dump_peer"]["REGEX"])
    iface = _py_regex(transforms["wgsiem_dump_interface"]["REGEX"])
    lines = out.splitlines()
    assert len(lines) == len(dump.splitlines())
    for raw, line in zip(dump.splitlines(), lines, strict=True):
        f = raw.split("\t")
        if len(f) == 9:
            m = peer.match(line)
            assert m and iface.match(line) is None
            assert m["peer_public_key"] == f[1] and m["endpoint"] == f[3] and m["allowed_ips"] == f[4]
            assert (m["transfer_rx"], m["transfer_tx"]) == (f[6], f[7])
            assert m["preshared_key_state"] in ("(none)", "(hidden)")
        else:
            m = iface.match(line)
            assert m and peer.match(line) is None
            assert m["interface_public_key"] == f[2] and m["listen_port"] == f[3]
            assert m["private_key_state"] == "(hidden)"


# ---- searches, XML ------------------------------------------------------------------------------


def test_savedsearches_hold_the_converted_correlation_searches(files: dict[str, str]) -> None:
    saved = conf(files, "default/savedsearches.conf").stanzas
    rules, why = correlation_rules()
    assert why is None, why  # wgsiem.detect.export present: the Sigma rules must be converted
    assert len(saved) == 1 + len(rules) and len(rules) >= 2
    for r in rules:
        stanza = saved[f"wgsiem - {r.title}"]
        search = " ".join(stanza["search"].split())
        assert (
            search.count('index=wireguard sourcetype="wireguard:*"')
            == r.query.count('sourcetype="wireguard:*"')
            >= 1
        )
        assert search.replace("index=wireguard ", "") == " ".join(r.query.split())
        assert stanza["action.wgsiem_propose"] == "1"
        assert stanza["action.wgsiem_propose.param.base_url"] == "https://127.0.0.1:8443"
    for stanza in saved.values():
        assert stanza["cron_schedule"] and stanza["search"]


def test_dashboard_nav_and_alert_form_are_well_formed_xml(files: dict[str, str]) -> None:
    dash = ET.fromstring(files["default/data/ui/views/wgsiem_overview.xml"])
    assert dash.tag == "dashboard" and dash.get("version") == "1.1"
    queries = [q.text or "" for q in dash.iter("query")]
    assert len(queries) == 6 and all(q.startswith("index=wireguard eventtype=wgsiem_") for q in queries)
    eventtypes = set(conf(files, "default/eventtypes.conf").stanzas)
    for q in queries:
        assert re.search(r"eventtype=(\w+)", q)[1] in eventtypes  # type: ignore[index]
    nav = ET.fromstring(files["default/data/ui/nav/default.xml"])
    assert nav.find("view").get("name") == "wgsiem_overview"  # type: ignore[union-attr]
    form = ET.fromstring(files["default/data/ui/alerts/wgsiem_propose.html"])
    names = {i.get("name") for i in form.iter("input")}
    params = {
        f"action.wgsiem_propose.{k}"
        for k in conf(files, "default/alert_actions.conf").stanzas["wgsiem_propose"]
    }
    assert names and names <= params


# ---- the alert action ---------------------------------------------------------------------------


class _Receiver(BaseHTTPRequestHandler):
    got: ClassVar[list[dict[str, Any]]] = []
    status: ClassVar[int] = 201

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).got.append({"path": self.path, "headers": dict(self.headers), "body": json.loads(body)})
        self.send_response(type(self).status)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"id": "prop-1", "state": "proposed"}')

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[str]:
    _Receiver.got = []
    _Receiver.status = 201
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def _run_action(
    files: dict[str, str], tmp_path: Path, payload: dict[str, Any]
) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "wgsiem_propose.py"
    script.write_text(files["bin/wgsiem_propose.py"])
    # -I: isolated, like Splunk's own interpreter: no wgsiem on the path, stdlib only
    return subprocess.run(
        [sys.executable, "-I", str(script), "--execute"],
        input=json.dumps(payload),
        capture_output=True,
        text=True,
        timeout=30,
    )


def _payload(url: str, **conf: Any) -> dict[str, Any]:
    alert = to_cim(alert_document())
    return {
        "app": APP_ID,
        "search_name": "wgsiem - Alert raised by wgsiem",
        "sid": "scheduler__admin__wgsiem__RMD5abc",
        "results_file": "/nonexistent/results.csv.gz",
        "configuration": {"base_url": url, "token": API_TOKEN, **conf},
        "result": {k: (v if isinstance(v, str) else json.dumps(v)) for k, v in alert.items()},
    }


def test_alert_action_posts_a_proposal(files: dict[str, str], tmp_path: Path, receiver: str) -> None:
    payload = _payload(receiver, playbook="quarantine-peer", reason="forged source addresses")
    res = _run_action(files, tmp_path, payload)
    assert res.returncode == 0, res.stderr
    (req,) = _Receiver.got
    assert req["path"] == "/api/v1/proposals"
    assert req["headers"]["Authorization"] == f"Bearer {API_TOKEN}"
    assert req["headers"]["Content-Type"] == "application/json"
    assert req["body"] == {
        "playbook": "quarantine-peer",
        "alert": payload["result"],
        "reason": "forged source addresses",
    }
    assert API_TOKEN not in res.stderr + res.stdout


def test_alert_action_defaults_and_failures(files: dict[str, str], tmp_path: Path, receiver: str) -> None:
    res = _run_action(files, tmp_path, _payload(receiver + "/"))
    assert res.returncode == 0
    body = _Receiver.got[-1]["body"]
    assert body["playbook"] is None and body["reason"].startswith(
        "Splunk alert: wgsiem - Alert raised by wgsiem"
    )
    _Receiver.status = 500
    res = _run_action(files, tmp_path, _payload(receiver))
    assert res.returncode == 3 and "HTTP 500" in res.stderr
    res = _run_action(files, tmp_path, _payload(receiver, token=""))
    assert res.returncode == 2 and "param.token" in res.stderr
    res = _run_action(files, tmp_path, _payload("http://127.0.0.1:1"))
    assert res.returncode == 3 and "unreachable" in res.stderr
    for r in (res,):
        assert API_TOKEN not in r.stderr + r.stdout


# ---- the CLI ------------------------------------------------------------------------------------


def test_wgsiem_export_splunk_writes_the_app(tmp_path: Path, files: dict[str, str]) -> None:
    from wgsiem.cli.export import export

    result = CliRunner().invoke(
        export, ["splunk", "--out", str(tmp_path), "--respond-url", "https://gw:8443/"]
    )
    assert result.exit_code == 0, result.output
    root = tmp_path / APP_ID
    written = {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}
    assert written == set(files)
    for script in ("bin/wgsiem_propose.py", "bin/wg_show_dump.sh"):
        assert os.access(root / script, os.X_OK)
    saved = parse_conf((root / "default/savedsearches.conf").read_text())
    assert all(s["action.wgsiem_propose.param.base_url"] == "https://gw:8443" for s in saved.stanzas.values())
    bad = CliRunner().invoke(export, ["splunk", "--out", str(tmp_path), "--respond-url", "gw:8443/x"])
    assert bad.exit_code != 0
