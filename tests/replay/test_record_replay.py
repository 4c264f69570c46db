"""Record and replay: a replay of what a live run captured gives the events the live run emitted."""

from __future__ import annotations

import asyncio
import base64
import os
import stat
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from tests.sources.wg_state.test_component import Harness
from tests.support.ecs import validate
from wgsiem.lab.runtime import Lab
from wgsiem.pipeline.runtime import Pipeline
from wgsiem.pipeline.telemetry import TelemetryRegistry
from wgsiem.replay.driver import ReplaySource, plan_replay
from wgsiem.replay.record import Recorder, redact_config
from wgsiem.sources.config_watch.parser import public_key_of
from wgsiem.sources.wg_state.capture import capture_time
from wgsiem.sources.wg_state.config import WgStateSourceConfig
from wgsiem.sources.wg_state.records import Fingerprinter

FIXTURES = Path(__file__).parents[1] / "fixtures" / "wg"


class _Collect:
    component_id = "collect"

    def __init__(self) -> None:
        self.telemetry = TelemetryRegistry().register("collect", "sink", "test")
        self.docs: list[dict] = []

    async def write(self, batch: list) -> None:
        self.docs += [e.data for e in batch]
        self.telemetry.sent += len(batch)

    async def flush(self) -> None: ...

    async def close(self) -> None: ...

    async def health_check(self) -> None: ...


def replay_docs(
    paths: list[Path], state_dir: Path, configs: dict | None = None, *, worker: bool = False, shards: int = 1
) -> tuple[list[dict], ReplaySource]:
    plan = plan_replay(paths)
    reg = TelemetryRegistry()
    src = ReplaySource(
        plan,
        configs or {},
        hostname="gw-test",
        state_dir=state_dir,
        registry=reg,
        worker_process=worker,
        keep_encoded=worker,
        lines_only=worker and shards > 1,
        shards=shards,
    )
    sink = _Collect()
    asyncio.run(Pipeline([src], [], [sink], reg).run(asyncio.Event()))
    return sink.docs, src


@pytest.mark.component
def test_replay_of_a_live_capture_gives_the_live_events(make_lab, tmp_path: Path) -> None:
    lab: Lab = make_lab(clients=2)
    capture = tmp_path / "capture"
    h = Harness(lab, tmp_path / "live", capture_dir=str(capture))
    h.poll()
    lab.connect(1)
    h.poll_until(lambda d: any(x["event"]["action"] == "session-started" for x in d), what="a session")
    lab.send(1, 200_000)
    h.poll_until(lambda d: any(x["event"]["action"] == "transfer" for x in d), what="a transfer")
    lab.roam(1)
    h.poll_until(lambda d: any(x["event"]["action"] == "endpoint-changed" for x in d), what="roaming")
    lab.connect(2)
    h.poll_until(lambda d: sum(x["event"]["action"] == "session-started" for x in d) >= 2, what="2nd session")
    h.docs += [e.data for e in h.source.drain()]  # what a stop emits
    live = h.docs

    files = sorted(capture.glob("*.dump"))
    assert len(files) == h.source.polls
    for f in files:
        assert stat.S_IMODE(f.stat().st_mode) == 0o600
        text = f.read_text()
        for secret in lab.secrets():
            assert secret not in text

    replayed, src = replay_docs([capture], tmp_path / "replay", {"wg_state": h.cfg})
    assert src.stats.bad_records == 0
    for d in replayed:
        validate(d)

    # wireguard-go lists peers in a different order on every read, so events of one poll (one
    # instant) come out in read order live and in capture order on replay: compare per instant
    def by_instant(docs: list[dict]) -> list[dict]:
        return sorted(docs, key=lambda d: (d["@timestamp"], d["event"]["id"]))

    assert [d["@timestamp"] for d in replayed] == [d["@timestamp"] for d in live]
    assert by_instant(replayed) == by_instant(live)
    # the two-process replay (the differ in a worker process) gives the in-process replay's documents
    in_worker, _ = replay_docs([capture], tmp_path / "replay-worker", {"wg_state": h.cfg}, worker=True)
    assert in_worker == replayed
    # ... and so do two differ processes, each with half the peers, merged (documents read lazily)
    sharded, _ = replay_docs(
        [capture], tmp_path / "replay-sharded", {"wg_state": h.cfg}, worker=True, shards=2
    )
    assert sharded == replayed


def test_a_plain_wg_show_dump_directory_replays_in_time_order(tmp_path: Path) -> None:
    """``wg show all dump > <ts>.dump`` files from any script replay too; the name is the event time."""
    base = (FIXTURES / "dump_3_peers.txt").read_bytes()
    (tmp_path / "1700000000.dump").write_bytes(base)
    # ten minutes later: every transfer counter grew
    grown = []
    for line in base.decode().splitlines():
        cols = line.split("\t")
        if len(cols) == 9:
            cols[6] = str(int(cols[6]) + 1000)
        grown.append("\t".join(cols))
    (tmp_path / "1700000600.dump").write_text("\n".join(grown) + "\n")
    (tmp_path / "notes.txt").write_text("not a capture")
    plan = plan_replay([tmp_path])
    assert [p.name for p, _ in plan.files] == ["1700000000.dump", "1700000600.dump"]
    assert [p.name for p in plan.unclaimed] == ["notes.txt"]
    docs, src = replay_docs([tmp_path], tmp_path / ".state")
    assert src.stats.records == 2
    assert docs[0]["@timestamp"].startswith("2023-11-14T22:13:20")
    transfers = [d for d in docs if d["event"]["action"] == "transfer"]
    assert transfers and all(d["@timestamp"].startswith("2023-11-14T22:23:20") for d in transfers)
    for d in docs:
        validate(d)


def test_a_bad_line_in_a_capture_is_located_and_the_rest_replays(tmp_path: Path) -> None:
    base = (FIXTURES / "dump_3_peers.txt").read_text().splitlines()
    base.insert(2, "garbage\tline")
    (tmp_path / "1700000000.dump").write_text("\n".join(base) + "\n")
    docs, src = replay_docs([tmp_path], tmp_path / ".state")
    peers = [d for d in docs if d["event"]["action"] == "peer-added"]
    assert len(peers) == 3
    errs = src.sources["wg_state"].telemetry.last_error
    assert errs is not None and "1700000000.dump" in errs and ":3:" in errs


def test_record_redacts_keys_in_config_snapshots() -> None:
    fp = Fingerprinter(b"k" * 32)
    key = "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk="
    psk = "FpCyhws9cxwWoV4xELtfJvjJN+zQVRPISllRWgeopVE="
    conf = f"[Interface]\nPrivateKey = {key}\nListenPort = 51820\n[Peer]\nPresharedKey={psk} # x\n".encode()
    out = redact_config(conf, fp).decode()
    assert key not in out and psk not in out
    assert f"PrivateKey = fp:{fp.of_b64(key)}/{public_key_of(base64.b64decode(key))}" in out
    assert f"PresharedKey=fp:{fp.of_b64(psk)} # x" in out
    assert "ListenPort = 51820" in out


@pytest.mark.component
def test_wgsiem_record_then_replay_cli(make_lab, tmp_path: Path) -> None:
    lab: Lab = make_lab(clients=1)
    lab.connect(1)
    conf_dir = tmp_path / "etc"
    conf_dir.mkdir()
    conf = conf_dir / f"{lab.gateway_interface}.conf"
    conf.write_text(lab.wg(lab.gateway_namespace, "showconf", lab.gateway_interface))
    log = tmp_path / "kern.log"
    log.write_text("")
    out = tmp_path / "rec"
    wgsiem = [sys.executable, "-m", "wgsiem"]
    rec = Recorder(
        out,
        interval_secs=0.2,
        config_globs=(str(conf_dir / "*.conf"),),
        logs=(log,),
        wg_config=WgStateSourceConfig(interfaces=[lab.gateway_interface]),
    )

    async def drive() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(rec.run(stop))
        while rec.stats.snapshots < 3:
            await asyncio.sleep(0.05)
        with log.open("a") as f:
            f.write("line one\n")
        while rec.stats.log_bytes == 0:
            await asyncio.sleep(0.05)
        stop.set()
        await task

    asyncio.run(drive())
    assert stat.S_IMODE(out.stat().st_mode) == 0o700
    dumps = sorted(out.glob("*.dump"))
    assert len(dumps) >= 3 and all(capture_time(p) for p in dumps)
    confs = list(out.glob(f"*.{lab.gateway_interface}.conf"))
    assert len(confs) == 1 and stat.S_IMODE(confs[0].stat().st_mode) == 0o600
    assert (out / "logs" / "kern.log").read_text() == "line one\n"
    everything = b"".join(p.read_bytes() for p in out.rglob("*") if p.is_file() and ".state" not in p.parts)
    for secret in lab.secrets():
        assert secret.encode() not in everything

    ndjson = tmp_path / "events.ndjson"
    res = subprocess.run(
        [*wgsiem, "replay", str(out), "--output", str(ndjson)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    assert res.returncode == 0, res.stderr
    docs = [orjson.loads(x) for x in ndjson.read_bytes().splitlines()]
    actions = {d["event"]["action"] for d in docs}
    assert {"interface-added", "peer-added", "session-started", "config-file-created"} <= actions
    created = next(d for d in docs if d["event"]["action"] == "config-file-created")
    assert created["event"]["dataset"] == "wireguard.config"
    # the config snapshot held only fingerprints, yet the interface's public key is still known
    conf_docs = [d for d in docs if d["event"]["dataset"] == "wireguard.config"]
    assert lab.gateway_public_key in orjson.dumps(conf_docs).decode()
    assert "replayed" in res.stderr
    for secret in lab.secrets():
        assert secret not in ndjson.read_text()


def test_a_replay_never_runs_the_respond_sink(tmp_path: Path) -> None:
    """Replaying old captures with the live config must not block, revoke or rotate anything: the
    respond sink is left out (and said so); the other sinks get the events."""
    caps = tmp_path / "caps"
    caps.mkdir()
    (caps / "1700000000.dump").write_bytes((FIXTURES / "dump_3_peers.txt").read_bytes())
    out = tmp_path / "out.ndjson"
    cfg = tmp_path / "wgsiem.yaml"
    cfg.write_text(
        f"state_dir: {tmp_path / 'live-state'}\n"
        "sinks:\n"
        f"  file:\n    type: ndjson\n    path: {out}\n"
        "  act:\n    type: respond\n"
    )
    state = tmp_path / "replay-state"
    r = subprocess.run(
        [sys.executable, "-m", "wgsiem", "replay", "-c", str(cfg), "--state-dir", str(state), str(caps)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    assert "sink act (respond) skipped: a replay never runs response actions" in r.stderr
    assert out.read_bytes().count(b"\n") > 0
    assert not list(state.rglob("respond.db")) and not (tmp_path / "live-state").exists()
