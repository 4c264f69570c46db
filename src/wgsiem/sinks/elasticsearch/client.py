"""One small async surface over the two official clients (``elasticsearch`` and ``opensearch-py``).

Why a wrapper: the deliverer needs five calls (``GET /``, ``_bulk`` with a pre-encoded body, the
privileges check, and the PUTs of the setup) and one error vocabulary (HTTP status, Retry-After,
connection failure). The two clients spell all of these differently; everything else in the sink is
written once against :class:`ClusterClient`.

Both clients are built with their own retries OFF (``max_retries=0``): retry and backoff belong to
the outbox, which keeps the order and survives a restart; a retry loop inside the client would hide
per-document results and multiply requests during an outage.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .config import ElasticsearchSinkConfig

__all__ = ["ClusterClient", "ClusterConnectionError", "ClusterHTTPError", "UnsupportedProduct", "open_client"]


class ClusterHTTPError(Exception):
    """The cluster answered with an HTTP error status."""

    def __init__(self, status: int, message: str, retry_after_secs: float | None = None) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status
        self.message = message
        self.retry_after_secs = retry_after_secs


class ClusterConnectionError(Exception):
    """No HTTP answer at all (refused, reset, TLS failure, timeout)."""


class UnsupportedProduct(Exception):
    """The server is not Elasticsearch (the client's product check)."""


def _retry_after(headers: Any) -> float | None:
    try:
        value = headers.get("retry-after") if headers is not None else None
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


@dataclass(slots=True)
class ClusterClient:
    """The calls the sink makes; ``raw`` is the official client object."""

    distribution: str
    raw: Any

    async def info(self) -> dict[str, Any]:
        return await self._call(self.raw.info)

    async def bulk(self, body: bytes, *, pipeline: str | None) -> dict[str, Any]:
        if self.distribution == "elasticsearch":
            return await self._call(self.raw.bulk, operations=body, pipeline=pipeline)
        params = {"pipeline": pipeline} if pipeline else None
        return await self._call(self.raw.bulk, body=body, params=params)

    async def has_privileges(self, index_patterns: list[str], privileges: list[str]) -> dict[str, Any]:
        request = {"index": [{"names": index_patterns, "privileges": privileges}]}
        return await self._call(self.raw.security.has_privileges, **request)

    async def put_component_template(self, name: str, body: dict[str, Any]) -> None:
        if self.distribution == "elasticsearch":
            await self._call(self.raw.cluster.put_component_template, name=name, **body)
        else:
            await self._call(self.raw.cluster.put_component_template, name=name, body=body)

    async def put_index_template(self, name: str, body: dict[str, Any]) -> None:
        if self.distribution == "elasticsearch":
            await self._call(self.raw.indices.put_index_template, name=name, **body)
        else:
            await self._call(self.raw.indices.put_index_template, name=name, body=body)

    async def put_ilm_policy(self, name: str, body: dict[str, Any]) -> None:
        await self._call(self.raw.ilm.put_lifecycle, name=name, **body)

    async def put_pipeline(self, name: str, body: dict[str, Any]) -> None:
        if self.distribution == "elasticsearch":
            await self._call(self.raw.ingest.put_pipeline, id=name, **body)
        else:
            await self._call(self.raw.ingest.put_pipeline, id=name, body=body)

    async def close(self) -> None:
        await self.raw.close()

    async def _call(self, fn: Any, **kwargs: Any) -> dict[str, Any]:
        if self.distribution == "elasticsearch":
            return await _call_elasticsearch(fn, **kwargs)
        return await _call_opensearch(fn, **kwargs)


async def _call_elasticsearch(fn: Any, **kwargs: Any) -> dict[str, Any]:
    import elastic_transport
    import elasticsearch

    try:
        response = await fn(**kwargs)
    except elasticsearch.UnsupportedProductError as exc:
        raise UnsupportedProduct(str(exc)) from None
    except elasticsearch.ApiError as exc:
        raise ClusterHTTPError(
            exc.meta.status, str(exc.message)[:500], _retry_after(exc.meta.headers)
        ) from None
    except elastic_transport.TransportError as exc:  # ConnectionError, ConnectionTimeout, TLS
        raise ClusterConnectionError(f"{type(exc).__name__}: {exc.message}"[:500]) from None
    body = response.body
    return body if isinstance(body, dict) else {"body": body}


async def _call_opensearch(fn: Any, **kwargs: Any) -> dict[str, Any]:
    import opensearchpy

    try:
        body = await fn(**kwargs)
    except opensearchpy.ConnectionError as exc:  # includes SSLError and ConnectionTimeout
        raise ClusterConnectionError(f"{type(exc).__name__}: {exc.error}"[:500]) from None
    except opensearchpy.TransportError as exc:
        status = exc.status_code if isinstance(exc.status_code, int) else 0
        info = exc.info if isinstance(exc.info, dict) else {}
        error = info.get("error")
        message = error.get("type", str(error)) if isinstance(error, dict) else str(exc.error)
        raise ClusterHTTPError(status, message[:500]) from None
    return body if isinstance(body, dict) else {"body": body}


class _BytesNdjson:
    """The ``_bulk`` body is already NDJSON bytes (``bulk.encode_bulk``): send it without the copy the
    client's own NDJSON serializer makes; anything else goes through that serializer."""

    mimetype = "application/x-ndjson"

    def __init__(self) -> None:
        from elastic_transport import NdjsonSerializer

        self._fallback = NdjsonSerializer()

    def dumps(self, data: Any) -> bytes:
        if isinstance(data, bytes) and data.endswith(b"\n"):
            return data
        return bytes(self._fallback.dumps(data))

    def loads(self, data: bytes) -> Any:
        return self._fallback.loads(data)


def open_client(config: ElasticsearchSinkConfig) -> ClusterClient:
    """Build the official client for ``config`` (no request is made here)."""
    fingerprint = (config.ca_fingerprint_sha256 or "").replace(":", "").lower() or None
    if config.distribution == "elasticsearch":
        from elasticsearch import AsyncElasticsearch

        kwargs: dict[str, Any] = {
            "request_timeout": config.request_timeout_secs,
            "max_retries": 0,
            "retry_on_status": (),
            "retry_on_timeout": False,
        }
        if config.api_key is not None:
            kwargs["api_key"] = config.api_key.get_secret_value()
        if config.username is not None and config.password is not None:
            kwargs["basic_auth"] = (config.username, config.password.get_secret_value())
        if config.bearer_token is not None:
            kwargs["bearer_auth"] = config.bearer_token.get_secret_value()
        if config.uses_tls:
            if config.ca_file:
                kwargs["ca_certs"] = config.ca_file
            if fingerprint:
                kwargs["ssl_assert_fingerprint"] = fingerprint
            kwargs["verify_certs"] = config.verify_certs
            if not config.verify_certs:
                kwargs["ssl_show_warn"] = False
        try:  # responses of 1000 bulk items: orjson parses them several times faster than json
            from elasticsearch.serializer import OrjsonSerializer

            kwargs["serializers"] = {
                "application/json": OrjsonSerializer(),
                "application/vnd.elasticsearch+json": OrjsonSerializer(),
                "application/x-ndjson": _BytesNdjson(),
                "application/vnd.elasticsearch+x-ndjson": _BytesNdjson(),
            }
        except ImportError:  # pragma: no cover - orjson is a wgsiem dependency
            pass
        return ClusterClient("elasticsearch", AsyncElasticsearch(list(config.hosts), **kwargs))

    from opensearchpy import AsyncOpenSearch

    okwargs: dict[str, Any] = {
        "timeout": config.request_timeout_secs,
        "max_retries": 0,
        "retry_on_status": (),
        "retry_on_timeout": False,
    }
    if config.username is not None and config.password is not None:
        okwargs["http_auth"] = (config.username, config.password.get_secret_value())
    if config.uses_tls:
        okwargs["use_ssl"] = True
        okwargs["verify_certs"] = config.verify_certs and not fingerprint
        okwargs["ssl_show_warn"] = False
        if config.ca_file:
            okwargs["ca_certs"] = config.ca_file
        if fingerprint:
            okwargs["ssl_assert_fingerprint"] = fingerprint
    return ClusterClient("opensearch", AsyncOpenSearch(list(config.hosts), **okwargs))
