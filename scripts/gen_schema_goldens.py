"""Regenerate the schema goldens: ``tests/fixtures/schema/{ecs,cim,ocsf}/<source>/<action>.json``.

The ECS input of each golden is a REAL document, the first one of its action found in, per source:

* ``wg_state``: the examples of ``docs/events.md`` (captured from wireguard-go in the lab);
* ``host``, ``netflow``, ``context``: the real examples of ``docs/sources/<source>.md``;
* ``kernel_log``, ``wggo_log``, ``context``, ``netflow``: what the source's own replay (``replay_read``
  then ``process``, as ``wgsiem replay`` runs it) makes of its test fixtures (verbatim captured logs,
  softflowd pcaps, the context fixtures; see each ``tests/fixtures/<source>/README.md``);
* ``config_watch``: its replay of recorded config snapshots built from the real fixture files — the
  fixture as first snapshot, then the fixture with one real-world edit each.

``ecs/`` holds the inputs verbatim; ``cim/`` and ``ocsf/`` hold ``map_document`` of them. Run from the
repository root: ``.venv/bin/python scripts/gen_schema_goldens.py`` (``--check`` exits 1 on a
difference instead of writing). Review the diff before committing it.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

os.environ["TZ"] = "UTC"  # wireguard-go / syslog local times in the fixtures are read as UTC
time.tzset()

import orjson  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from wgsiem.pipeline.telemetry import TelemetryRegistry  # noqa: E402
from wgsiem.schema import SCHEMAS, map_document  # noqa: E402
from wgsiem.sources.base import SourceContext  # noqa: E402
from wgsiem.sources.peer_directory import PeerDirectory, PeerInfo  # noqa: E402
from wgsiem.sources.registry import source_class  # noqa: E402

OUT = ROOT / "tests" / "fixtures" / "schema"
FIX = ROOT / "tests" / "fixtures"
Doc = dict[str, Any]


def _docs_md(name: str) -> Iterator[Doc]:
    """Every complete JSON document (one with ``event.action``) in a docs page's code blocks/lines."""
    text = (ROOT / name).read_text()
    blocks = re.findall(r"```json\n(.*?)\n```", text, re.S)
    blocks += re.findall(r"^(\{\"@timestamp\".*\})$", text, re.M)
    for block in blocks:
        try:
            doc = orjson.loads(block)
        except orjson.JSONDecodeError:
            continue
        event = doc.get("event") if isinstance(doc, dict) else None
        if isinstance(event, dict) and "action" in event and "@timestamp" in doc and "ecs" in doc:
            yield doc


def _replay(
    source_type: str, paths: Iterable[Path], peers: PeerDirectory | None = None, **cfg: Any
) -> Iterator[Doc]:
    cls = source_class(source_type)
    config_cls = {
        "kernel_log": "wgsiem.sources.kernel_log.config:KernelLogSourceConfig",
        "wggo_log": "wgsiem.sources.wggo_log.config:WggoLogSourceConfig",
        "netflow": "wgsiem.sources.netflow.config:NetflowSourceConfig",
        "context": "wgsiem.sources.context.config:ContextSourceConfig",
        "config_watch": "wgsiem.sources.config_watch.config:ConfigWatchSourceConfig",
    }[source_type]
    module, _, name = config_cls.partition(":")
    config = getattr(__import__(module, fromlist=[name]), name)(type=source_type, **cfg)
    with tempfile.TemporaryDirectory() as state:
        ctx = SourceContext(
            hostname="gw-test",
            state_dir=Path(state),
            telemetry=TelemetryRegistry().register(source_type, "source", source_type),
            peers=peers if peers is not None else PeerDirectory(),
            replay=True,
        )
        source = cls(source_type, config, ctx)
        for path in paths:
            for item in cls.replay_read(path):
                if isinstance(item.payload, Exception):
                    continue
                for env in source.process(item.payload, item.time):
                    yield env.data


KERNEL_LOG_MTIME = 1_764_000_000  # 2025-11-24T16:00:00Z


def _rel(paths: Iterable[Path]) -> list[Path]:
    return [p.relative_to(ROOT) for p in sorted(paths)]


def _wggo_peers() -> PeerDirectory:
    p = orjson.loads((FIX / "wggo_log" / "peers.json").read_bytes())
    d = PeerDirectory()
    gw = p["gateway"]
    d.publish(
        gw["interface"],
        [PeerInfo(gw["interface"], c["public_key"], None, (), None, 0.0) for c in p["clients"].values()],
        at=0.0,
    )
    for c in p["clients"].values():
        d.publish(c["interface"], [PeerInfo(c["interface"], gw["public_key"], None, (), None, 0.0)], at=0.0)
    return d


ALICE, BOB, EXTRA = (
    "t8WT41AoRyvY1cyWKZSRQyKB+eFmIkjz716DOxgKP24=",
    "t7Az2FKhCzd5vdcY6FaIMR88IQKM6GYvF6dH/iW87Ec=",
    "6Dxagi8t3TsxKn5pzZrB8Xw8eLoJ5SHggHLrdB0NIkM=",  # mallory of angristan_wg0.conf
)


def _config_edits(base: str, other: str) -> list[str]:
    """wireguard-ui's server file, then the edits an operator (or the UI) makes, one per version;
    the new PSK, interface key and peer come from another fixture (throw-away test keys)."""
    mallory = other[other.index("### Client mallory") : other.index("### Client niaj")]
    other_psk = re.search(r"PresharedKey = (\S+)", mallory)
    other_priv = re.search(r"PrivateKey = (\S+)", other)
    assert other_psk and other_priv
    edits = [
        ("AllowedIPs = 10.252.1.1/32", "AllowedIPs = 10.252.1.1/32, 10.0.0.0/8"),
        ("PersistentKeepalive = 15\n", "Endpoint = 203.0.113.50:51820\nPersistentKeepalive = 15\n"),
        ("PersistentKeepalive = 15\n", "PersistentKeepalive = 25\n"),
        (
            "PresharedKey = q6R4fwe7c7A7rmiq8AxRz7dWZ2b+KtuzuE2CsiKYs3Q=",
            f"PresharedKey = {other_psk.group(1)}",
        ),
        ("# Name:         alice", "# Name:         alice-laptop"),
        ("PrivateKey = wG5DU/NltNWt6j/LSdXAaHmBYmI/S87XEW3XNoiZakE=", f"PrivateKey = {other_priv.group(1)}"),
        ("ListenPort = 51820", "ListenPort = 51999"),
        ("-o eth0 -j MASQUERADE\nPostDown", "-o ens3 -j MASQUERADE\nPostDown"),
    ]
    versions, text = [base], base
    for old, new in edits:
        assert old in text, old
        text = text.replace(old, new, 1)
        versions.append(text)
    versions.append(text + "\n" + mallory)  # a peer added
    bob = text.index("# ID:           cmfe7c2d0a1b2c3d4e5f6a7c")
    versions.append(text[:bob])  # bob removed
    versions.append(text[:bob] + "\nThisIsNotAKey = 1\n")  # a bad line
    return versions


def _config_watch() -> Iterator[Doc]:
    """The source's ``process`` over reads of ``/etc/wireguard/wg0.conf`` (its replay path), with the
    ``stat`` a root-owned file gives; the running peers (for drift) come from a peer directory."""
    from wgsiem.sources.config_watch.records import FileMeta
    from wgsiem.sources.config_watch.source import ConfigSnapshot

    base = (FIX / "config_watch" / "wireguard-ui_wg0.conf").read_text()
    other = (FIX / "config_watch" / "angristan_wg0.conf").read_text()
    peers = PeerDirectory()
    running = [PeerInfo("wg0", k, None, (), None, 0.0) for k in (ALICE, BOB, EXTRA)]
    peers.publish("wg0", running, at=0.0)
    cls = source_class("config_watch")
    from wgsiem.sources.config_watch.config import ConfigWatchSourceConfig

    t0 = 1_764_093_600.0
    with tempfile.TemporaryDirectory() as state:
        # the collector's fingerprint secret, fixed so the goldens' key fingerprints are stable
        (Path(state) / "fingerprint.key").write_bytes(bytes(range(32)))
        ctx = SourceContext(
            hostname="gw-test",
            state_dir=Path(state),
            telemetry=TelemetryRegistry().register("config_watch", "source", "config_watch"),
            peers=peers,
            replay=True,
        )
        source = cls("config_watch", ConfigWatchSourceConfig(), ctx)
        path = "/etc/wireguard/wg0.conf"

        def read(i: int, text: str | None, mode: int = 0o600) -> list[Doc]:
            at = t0 + 60 * i
            data = None if text is None else text.encode()
            meta = None if data is None else FileMeta(0, 0, "root", "root", mode, at, len(data), 2337030)
            snap = ConfigSnapshot("replay:wg0", path, "wg0", data, meta)
            return [e.data for e in source.process(snap, at)]

        versions = _config_edits(base, other)
        yield from read(0, versions[0], mode=0o644)  # created, exposed, drift (EXTRA only running)
        peers.publish("wg0", running[:2], at=t0 + 30)
        for i, text in enumerate(versions[1:], 1):
            yield from read(i, text)
        yield from read(len(versions), None)  # deleted


INPUTS = OUT / "inputs"


def _write_inputs() -> tuple[Path, Path]:
    """Two logs rendered from the sources' own verbatim catalogues (deterministic, committed):
    every wireguard-go message of ``tests/sources/wggo_log/test_catalog.py`` (from wireguard-go's source,
    ``shared/reference/formats/03_wireguard_go.md``) as a daemon log line, and every wg-quick line of
    ``tests/fixtures/kernel_log/wg_quick_unit.txt`` as rsyslog writes a unit's output, plus one kernel
    line no catalogue knows (``unrecognized``) and the
    ``ip`` error a unit prints when the interface already exists (``wg-quick-output``)."""
    sys.path.insert(0, str(ROOT))
    from tests.sources.wggo_log.test_catalog import CASES

    INPUTS.mkdir(parents=True, exist_ok=True)
    wggo = INPUTS / "wggo_catalogue.log"
    wggo.write_text(
        "".join(f"DEBUG: (wg0) 2026/11/25 17:52:{i % 60:02d} {m}\n" for i, (m, _) in enumerate(CASES))
    )
    lines = (FIX / "kernel_log" / "wg_quick_unit.txt").read_text().splitlines()
    quick = INPUTS / "wg_quick_syslog.log"
    quick.write_text(
        "".join(f"Nov 25 17:00:{i:02d} gw-test wg-quick[4242]: {line}\n" for i, line in enumerate(lines))
        + "Nov 25 17:00:59 gw-test wg-quick[4242]: RTNETLINK answers: File exists\n"
        + "Nov 25 17:01:00 gw-test kernel: wireguard: wg0: Something new in a future kernel\n"
    )
    stamp = 1_764_093_660  # 2025-11-25T18:01:00Z: the RFC 3164 year is taken from the file's mtime
    os.utime(quick, (stamp, stamp))
    return wggo.relative_to(ROOT), quick.relative_to(ROOT)


def examples() -> dict[tuple[str, str], Doc]:
    """(source, action) → the first real ECS document of that action."""
    found: dict[tuple[str, str], Doc] = {}

    def take(source: str, docs: Iterable[Doc]) -> None:
        for doc in docs:
            key = (source, doc["event"]["action"])
            found.setdefault(key, doc)

    take("wg_state", _docs_md("docs/events.md"))
    for name in ("host", "netflow", "context"):
        take(name, _docs_md(f"docs/sources/{name}.md"))
    wggo_catalogue, wg_quick = _write_inputs()
    kernel_files = [*_rel((FIX / "kernel_log").glob("*.txt")), wg_quick]
    # lines without a year or an absolute time are dated from the file's mtime, which a fresh
    # clone sets to "now": pin it so the goldens do not depend on when the repository was cloned
    for f in kernel_files:
        os.utime(ROOT / f, (KERNEL_LOG_MTIME, KERNEL_LOG_MTIME))
    take("kernel_log", _replay("kernel_log", kernel_files, journal=False))
    wggo_files = [*_rel((FIX / "wggo_log").glob("*.log")), wggo_catalogue]
    take("wggo_log", _replay("wggo_log", wggo_files, _wggo_peers(), timezone="UTC"))
    take("netflow", _replay("netflow", _rel((FIX / "netflow").glob("softflowd_*.pcap"))))
    take(
        "context",
        _replay("context", _rel(p for p in (FIX / "context").iterdir() if p.suffix in (".ndjson", ".json"))),
    )
    take("config_watch", _config_watch())
    return found


def render(doc: Doc) -> bytes:
    return orjson.dumps(doc, option=orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE)


def main(argv: list[str]) -> int:
    check = "--check" in argv
    found = examples()
    wanted: dict[Path, bytes] = {}
    for (source, action), doc in sorted(found.items()):
        for schema in SCHEMAS:
            wanted[OUT / schema / source / f"{action}.json"] = render(map_document(doc, schema))
    stale = [p for s in SCHEMAS for p in (OUT / s).glob("*/*.json") if p not in wanted]
    differ = [p for p, data in wanted.items() if not p.exists() or p.read_bytes() != data]
    if check:
        print("".join(f"differs: {p.relative_to(ROOT)}\n" for p in differ + stale), end="")
        return 1 if differ or stale else 0
    for p in stale:
        p.unlink()
    for p in differ:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(wanted[p])
    by_source: dict[str, list[str]] = {}
    for source, action in sorted(found):
        by_source.setdefault(source, []).append(action)
    for source, actions in by_source.items():
        print(f"{source} ({len(actions)}): {' '.join(actions)}")
    print(f"{len(found)} examples, {len(wanted)} goldens, {len(differ)} written, {len(stale)} removed")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
