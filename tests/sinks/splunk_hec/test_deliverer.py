"""``SplunkHecDeliverer`` against the strict HEC contract server: delivery, bisection, ack, errors,
secrets."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from wgsiem.errors import WgsiemError
from wgsiem.schema import to_cim
from wgsiem.sinks.outbox.contract import RetryableDeliveryError
from wgsiem.sinks.splunk_hec.deliverer import SplunkHecDeliverer, _acked, parse_reply

from .contract_server import HecServer, Token
from .support import TOKEN, aio, alert_document, config, pending, real_documents
from .tls import make_tls

ACK_TOKEN = "0f0e0d0c-1b1a-4c2d-8e3f-405162738495"


@asynccontextmanager
async def running(**cfg: Any) -> AsyncIterator[tuple[HecServer, SplunkHecDeliverer]]:
    server = HecServer(
        [
            Token(TOKEN, indexes=frozenset({"main", "wireguard"})),
            Token(ACK_TOKEN, ack=True),
            Token("disabled-token", enabled=False),
        ]
    )
    url = await server.start()
    d = SplunkHecDeliverer(config(url, **cfg), hostname="gw-test")
    await d.start()
    try:
        yield server, d
    finally:
        await d.close()
        await server.stop()


def _docs() -> list[dict[str, Any]]:
    return [*real_documents(), alert_document()]


@aio
async def test_delivers_every_real_document_gzip_with_sourcetypes_and_ids() -> None:
    async with running(index="wireguard") as (server, d):
        docs = _docs()
        report = await d.deliver(pending(docs))
        assert report.rejected == {} and report.retry == []
        assert server.ids() == [doc["event"]["id"] for doc in docs]
        assert server.gzip_requests == 1
        by_id = {e.fields["event_id"]: e for e in server.events}
        for doc in docs:
            got = by_id[doc["event"]["id"]]
            assert got.index == "wireguard"
            assert got.event == {**doc, **to_cim(doc)}
            assert got.sourcetype == "wireguard:" + doc["event"]["dataset"].split(".", 1)[1]
            assert got.host == doc["observer"].get("hostname", "gw-test")
            assert got.time is not None
        assert {e.sourcetype for e in server.events} >= {"wireguard:state", "wireguard:detect"}
        st = d.status()
        assert st["last_response"] == {"status": 200, "code": 0, "text": "Success"}
        assert st["events_accepted"] == len(docs)


@aio
async def test_requests_are_split_at_max_request_bytes_and_uncompressed_works() -> None:
    async with running(max_request_bytes=4096, compression="none") as (server, d):
        docs = _docs()
        await d.deliver(pending(docs))
        assert server.ids() == [doc["event"]["id"] for doc in docs]
        posts = [r for r in server.requests if r[0] == "/services/collector/event"]
        assert len(posts) > 5 and server.gzip_requests == 0


@pytest.mark.parametrize("index_before_invalid", [True, False])
@aio
async def test_invalid_events_are_bisected_out_and_the_rest_delivered(index_before_invalid: bool) -> None:
    async with running() as (server, d):
        server.index_before_invalid = index_before_invalid
        docs = _docs()
        bad = {docs[3]["event"]["id"], docs[40]["event"]["id"], docs[41]["event"]["id"]}
        server.reject = lambda obj: obj.get("fields", {}).get("event_id") in bad
        batch = pending(docs)
        report = await d.deliver(batch)
        rejected_ids = {batch[seq].event_id for seq in report.rejected}
        assert rejected_ids == bad
        assert all(r == "HEC 400 code 6: Invalid data format" for r in report.rejected.values())
        assert report.retry == []
        good = [doc["event"]["id"] for doc in docs if doc["event"]["id"] not in bad]
        assert set(server.ids()) == set(good)  # every good event indexed, no bad one
        if not index_before_invalid:
            assert sorted(server.ids()) == sorted(good)  # nothing indexed twice
        assert d.status()["events_rejected"] == 3 and d.status()["splits"] >= 2


@aio
async def test_bad_indexed_field_values_never_leave_the_encoder() -> None:
    async with running() as (server, d):
        doc = dict(real_documents()[0])
        doc["event"] = {**doc["event"], "id": "x" * 40}
        report = await d.deliver(pending([doc]))
        assert report.rejected == {} and server.ids() == ["x" * 40]


@aio
async def test_413_splits_until_requests_fit() -> None:
    async with running(compression="none") as (server, d):
        server.max_content_length = 6000
        docs = _docs()
        report = await d.deliver(pending(docs))
        assert report.rejected == {} and server.ids() == [doc["event"]["id"] for doc in docs]
        assert any(r[1] == 413 for r in server.requests)


@aio
async def test_busy_and_throttle_are_retryable_with_retry_after() -> None:
    async with running() as (server, d):
        server.busy = 1
        with pytest.raises(RetryableDeliveryError) as exc:
            await d.deliver(pending(_docs()[:5]))
        assert "503 code 9" in str(exc.value) and "Server is busy" in str(exc.value)
        server.throttle = 1
        server.retry_after_secs = 3
        with pytest.raises(RetryableDeliveryError) as exc2:
            await d.deliver(pending(_docs()[:5]))
        assert exc2.value.retry_after_secs == 3.0
        assert server.ids() == []
        report = await d.deliver(pending(_docs()[:5]))
        assert report.rejected == {} and len(server.ids()) == 5


@aio
async def test_failure_after_a_partial_success_retries_only_the_rest() -> None:
    async with running(max_request_bytes=4096) as (server, d):
        docs = _docs()
        server.busy, server.busy_after = 1, 2
        batch = pending(docs)
        report = await d.deliver(batch)
        assert report.rejected == {}
        delivered = server.ids()
        assert 0 < len(delivered) < len(docs)
        retried = [batch[s].event_id for s in report.retry]
        assert delivered + retried == [doc["event"]["id"] for doc in docs]
        assert "Server is busy" in d.status()["last_error"]


@pytest.mark.parametrize(
    ("header", "status", "code"),
    [("Splunk wrong-token", 403, 4), ("Splunk disabled-token", 403, 1), ("Bearer abc", 401, 3)],
)
@aio
async def test_bad_token_is_retryable_with_a_clear_status_and_drops_nothing(
    header: str, status: int, code: int
) -> None:
    async with running() as (server, d):
        d._auth = header
        with pytest.raises(RetryableDeliveryError) as exc:
            await d.deliver(pending(_docs()[:3]))
        assert f"{status} code {code}" in str(exc.value) and "token" in (exc.value.fix or "")
        st = d.status()
        assert st["auth_error"] is not None and f"{status} code {code}" in st["auth_error"]
        assert server.ids() == []
        # back to the right token: delivered, and the auth error clears
        d._auth = f"Splunk {TOKEN}"
        await d.deliver(pending(_docs()[:3]))
        assert len(server.ids()) == 3 and d.status()["auth_error"] is None


@aio
async def test_index_not_allowed_is_retryable_config_error() -> None:
    async with running(index="secret") as (server, d):
        with pytest.raises(RetryableDeliveryError) as exc:
            await d.deliver(pending(_docs()[:3]))
        assert "code 7" in str(exc.value) and "allowed indexes" in (exc.value.fix or "")
        assert server.ids() == []


@aio
async def test_outage_then_recovery() -> None:
    async with running() as (server, d):
        await server.stop()
        with pytest.raises(RetryableDeliveryError) as exc:
            await d.deliver(pending(_docs()[:3]))
        assert "unreachable" in str(exc.value)
        await server.start()
        report = await d.deliver(pending(_docs()[:3]))
        assert report.retry == [] and len(server.ids()) == 3


@aio
async def test_indexer_acknowledgement() -> None:
    async with running(ack=True, ack_poll_interval_secs=0.01, max_request_bytes=8192) as (server, d):
        d._auth = f"Splunk {ACK_TOKEN}"
        docs = _docs()
        report = await d.deliver(pending(docs))
        assert report.retry == [] and report.rejected == {}
        assert set(server.channels) == {d.channel}
        ch = server.channels[d.channel]
        assert ch.next_id > 1 and ch.done == set()  # every ack queried (and forgotten by the server)
        assert all(e.channel == d.channel for e in server.events)
        assert any(r[0] == "/services/collector/ack" for r in server.requests)
        assert d.status()["acks_pending"] == 0


@aio
async def test_ack_timeout_returns_the_unacknowledged_events_for_retry() -> None:
    async with running(
        ack=True, ack_poll_interval_secs=0.01, ack_timeout_secs=0.2, max_request_bytes=8192
    ) as (server, d):
        d._auth = f"Splunk {ACK_TOKEN}"
        batch = pending(_docs())
        server.hold_acks = 1  # the first request's ack never comes
        report = await d.deliver(batch)
        assert report.retry and report.retry == [p.seq for p in batch[: len(report.retry)]]
        assert d.status()["ack_timeouts"] == 1 and "not acknowledged" in d.status()["last_error"]
        # sent again: new ack id, acknowledged; duplicates carry the same event_id
        again = await d.deliver([batch[s] for s in report.retry])
        assert again.retry == []
        ids = server.ids()
        assert set(ids) == {p.event_id for p in batch}
        assert len(ids) == len(batch) + len(report.retry)


@aio
async def test_ack_token_without_channel_is_a_clear_retryable_error() -> None:
    async with running(ack=False) as (_server, d):
        d._auth = f"Splunk {ACK_TOKEN}"
        with pytest.raises(RetryableDeliveryError) as exc:
            await d.deliver(pending(_docs()[:2]))
        assert "code 10" in str(exc.value) and "ack: true" in (exc.value.fix or "")


@aio
async def test_health_check() -> None:
    async with running() as (server, d):
        await d.health_check()
        assert d.status()["healthy"] is True
        assert server.requests[-1] == ("/services/collector/event", 400, 5)  # the token probe
        server.healthy = False
        with pytest.raises(WgsiemError, match="unhealthy"):
            await d.health_check()
        server.healthy = True
        server.busy = 1
        with pytest.raises(WgsiemError, match="busy, token not checked"):
            await d.health_check()
        d._auth = "Splunk wrong"
        with pytest.raises(WgsiemError, match="403 code 4") as exc:
            await d.health_check()
        assert "token" in (exc.value.fix or "")
        await server.stop()
        with pytest.raises(WgsiemError, match="unreachable"):
            await d.health_check()
        await server.start()


@aio
async def test_token_never_in_logs_errors_or_status(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    texts: list[str] = []
    async with running(ack=True, ack_poll_interval_secs=0.01, ack_timeout_secs=0.05) as (server, d):
        for setup in ("busy", "down", "hold"):
            if setup == "busy":
                server.busy = 1
            elif setup == "down":
                await server.stop()
            try:
                await d.deliver(pending(_docs()[:3]))
            except WgsiemError as exc:
                texts.append(str(exc) + repr(exc))
            if setup == "down":
                await server.start()
        d._auth = "Splunk " + TOKEN  # the configured token on an ack-less token check
        texts.append(orjson.dumps(d.status()).decode())
        texts.append(repr(d.config) + str(d.config))
    texts.extend(r.getMessage() for r in caplog.records)
    assert texts and not [t for t in texts if TOKEN in t]


@aio
async def test_tls_with_a_ca_file_verify_on_and_off(tmp_path: Path) -> None:
    tls = make_tls(tmp_path)
    server = HecServer([Token(TOKEN)], ssl_context=tls.server_context())
    url = await server.start()
    assert url.startswith("https://")
    try:
        for cfg, ok in (
            ({"tls_ca_file": str(tls.ca_file)}, True),
            ({}, False),  # the system trust store does not know the test CA
            ({"tls_verify": False}, True),
        ):
            d = SplunkHecDeliverer(config(url, **cfg), hostname="gw-test")
            try:
                if ok:
                    await d.health_check()
                    assert (await d.deliver(pending(_docs()[:2]))).rejected == {}
                else:
                    with pytest.raises(RetryableDeliveryError, match="unreachable"):
                        await d.deliver(pending(_docs()[:2]))
            finally:
                await d.close()
        assert len(server.ids()) == 4
    finally:
        await server.stop()


@given(st.integers(100, 599), st.binary(max_size=300))
def test_parse_reply_never_raises_on_arbitrary_bytes(status: int, raw: bytes) -> None:
    r = parse_reply(status, raw)
    assert r.status == status and isinstance(r.text, str)
    assert r.code is None or isinstance(r.code, int)


@given(
    st.dictionaries(
        st.sampled_from(["text", "code", "invalid-event-number", "ackId", "acks", "x"]),
        st.none() | st.booleans() | st.integers() | st.text() | st.dictionaries(st.text(), st.booleans()),
    )
)
def test_parse_reply_of_arbitrary_json_objects(obj: dict[str, Any]) -> None:
    r = parse_reply(400, json.dumps(obj).encode())
    if r.body is None:  # an integer past 64 bits: not HEC's JSON, kept as text
        assert r.code is None
        return
    assert r.code == (obj["code"] if type(obj.get("code")) is int else None)
    assert r.invalid_event is None or type(r.invalid_event) is int
    assert all(isinstance(i, int) for i in _acked(r))


def test_parse_reply_examples() -> None:
    r = parse_reply(400, b'{"text":"Invalid data format","code":6,"invalid-event-number":3}')
    assert (r.status, r.code, r.text, r.invalid_event, r.ack_id) == (400, 6, "Invalid data format", 3, None)
    assert parse_reply(200, b'{"text":"Success","code":0,"ackId":7}').ack_id == 7
    assert _acked(parse_reply(200, b'{"acks":{"0":true,"1":false,"x":true}}')) == [0]
    assert parse_reply(502, b"<html>Bad gateway</html>").text == "<html>Bad gateway</html>"


@aio
async def test_ack_with_an_invalid_event_in_the_batch() -> None:
    async with running(ack=True, ack_poll_interval_secs=0.01) as (server, d):
        d._auth = f"Splunk {ACK_TOKEN}"
        server.index_before_invalid = False
        docs = _docs()
        bad = docs[10]["event"]["id"]
        server.reject = lambda obj: obj["fields"]["event_id"] == bad
        batch = pending(docs)
        report = await d.deliver(batch)
        assert [batch[s].event_id for s in report.rejected] == [bad] and report.retry == []
        assert sorted(server.ids()) == sorted(p.event_id for p in batch if p.event_id != bad)
        assert server.channels[d.channel].done == set()  # every accepted request was acknowledged


@aio
async def test_ack_on_but_token_without_ack_counts_accepted_as_delivered(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with running(ack=True, ack_poll_interval_secs=0.01) as (server, d):
        report = await d.deliver(pending(_docs()[:5]))
        assert report.retry == [] and len(server.ids()) == 5
        assert d.status()["ack_missing"] is True
        assert "no ackId" in caplog.text
