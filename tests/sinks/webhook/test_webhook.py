"""The webhook sink against a real HTTP receiver process: delivery, answers, secrets, health checks."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.support.ecs import validate
from wgsiem.errors import WgsiemError
from wgsiem.pipeline.telemetry import TelemetryRegistry
from wgsiem.sinks.outbox.sink import OutboxSink
from wgsiem.sinks.registry import SinkContext, build_sink
from wgsiem.sinks.webhook.config import WebhookSinkConfig
from wgsiem.sources.peer_directory import PeerDirectory

from ..outbox.support import aio, envs, invariant, wait_for
from .support import Receiver, free_port

SECRET = "Bearer wh-s3cr3t-9f8e7d6c5b4a"


def build(state: Path, url: str, **cfg: Any) -> OutboxSink:
    cfg.setdefault("outbox", {"retry_initial_backoff_secs": 0.05, "retry_max_backoff_secs": 0.2})
    config = WebhookSinkConfig(type="webhook", url=url, **cfg)
    ctx = SinkContext(TelemetryRegistry(), "hook", "gw1", state, PeerDirectory())
    sink = build_sink(config, ctx)
    assert isinstance(sink, OutboxSink) and sink.component_type == "webhook"
    return sink


@aio
async def test_batch_mode_delivers_every_document_unchanged(tmp_path: Path, receiver: Receiver) -> None:
    sink = build(tmp_path, receiver.url)
    await sink.health_check()
    await sink.start()
    sent = envs(250)
    await sink.write(sent)
    await wait_for(lambda: sink.status()["outbox"]["delivered"] == 250, 60, "250 events delivered")
    got = receiver.events()
    # at-least-once: a request that timed out on a loaded machine may have been re-sent whole
    assert got[:250] == [e.data for e in sent] and got[250:] in ([], [e.data for e in sent])
    for doc in got:
        assert validate(doc) == []
    await sink.close()
    st = sink.status()
    assert st["destination"]["last_status"] == 200 and st["outbox"]["queued_events"] == 0


@aio
async def test_event_mode_with_template(tmp_path: Path, receiver: Receiver) -> None:
    sink = build(
        tmp_path,
        receiver.url,
        mode="event",
        method="PUT",
        body_template={
            "text": "${event.action} from ${source.ip}",
            "id": "${event.id}",
            "n": "${wireguard.n}",
        },
    )
    await sink.start()
    sent = envs(20)
    await sink.write(sent)
    await wait_for(lambda: sink.status()["outbox"]["delivered"] == 20)
    got = {d["n"]: d for d in receiver.events()}
    assert set(got) == set(range(20))
    assert got[3] == {"text": "handshake from 198.51.100.7", "id": sent[3].data["event"]["id"], "n": 3}
    await sink.close()


@aio
async def test_5xx_and_429_are_retried_4xx_parked(tmp_path: Path, receiver: Receiver) -> None:
    sink = build(tmp_path, receiver.url, outbox={"batch_max_events": 5, "retry_initial_backoff_secs": 0.05})
    await sink.start()

    async def put(batch: list[Any]) -> None:  # with the pipeline's bookkeeping
        sink.telemetry.received += len(batch)
        await sink.write(batch)

    receiver.control(status=503, count=3)
    await put(envs(5))
    await wait_for(lambda: sink.status()["outbox"]["delivered"] == 5, what="delivery after three 503s")
    assert sink.status()["outbox"]["retries"] >= 3
    assert sink.telemetry.errors["RetryableDeliveryError@deliver"] >= 3
    receiver.control(status=429, count=1, retry_after="0.2")
    await put(envs(5, 5))
    await wait_for(lambda: sink.status()["outbox"]["delivered"] == 10, what="delivery after a 429")
    bad = envs(1, 10)
    bad[0].data["reject"] = True  # the receiver answers 422 for this batch
    await put(bad)
    await wait_for(lambda: sink.status()["outbox"]["parked"] == 1, what="the 422 batch parked")
    parked = orjson.loads((tmp_path / "outbox/hook/parked.ndjson").read_bytes())
    assert parked["reason"].startswith("HTTP 422") and parked["id"] == bad[0].data["event"]["id"]
    assert sink.telemetry.dropped["rejected"] == 1
    await sink.close()
    assert invariant(sink)


@aio
async def test_health_check_makes_the_real_request(tmp_path: Path, receiver: Receiver) -> None:
    sink = build(tmp_path, receiver.url, health_check="get")
    await sink.health_check()
    await sink.close()
    down = build(tmp_path / "b", f"http://127.0.0.1:{free_port()}/hook")
    with pytest.raises(WgsiemError) as exc:
        await down.health_check()
    assert "unreachable" in str(exc.value) and exc.value.fix
    await down.close()
    none = build(tmp_path / "c", f"http://127.0.0.1:{free_port()}/hook", health_check="none")
    await none.health_check()
    await none.close()


@aio
async def test_secret_is_sent_but_never_logged_shown_or_stored(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    rx = Receiver(tmp_path / "rx", require_auth=SECRET)
    rx.tmp.mkdir()
    rx.start()
    try:
        good = build(tmp_path / "good", rx.url, auth_header_value=SECRET)
        await good.start()
        await good.write(envs(3))
        await wait_for(lambda: good.status()["outbox"]["delivered"] == 3, what="authenticated delivery")
        texts = [orjson.dumps(good.status()).decode(), repr(good.deliverer), str(good.config)]
        await good.close()

        wrong = build(tmp_path / "wrong", rx.url, auth_header_value="Bearer another-s3cr3t-value")
        await wrong.start()
        await wrong.write(envs(2))
        await wait_for(lambda: wrong.status()["outbox"]["parked"] == 2, what="401 parked")
        texts.append(orjson.dumps(wrong.status()).decode())
        texts.append(orjson.dumps(wrong.telemetry.snapshot()).decode())
        await wrong.close()
        rx.stop()

        down = build(
            tmp_path / "down",
            f"http://user:{SECRET.split()[1]}@127.0.0.1:{rx.port}/hook",
            auth_header_name="X-Api-Key",
            auth_header_value=SECRET,
        )
        await down.start()
        await down.write(envs(1))
        await wait_for(lambda: down.status()["outbox"]["retries"] >= 1, what="a failed attempt")
        texts.append(orjson.dumps(down.status()).decode())
        texts.append(orjson.dumps(down.telemetry.snapshot()).decode())
        with pytest.raises(WgsiemError) as exc:
            await down.health_check()
        texts.append(str(exc.value))
        await down.close()
    finally:
        rx.stop()
    texts.append(caplog.text)
    for f in tmp_path.rglob("*"):
        if f.is_file() and f.parent.name != "rx":
            texts.append(f.read_bytes().decode("utf-8", "replace"))
    blob = "\n".join(texts)
    token = SECRET.split()[1]
    assert token not in blob and "another-s3cr3t-value" not in blob
    assert "***@127.0.0.1" in blob  # the URL's userinfo was redacted, not dropped silently
