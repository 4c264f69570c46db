"""The deliverer through the official clients against the contract server (loopback only)."""

from __future__ import annotations

import asyncio
import base64
import copy
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from wgsiem.errors import WgsiemError
from wgsiem.sinks.elasticsearch.deliverer import ElasticsearchDeliverer
from wgsiem.sinks.outbox.contract import DeliveryReport, RetryableDeliveryError

from .conftest import config, pending, real_documents
from .contract_server import ContractServer, Running, User, start
from .tls import TlsMaterial

API_KEY = base64.b64encode(b"wgsiem-id:s3cr3t-ap1-k3y-value").decode()
PASSWORD = "pa55-w0rd-n0t-in-logs"
TOKEN = "bearer-t0ken-n0t-in-logs"
SECRETS = (API_KEY, PASSWORD, TOKEN, "s3cr3t-ap1-k3y-value")


def run(fn: Callable[..., Awaitable[Any]], server: ContractServer | None = None, **kw: Any) -> Any:
    async def main() -> Any:
        running = await start(server or ContractServer(), **kw)
        try:
            return await fn(running)
        finally:
            await running.stop()

    return asyncio.run(main())


async def delivered(running: Running, **cfg: Any) -> tuple[ElasticsearchDeliverer, DeliveryReport]:
    d = ElasticsearchDeliverer(config(running.url, **cfg))
    await d.start()
    try:
        await d.health_check()
        return d, await d.deliver(pending(real_documents()))
    finally:
        await d.close()


def test_every_real_document_lands_in_its_data_stream_valid_ecs() -> None:
    server = ContractServer()

    async def go(running: Running) -> tuple[ElasticsearchDeliverer, DeliveryReport]:
        return await delivered(running, install={"template": True})

    d, report = run(go, server)
    docs = real_documents()
    assert report.rejected == {} and report.retry == []
    assert server.count() == len(docs)
    assert server.ecs_problems == []
    assert sorted(server.streams) == [
        "logs-wireguard.config-default",
        "logs-wireguard.context-default",
        "logs-wireguard.flow-default",
        "logs-wireguard.host-default",
        "logs-wireguard.kernel_log-default",
        "logs-wireguard.state-default",
        "logs-wireguard.wggo_log-default",
    ]
    first = docs[0]
    doc = server.documents[first["event"]["id"]]
    assert doc == first | {
        "data_stream": {"type": "logs", "dataset": first["event"]["dataset"], "namespace": "default"}
    }
    assert d.status()["documents"]["delivered"] == len(docs)
    assert d.status()["cluster"] == {
        "name": "wgsiem-contract",
        "version": "9.2.0",
        "distribution": "elasticsearch",
    }


def test_without_the_template_a_type_conflict_is_parked_with_the_reason_and_real_documents_agree() -> None:
    """Dynamic mapping fixes a field's type from the first document and refuses another type, as
    Elasticsearch does: every real document (all sources) agrees on its types within its data stream,
    and a document that disagrees is parked with the cluster's reason, the rest delivered."""
    server = ContractServer()
    docs = real_documents()
    run_doc = next(d for d in docs if d["event"]["action"] == "config-run")
    odd = copy.deepcopy(run_doc)
    odd["event"]["id"] = "f" * 32
    odd["wireguard"]["config_run"]["changed"] = True  # a count elsewhere: number, then boolean

    async def go(running: Running) -> DeliveryReport:
        d = ElasticsearchDeliverer(config(running.url))
        await d.start()
        try:
            return await d.deliver(pending([*docs, odd]))
        finally:
            await d.close()

    report = run(go, server)
    assert report.retry == []
    assert report.rejected == {
        len(docs): "HTTP 400 document_parsing_exception: mapper [wireguard.config_run.changed] cannot be "
        "changed from type [number] to [boolean]"
    }
    assert server.count() == len(docs)


def test_resend_is_a_duplicate_not_a_second_document() -> None:
    server = ContractServer()

    async def go(running: Running) -> tuple[DeliveryReport, DeliveryReport, dict[str, int]]:
        d = ElasticsearchDeliverer(config(running.url))
        await d.start()
        batch = pending(real_documents()[:10])
        first = await d.deliver(batch)
        again = await d.deliver(batch)
        await d.close()
        return first, again, d.counts

    first, again, counts = run(go, server)
    assert first == DeliveryReport() and again == DeliveryReport()
    assert server.count() == 10
    assert counts["delivered"] == 10 and counts["duplicate"] == 10


def test_namespace_names_the_stream() -> None:
    server = ContractServer()

    async def go(running: Running) -> None:
        d = ElasticsearchDeliverer(config(running.url, namespace="prod_eu"))
        await d.start()
        await d.deliver(pending(real_documents()[:1]))
        await d.close()

    run(go, server)
    assert list(server.streams) == ["logs-wireguard.config-prod_eu"]


def test_per_item_429_goes_back_for_retry_and_the_rest_is_delivered() -> None:
    server = ContractServer()
    server.throttle_items(3)

    async def go(running: Running) -> DeliveryReport:
        d = ElasticsearchDeliverer(config(running.url))
        await d.start()
        report = await d.deliver(pending(real_documents()[:10]))
        assert d.retry_reasons == {"es_rejected_execution_exception": 3}
        await d.close()
        return report

    report = run(go, server)
    assert report.retry == [0, 1, 2] and report.rejected == {}
    assert server.count() == 7


def test_mapping_conflict_is_rejected_with_the_reason_others_delivered() -> None:
    server = ContractServer(validate_ecs=False)
    docs = real_documents()[:3]
    bad = {**docs[1], "event": {**docs[1]["event"], "id": "bad-1"}, "observer": "not-an-object"}
    no_ts = {k: v for k, v in docs[2].items() if k != "@timestamp"}

    async def go(running: Running) -> DeliveryReport:
        d = ElasticsearchDeliverer(config(running.url))
        await d.start()
        report = await d.deliver(pending([docs[0], bad, no_ts]))
        await d.close()
        return report

    report = run(go, server)
    assert report.retry == []
    assert set(report.rejected) == {1, 2}
    assert report.rejected[1].startswith("HTTP 400 document_parsing_exception: mapper [observer]")
    assert "timestamp field [@timestamp] is missing" in report.rejected[2]
    assert server.count() == 1


@pytest.mark.parametrize("status", [429, 502, 503])
def test_whole_request_429_or_5xx_is_retryable_with_retry_after(status: int) -> None:
    server = ContractServer()
    server.fail_next(status, retry_after=7)

    async def go(running: Running) -> RetryableDeliveryError:
        d = ElasticsearchDeliverer(config(running.url))
        await d.start()
        with pytest.raises(RetryableDeliveryError) as err:
            await d.deliver(pending(real_documents()[:5]))
        second = await d.deliver(pending(real_documents()[:5]))
        assert second == DeliveryReport()
        await d.close()
        return err.value

    err = run(go, server)
    assert err.retry_after_secs == 7.0
    assert server.count() == 5


def test_connection_refused_is_retryable() -> None:
    async def go() -> None:
        d = ElasticsearchDeliverer(config("http://127.0.0.1:9", request_timeout_secs=2))
        await d.start()
        try:
            with pytest.raises(RetryableDeliveryError):
                await d.deliver(pending(real_documents()[:2]))
            with pytest.raises(WgsiemError, match=r"cannot reach http://127\.0\.0\.1:9"):
                await d.health_check()
        finally:
            await d.close()

    asyncio.run(go())


def test_a_413_splits_the_request_and_a_single_oversize_document_is_rejected() -> None:
    server = ContractServer(max_content_length=6000, validate_ecs=False)
    docs = real_documents()[:8]
    huge = {**docs[0], "event": {**docs[0]["event"], "id": "huge"}, "message": "x" * 7000}

    async def go(running: Running) -> tuple[DeliveryReport, dict[str, int]]:
        d = ElasticsearchDeliverer(config(running.url))  # max_request_bytes 10 MiB > server's 6000
        await d.start()
        report = await d.deliver(pending([*docs, huge]))
        await d.close()
        return report, d.counts

    report, counts = run(go, server)
    assert report.retry == []
    assert list(report.rejected) == [8]
    assert "413" in report.rejected[8]
    assert server.count() == 8
    assert counts["split_413"] >= 2


def test_max_request_bytes_splits_before_sending() -> None:
    server = ContractServer()

    async def go(running: Running) -> None:
        d = ElasticsearchDeliverer(
            config(running.url, max_request_bytes=64 * 1024, install={"template": True})
        )
        await d.start()
        await d.health_check()
        report = await d.deliver(pending(real_documents()))
        assert report == DeliveryReport()
        await d.close()

    run(go, server)
    assert server.bulk_requests > 1
    assert server.count() == len(real_documents())


def _secured() -> ContractServer:
    return ContractServer(
        api_keys={API_KEY: User("key")},
        basic={("wgsiem", PASSWORD): User("wgsiem"), ("reader", PASSWORD): User("reader", {"read"})},
        bearer={TOKEN: User("token")},
    )


@pytest.mark.parametrize(
    ("auth", "scheme"),
    [
        ({"api_key": API_KEY}, "ApiKey"),
        ({"username": "wgsiem", "password": PASSWORD}, "Basic"),
        ({"bearer_token": TOKEN}, "Bearer"),
    ],
)
def test_authentication(auth: dict[str, str], scheme: str) -> None:
    server = _secured()

    async def go(running: Running) -> DeliveryReport:
        return (await delivered(running, install={"template": True}, **auth))[1]

    assert run(go, server) == DeliveryReport()
    assert set(server.seen_auth) == {scheme}


def test_wrong_credentials_fail_the_health_check_with_a_fix_and_no_secret(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    server = _secured()

    async def go(running: Running) -> list[str]:
        texts = []
        for auth in ({"username": "wgsiem", "password": "wrong" + PASSWORD}, {"api_key": API_KEY + "x"}):
            d = ElasticsearchDeliverer(config(running.url, **auth))
            await d.start()
            with pytest.raises(WgsiemError) as err:
                await d.health_check()
            with pytest.raises(WgsiemError) as err2:
                await d.deliver(pending(real_documents()[:1]))
            texts += [str(err.value), str(err2.value), repr(d.status()), repr(d.config)]
            await d.close()
        return texts

    texts = run(go, server)
    assert "401" in texts[0] and "check api_key" in texts[0]
    everything = "\n".join(texts) + caplog.text
    for secret in SECRETS:
        assert secret not in everything


def test_missing_privileges_fail_the_health_check() -> None:
    server = _secured()

    async def go(running: Running) -> str:
        d = ElasticsearchDeliverer(config(running.url, username="reader", password=PASSWORD))
        await d.start()
        with pytest.raises(WgsiemError) as err:
            await d.health_check()
        await d.close()
        return str(err.value)

    text = run(go, server)
    assert "lack auto_configure, create_doc on logs-wireguard.*-*" in text
    assert "wgsiem_writer" in text


def test_not_elasticsearch_fails_the_product_check() -> None:
    server = ContractServer(product="opensearch")

    async def go(running: Running) -> str:
        d = ElasticsearchDeliverer(config(running.url))
        await d.start()
        with pytest.raises(WgsiemError) as err:
            await d.health_check()
        await d.close()
        return str(err.value)

    assert "distribution: opensearch" in run(go, server)


def test_opensearch_client() -> None:
    server = ContractServer(product="opensearch", basic={("admin", PASSWORD): User("admin")})

    async def go(running: Running) -> tuple[ElasticsearchDeliverer, DeliveryReport]:
        return await delivered(
            running,
            distribution="opensearch",
            username="admin",
            password=PASSWORD,
            install={"template": True, "pipeline": True},
        )

    d, report = run(go, server)
    assert report == DeliveryReport()
    assert server.count() == len(real_documents()) and server.ecs_problems == []
    assert d.cluster["distribution"] == "opensearch"
    mapping = server.component_templates["logs-wireguard@mappings"]["template"]["mappings"]
    assert mapping["properties"]["message"] == {"type": "text"}
    assert (
        "lifecycle"
        not in server.component_templates["logs-wireguard@settings"]["template"]["settings"]["index"]
    )


def test_tls_with_ca_file(tls_material: TlsMaterial) -> None:
    server = ContractServer()

    async def go(running: Running) -> DeliveryReport:
        return (await delivered(running, ca_file=str(tls_material.ca_file), install={"template": True}))[1]

    assert run(go, server, ssl_context=tls_material.server_context()) == DeliveryReport()
    assert server.count() == len(real_documents())


def test_tls_with_fingerprint_pinning(tls_material: TlsMaterial) -> None:
    server = ContractServer()

    async def go(running: Running) -> DeliveryReport:
        pin = tls_material.fingerprint_sha256
        return (await delivered(running, ca_fingerprint_sha256=pin, install={"template": True}))[1]

    assert run(go, server, ssl_context=tls_material.server_context()) == DeliveryReport()


def test_tls_with_an_unknown_ca_or_wrong_pin_is_refused(tls_material: TlsMaterial, tmp_path: Any) -> None:
    from .tls import make_tls

    other = make_tls(tmp_path / "other", cn="someone else")

    async def go(running: Running) -> list[str]:
        out = []
        for cfg in ({"ca_file": str(other.ca_file)}, {"ca_fingerprint_sha256": other.fingerprint_sha256}):
            d = ElasticsearchDeliverer(config(running.url, **cfg))
            await d.start()
            with pytest.raises(WgsiemError) as err:
                await d.health_check()
            out.append(str(err.value))
            await d.close()
        return out

    errors = run(go, ContractServer(), ssl_context=tls_material.server_context())
    assert all("cannot reach" in e for e in errors)


def test_install_puts_valid_templates_ilm_and_pipeline_then_mappings_hold() -> None:
    server = ContractServer()

    async def go(running: Running) -> ElasticsearchDeliverer:
        install = {"template": True, "ilm": True, "pipeline": True, "retention_days": 90}
        return (await delivered(running, install=install))[0]

    d = run(go, server)
    assert server.ecs_problems == []
    assert server.count() == len(real_documents())
    assert set(server.ilm_policies) == {"wgsiem-logs"}
    assert server.ilm_policies["wgsiem-logs"]["policy"]["phases"]["delete"]["min_age"] == "90d"
    assert set(server.pipelines) == {"wgsiem-wg-dump"}
    assert "logs-wireguard.state" in server.index_templates
    assert d.installed[0] == "_ilm/policy/wgsiem-logs"
    settings = server.component_templates["logs-wireguard@settings"]["template"]["settings"]
    assert settings["index"]["lifecycle"] == {"name": "wgsiem-logs"}


def test_template_mapping_rejects_a_wrong_type() -> None:
    server = ContractServer(validate_ecs=False)
    doc = next(d for d in real_documents() if d["event"]["dataset"] == "wireguard.state")
    bad = {**doc, "event": {**doc["event"], "id": "bad-ip"}, "source": {"ip": "not-an-ip"}}

    async def go(running: Running) -> DeliveryReport:
        d = ElasticsearchDeliverer(config(running.url, install={"template": True}))
        await d.start()
        await d.health_check()
        report = await d.deliver(pending([doc, bad]))
        await d.close()
        return report

    report = run(go, server)
    assert list(report.rejected) == [1]
    assert "failed to parse field [source.ip] of type [ip]" in report.rejected[1]
