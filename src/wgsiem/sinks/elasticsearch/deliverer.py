"""``ElasticsearchDeliverer``: the outbox's :class:`~wgsiem.sinks.outbox.contract.Deliverer` for
Elasticsearch and OpenSearch.

Why these choices:

* **Every document's fate is known.** ``deliver`` sends the batch as one or more ``_bulk`` requests
  (``bulk.encode_bulk``) and reads every item of every response: 2xx delivered, 409 duplicate
  (already indexed under the same ``event.id``: delivered), per-item 429/5xx back to the outbox for a
  later retry, other 4xx rejected and parked with the cluster's reason. The client's ``helpers``
  are not used: their retry loop hides which document failed.
* **A whole-request failure is the outbox's to retry** (:class:`RetryableDeliveryError`): 429, 5xx,
  connection refused, timeout. A request the cluster finds too large (413) is split in two and each
  half sent again; one document that alone is too large is rejected.
* **Authentication and authorization failures** (401/403) are raised with a fix: the outbox keeps
  the events and retries (credentials are often fixed while wgsiem runs), and ``wgsiem status``
  shows the error. Secrets live in ``SecretStr`` and only the official client ever sees them; no
  message built here contains a header or a URL with credentials.
* **Health check**: ``GET /`` (the Elasticsearch client verifies ``X-Elastic-Product``), then, on
  Elasticsearch, ``_security/user/_has_privileges`` for ``create_doc`` + ``auto_configure`` on
  ``logs-wireguard.*-*`` (skipped when security is off), then the requested installs.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from wgsiem.errors import WgsiemError
from wgsiem.sinks.outbox.contract import DeliveryReport, Pending, RetryableDeliveryError

from .bulk import BulkOutcome, BulkRequest, BulkResponseError, encode_bulk, interpret_bulk_response
from .client import ClusterClient, ClusterConnectionError, ClusterHTTPError, UnsupportedProduct, open_client
from .config import ElasticsearchSinkConfig
from .ingest import DUMP_PIPELINE, dump_pipeline
from .templates import ILM_POLICY, component_templates, ilm_policy, index_templates

__all__ = ["REQUIRED_PRIVILEGES", "ElasticsearchDeliverer"]

STREAM_PATTERN = "logs-wireguard.*-*"
REQUIRED_PRIVILEGES = ["create_doc", "auto_configure"]


def _safe_url(url: str) -> str:
    """``url`` without userinfo (never show a password that was put in a host URL)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = host + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


class ElasticsearchDeliverer:
    """Delivers ECS documents to ``logs-wireguard.<dataset>-<namespace>`` data streams."""

    def __init__(self, config: ElasticsearchSinkConfig, *, client: ClusterClient | None = None) -> None:
        self.config = config
        self._client = client
        self.endpoints = [_safe_url(h) for h in config.hosts]
        self.cluster: dict[str, Any] = {}
        self.counts: dict[str, int] = {
            "requests": 0,
            "delivered": 0,
            "duplicate": 0,
            "retry": 0,
            "rejected": 0,
            "split_413": 0,
        }
        self.retry_reasons: dict[str, int] = {}
        self.last_status: int | None = None
        self.last_error: str | None = None
        self.last_success_unix: float | None = None
        self.installed: list[str] = []

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        if self._client is None:
            self._client = open_client(self.config)

    @property
    def client(self) -> ClusterClient:
        if self._client is None:
            raise WgsiemError("elasticsearch sink used before start()")
        return self._client

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None

    async def health_check(self) -> None:
        where = ", ".join(self.endpoints)
        try:
            info = await self.client.info()
        except UnsupportedProduct:
            raise WgsiemError(
                f"{where} is not Elasticsearch (no X-Elastic-Product header)",
                fix="for OpenSearch set `distribution: opensearch`; otherwise check the hosts",
            ) from None
        except ClusterConnectionError as exc:
            raise WgsiemError(
                f"cannot reach {where}: {exc}",
                fix="check hosts, the network, and TLS (ca_file / ca_fingerprint_sha256)",
            ) from None
        except ClusterHTTPError as exc:
            raise WgsiemError(f"GET / on {where} answered {exc}", fix=self._fix_for(exc.status)) from None
        version = info.get("version") if isinstance(info.get("version"), dict) else {}
        self.cluster = {
            "name": info.get("cluster_name"),
            "version": version.get("number") if isinstance(version, dict) else None,
            "distribution": (version.get("distribution") if isinstance(version, dict) else None)
            or self.config.distribution,
        }
        if self.config.distribution == "elasticsearch":
            await self._check_privileges(where)
        await self.install()

    async def _check_privileges(self, where: str) -> None:
        try:
            answer = await self.client.has_privileges([STREAM_PATTERN], REQUIRED_PRIVILEGES)
        except ClusterHTTPError as exc:
            if exc.status in (400, 404, 500):  # security disabled / not available: nothing to check
                return
            raise WgsiemError(
                f"privileges check on {where} answered {exc}", fix=self._fix_for(exc.status)
            ) from None
        except ClusterConnectionError as exc:
            raise WgsiemError(f"cannot reach {where}: {exc}", fix="check hosts and the network") from None
        if answer.get("has_all_requested") is False:
            index = answer.get("index", {}).get(STREAM_PATTERN, {})
            missing = sorted(p for p, ok in index.items() if not ok) or REQUIRED_PRIVILEGES
            raise WgsiemError(
                f"the credentials lack {', '.join(missing)} on {STREAM_PATTERN}",
                fix="grant the role in `wgsiem export elastic` (roles/wgsiem_writer.json) to this user/key",
            )

    async def install(self) -> None:
        """PUT what ``install:`` asks for (idempotent: PUT overwrites)."""
        install = self.config.install
        dist = self.config.distribution
        try:
            if install.ilm and dist == "elasticsearch":
                await self.client.put_ilm_policy(
                    ILM_POLICY,
                    ilm_policy(
                        retention_days=install.retention_days,
                        rollover_max_age_days=install.rollover_max_age_days,
                        rollover_max_primary_shard_size_gb=install.rollover_max_primary_shard_size_gb,
                    ),
                )
                self.installed.append(f"_ilm/policy/{ILM_POLICY}")
            if install.pipeline:
                await self.client.put_pipeline(DUMP_PIPELINE, dump_pipeline())
                self.installed.append(f"_ingest/pipeline/{DUMP_PIPELINE}")
            if install.template:
                for name, body in component_templates(dist, ilm=install.ilm).items():
                    await self.client.put_component_template(name, body)
                    self.installed.append(f"_component_template/{name}")
                for name, body in index_templates().items():
                    await self.client.put_index_template(name, body)
                    self.installed.append(f"_index_template/{name}")
        except ClusterHTTPError as exc:
            raise WgsiemError(
                f"installing {self.installed[-1] if self.installed else 'setup'} failed: {exc}",
                fix="the user needs manage_index_templates, manage_ilm and manage_pipeline "
                "(roles/wgsiem_setup.json), or install with `wgsiem export elastic` by hand",
            ) from None
        except ClusterConnectionError as exc:
            raise WgsiemError(f"installing failed: {exc}", fix="check hosts and the network") from None

    # ------------------------------------------------------------------ delivery
    async def deliver(self, batch: list[Pending]) -> DeliveryReport:
        requests, rejected = encode_bulk(
            batch, namespace=self.config.namespace, max_request_bytes=self.config.max_request_bytes
        )
        report = DeliveryReport(rejected=dict(rejected))
        by_seq = {p.seq: p for p in batch}
        for request in requests:
            outcome = await self._send(request, by_seq)
            report.rejected.update(outcome.rejected)
            report.retry.extend(outcome.retry)
            self.counts["delivered"] += len(outcome.delivered)
            self.counts["duplicate"] += len(outcome.duplicates)
            self.counts["retry"] += len(outcome.retry)
            for reason, n in outcome.retry_reasons.items():
                self.retry_reasons[reason] = self.retry_reasons.get(reason, 0) + n
        self.counts["rejected"] += len(report.rejected)
        report.retry.sort()
        return report

    async def _send(self, request: BulkRequest, by_seq: dict[int, Pending]) -> BulkOutcome:
        self.counts["requests"] += 1
        try:
            response = await self.client.bulk(request.body, pipeline=self.config.pipeline)
        except ClusterConnectionError as exc:
            self.last_error = str(exc)
            raise RetryableDeliveryError(
                f"_bulk to {', '.join(self.endpoints)}: {exc}", fix="check that the cluster is up"
            ) from None
        except ClusterHTTPError as exc:
            self.last_status = exc.status
            self.last_error = str(exc)
            if exc.status == 413:
                return await self._split(request, by_seq)
            if exc.status == 429 or exc.status >= 500 or exc.status == 408:
                raise RetryableDeliveryError(
                    f"_bulk answered {exc}", retry_after_secs=exc.retry_after_secs
                ) from None
            raise WgsiemError(f"_bulk answered {exc}", fix=self._fix_for(exc.status)) from None
        self.last_status = 200
        try:
            outcome = interpret_bulk_response(response, request)
        except BulkResponseError as exc:
            self.last_error = str(exc)
            raise RetryableDeliveryError(str(exc)) from None
        self.last_success_unix = time.time()
        return outcome

    async def _split(self, request: BulkRequest, by_seq: dict[int, Pending]) -> BulkOutcome:
        """413: the request body was too large for the cluster — send each half on its own."""
        self.counts["split_413"] += 1
        if len(request.seqs) == 1:
            return BulkOutcome(
                rejected={
                    request.seqs[0]: "HTTP 413: document larger than the cluster's http.max_content_length"
                }
            )
        half = len(request.seqs) // 2
        outcome = BulkOutcome()
        for part in (request.seqs[:half], request.seqs[half:]):
            sub, _ = encode_bulk(
                [by_seq[s] for s in part], namespace=self.config.namespace, max_request_bytes=1 << 62
            )
            for r in sub:
                got = await self._send(r, by_seq)
                outcome.delivered += got.delivered
                outcome.duplicates += got.duplicates
                outcome.retry += got.retry
                outcome.rejected.update(got.rejected)
                for k, v in got.retry_reasons.items():
                    outcome.retry_reasons[k] = outcome.retry_reasons.get(k, 0) + v
        return outcome

    @staticmethod
    def _fix_for(status: int) -> str:
        if status == 401:
            return "check api_key / username+password / bearer_token"
        if status == 403:
            return "grant the wgsiem_writer role (`wgsiem export elastic`, roles/) to these credentials"
        if status == 404:
            return "check the host URL path (a proxy prefix?)"
        return "see the cluster's logs"

    def status(self) -> dict[str, Any]:
        return {
            "endpoints": self.endpoints,
            "distribution": self.config.distribution,
            "namespace": self.config.namespace,
            "cluster": self.cluster,
            "last_status": self.last_status,
            "last_error": self.last_error,
            "last_success_unix": self.last_success_unix,
            "documents": dict(self.counts),
            "retry_reasons": dict(self.retry_reasons),
            "installed": list(self.installed),
        }
