"""A strict contract server for the parts of the Elasticsearch REST API the sink and the content use.

Not Elasticsearch: an aiohttp app that implements, from Elastic's API reference, exactly:

* ``GET /`` — cluster info, with the ``X-Elastic-Product: Elasticsearch`` header the official client
  checks (``product="opensearch"`` answers like OpenSearch: no header, ``distribution: opensearch``);
* ``POST|PUT /_bulk`` and ``/<target>/_bulk`` — NDJSON action/source pairs, body must end with a newline,
  ``create`` into data streams (``logs-*-*``; ``index`` into a data stream is refused per item), ``_id``
  conflicts → per-item 409 ``version_conflict_engine_exception``, missing ``@timestamp`` → 400, a field
  whose type contradicts the stream's mapping (first document's dynamic type, or an installed
  template's explicit ``ip``/``long``/``boolean``/``date``) → 400 ``document_parsing_exception``,
  ``errors: true`` whenever any item failed, whole request > ``max_content_length`` → 413;
* ``PUT _index_template/<n>``, ``_component_template/<n>``, ``_ilm/policy/<n>``, ``_ingest/pipeline/<id>``
  — the documented request shapes (unknown keys and missing required parameters → 400
  ``x_content_parse_exception``/``parse_exception``; an index template naming a component template
  that does not exist → 400);
* ``GET|POST /_security/user/_has_privileges``;
* authentication: ``ApiKey``, ``Basic`` and ``Bearer`` → 401 ``security_exception`` when wrong; a user
  without ``create_doc`` gets per-request 403.

Fault injection (for the tests): ``fail_next(status, n, retry_after)`` answers the next ``n`` bulk
requests with a whole-request error; ``throttle_items(n)`` answers the next ``n`` items 429
``es_rejected_execution_exception``. Every stored document is checked with ``tests/support/ecs.py``;
problems are collected in ``ecs_problems``.
"""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import re
import ssl
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
from aiohttp import web

from tests.support.ecs import validate

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
_DATA_STREAM = re.compile(r"^logs-[^-]+-[^-]+$")
_JSON = "application/json"
_OPAQUE = ("object", "flattened", "flat_object")


def es_error(status: int, kind: str, reason: str) -> web.Response:
    body = {"error": {"root_cause": [{"type": kind, "reason": reason}], "type": kind, "reason": reason}}
    body["status"] = status
    headers = {"X-Elastic-Product": "Elasticsearch"}
    if status == 401:
        headers["WWW-Authenticate"] = 'Basic realm="security", ApiKey, Bearer realm="security"'
    return web.Response(status=status, body=orjson.dumps(body), content_type=_JSON, headers=headers)


@dataclass
class User:
    name: str
    privileges: set[str] = field(default_factory=lambda: {"create_doc", "auto_configure", "manage"})


@dataclass
class Stream:
    docs: dict[str, dict[str, Any]] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)
    dynamic: dict[str, str] = field(default_factory=dict)


# ---------------------------------------------------------------- request-shape schemas
# {key: (required, python types)} per documented body; nested checks below.
_INDEX_TEMPLATE = {
    "index_patterns": (True, (str, list)),
    "composed_of": (False, (list,)),
    "template": (False, (dict,)),
    "data_stream": (False, (dict,)),
    "priority": (False, (int,)),
    "version": (False, (int,)),
    "_meta": (False, (dict,)),
    "allow_auto_create": (False, (bool,)),
    "ignore_missing_component_templates": (False, (list,)),
    "deprecated": (False, (bool,)),
}
_COMPONENT_TEMPLATE = {
    "template": (True, (dict,)),
    "version": (False, (int,)),
    "_meta": (False, (dict,)),
    "allow_auto_create": (False, (bool,)),
    "deprecated": (False, (bool,)),
}
_TEMPLATE = {
    "settings": (False, (dict,)),
    "mappings": (False, (dict,)),
    "aliases": (False, (dict,)),
    "lifecycle": (False, (dict,)),
}
_PIPELINE = {
    "description": (False, (str,)),
    "processors": (True, (list,)),
    "on_failure": (False, (list,)),
    "version": (False, (int,)),
    "_meta": (False, (dict,)),
    "deprecated": (False, (bool,)),
}
_COMMON_PROCESSOR = {
    "if": (False, (str,)),
    "tag": (False, (str,)),
    "ignore_failure": (False, (bool,)),
    "on_failure": (False, (list,)),
    "description": (False, (str,)),
}
_PROCESSORS: dict[str, dict[str, tuple[bool, tuple[type, ...]]]] = {
    "dissect": {
        "field": (True, (str,)),
        "pattern": (True, (str,)),
        "append_separator": (False, (str,)),
        "ignore_missing": (False, (bool,)),
    },
    "set": {
        "field": (True, (str,)),
        "value": (False, (str, list, int, bool, float)),
        "copy_from": (False, (str,)),
        "override": (False, (bool,)),
        "ignore_empty_value": (False, (bool,)),
        "media_type": (False, (str,)),
    },
    "gsub": {
        "field": (True, (str,)),
        "pattern": (True, (str,)),
        "replacement": (True, (str,)),
        "target_field": (False, (str,)),
        "ignore_missing": (False, (bool,)),
    },
    "convert": {
        "field": (True, (str,)),
        "type": (True, (str,)),
        "target_field": (False, (str,)),
        "ignore_missing": (False, (bool,)),
    },
    "split": {
        "field": (True, (str,)),
        "separator": (True, (str,)),
        "target_field": (False, (str,)),
        "ignore_missing": (False, (bool,)),
        "preserve_trailing": (False, (bool,)),
    },
    "date": {
        "field": (True, (str,)),
        "formats": (True, (list,)),
        "target_field": (False, (str,)),
        "timezone": (False, (str,)),
        "locale": (False, (str,)),
        "output_format": (False, (str,)),
    },
    "remove": {
        "field": (True, (str, list)),
        "ignore_missing": (False, (bool,)),
        "keep": (False, (str, list)),
    },
    "rename": {
        "field": (True, (str,)),
        "target_field": (True, (str,)),
        "ignore_missing": (False, (bool,)),
        "override": (False, (bool,)),
    },
}
_CONVERT_TYPES = {"integer", "long", "float", "double", "string", "boolean", "ip", "auto"}
_ILM_ACTIONS = {
    "hot": {
        "rollover",
        "set_priority",
        "forcemerge",
        "shrink",
        "readonly",
        "unfollow",
        "searchable_snapshot",
        "downsample",
    },
    "warm": {
        "allocate",
        "migrate",
        "forcemerge",
        "shrink",
        "readonly",
        "set_priority",
        "unfollow",
        "downsample",
    },
    "cold": {
        "allocate",
        "migrate",
        "readonly",
        "set_priority",
        "unfollow",
        "searchable_snapshot",
        "downsample",
    },
    "frozen": {"searchable_snapshot", "unfollow"},
    "delete": {"wait_for_snapshot", "delete"},
}
_ROLLOVER = {
    "max_age",
    "max_docs",
    "max_size",
    "max_primary_shard_size",
    "max_primary_shard_docs",
    "min_age",
    "min_docs",
    "min_size",
    "min_primary_shard_size",
    "min_primary_shard_docs",
}
_TIME = re.compile(r"^\d+(d|h|m|s|ms|micros|nanos)$")
_SIZE = re.compile(r"^\d+(b|kb|mb|gb|tb|pb)$")


def check_shape(body: Any, shape: dict[str, tuple[bool, tuple[type, ...]]], where: str) -> list[str]:
    if not isinstance(body, dict):
        return [f"{where}: expected an object"]
    problems = [f"{where}: unknown key [{k}]" for k in body if k not in shape]
    for key, (required, types) in shape.items():
        if key not in body:
            if required:
                problems.append(f"{where}: [{key}] is required")
        elif not isinstance(body[key], types) or (isinstance(body[key], bool) and bool not in types):
            problems.append(f"{where}: [{key}] has the wrong type")
    return problems


def check_processor(proc: Any, where: str) -> list[str]:
    if not isinstance(proc, dict) or len(proc) != 1:
        return [f"{where}: a processor is an object with exactly one key"]
    ((kind, options),) = proc.items()
    if kind not in _PROCESSORS:
        return [f"{where}: No processor type exists with name [{kind}]"]
    problems = check_shape(options, _PROCESSORS[kind] | _COMMON_PROCESSOR, f"{where}.{kind}")
    if kind == "set" and isinstance(options, dict) and ("value" in options) == ("copy_from" in options):
        problems.append(f"{where}.set: exactly one of [value] or [copy_from] is required")
    if kind == "convert" and isinstance(options, dict) and options.get("type") not in _CONVERT_TYPES:
        problems.append(f"{where}.convert: type [{options.get('type')}] not supported")
    for i, sub in enumerate(options.get("on_failure", []) if isinstance(options, dict) else []):
        problems += check_processor(sub, f"{where}.{kind}.on_failure[{i}]")
    return problems


def check_pipeline(body: Any) -> list[str]:
    problems = check_shape(body, _PIPELINE, "pipeline")
    if isinstance(body, dict):
        for key in ("processors", "on_failure"):
            for i, proc in enumerate(body.get(key) or []):
                problems += check_processor(proc, f"{key}[{i}]")
    return problems


def check_ilm(body: Any) -> list[str]:
    problems = check_shape(body, {"policy": (True, (dict,))}, "ilm")
    policy = body.get("policy") if isinstance(body, dict) else None
    if not isinstance(policy, dict):
        return problems
    problems += check_shape(policy, {"phases": (True, (dict,)), "_meta": (False, (dict,))}, "policy")
    for phase, spec in (policy.get("phases") or {}).items():
        if phase not in _ILM_ACTIONS:
            problems.append(f"phase [{phase}] is not one of {sorted(_ILM_ACTIONS)}")
            continue
        problems += check_shape(spec, {"min_age": (False, (str,)), "actions": (True, (dict,))}, phase)
        if isinstance(spec, dict) and "min_age" in spec and not _TIME.match(str(spec["min_age"])):
            problems.append(f"{phase}.min_age [{spec['min_age']}] is not a time value")
        for action, opts in (spec.get("actions") or {} if isinstance(spec, dict) else {}).items():
            if action not in _ILM_ACTIONS[phase]:
                problems.append(f"invalid action [{action}] defined in phase [{phase}]")
            if action == "rollover":
                if not opts or set(opts) - _ROLLOVER:
                    problems.append("rollover: at least one known condition is required")
                for k, v in (opts or {}).items():
                    if ("age" in k and not _TIME.match(str(v))) or ("size" in k and not _SIZE.match(str(v))):
                        problems.append(f"rollover.{k} [{v}] is malformed")
    return problems


def check_mappings(mappings: Any, where: str) -> list[str]:
    if not isinstance(mappings, dict):
        return [f"{where}: mappings must be an object"]
    known = {
        "properties",
        "dynamic_templates",
        "dynamic",
        "_source",
        "_meta",
        "date_detection",
        "numeric_detection",
        "runtime",
        "subobjects",
    }
    problems = [f"{where}: unknown mapping key [{k}]" for k in mappings if k not in known]
    types = {
        "keyword",
        "constant_keyword",
        "wildcard",
        "match_only_text",
        "text",
        "long",
        "integer",
        "short",
        "byte",
        "double",
        "float",
        "scaled_float",
        "boolean",
        "ip",
        "date",
        "date_nanos",
        "object",
        "flattened",
        "nested",
        "geo_point",
        "flat_object",
    }

    def walk(props: Any, path: str) -> None:
        if not isinstance(props, dict):
            problems.append(f"{path}: properties must be an object")
            return
        for name, spec in props.items():
            if not isinstance(spec, dict):
                problems.append(f"{path}.{name}: a field mapping is an object")
                continue
            if "properties" in spec:
                walk(spec["properties"], f"{path}.{name}")
            elif spec.get("type") not in types:
                problems.append(f"{path}.{name}: no handler for type [{spec.get('type')}]")

    walk(mappings.get("properties", {}), where)
    return problems


def _flat_types(props: dict[str, Any], prefix: str = "") -> dict[str, str]:
    out: dict[str, str] = {}
    for name, spec in props.items():
        if "properties" in spec:
            out.update(_flat_types(spec["properties"], f"{prefix}{name}."))
        else:
            out[prefix + name] = spec.get("type", "object")
    return out


def _leaves(doc: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for key, value in doc.items():
        if isinstance(value, dict):
            out.append((prefix + key, value))
            out.extend(_leaves(value, f"{prefix}{key}."))
        else:
            out.append((prefix + key, value))
    return out


def _dynamic_type(value: Any) -> str:
    v = value[0] if isinstance(value, list) and value else value
    if isinstance(v, dict):
        return "object"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, int | float):
        return "number"
    return "string"


def _fits(ftype: str, value: Any) -> bool:
    values = value if isinstance(value, list) else [value]
    return all(v is None or _fits_one(ftype, v) for v in values)


def _fits_one(ftype: str, v: Any) -> bool:
    if isinstance(v, dict):
        return False
    if ftype == "ip":
        try:
            ipaddress.ip_address(v)
        except (ValueError, TypeError):
            return False
        return True
    if ftype in ("long", "integer"):
        return (isinstance(v, int) and not isinstance(v, bool)) or (
            isinstance(v, str) and v.lstrip("-").isdigit()
        )
    if ftype == "boolean":
        return isinstance(v, bool) or v in ("true", "false")
    if ftype == "date":
        return isinstance(v, int) or (isinstance(v, str) and bool(_DATE.match(v)))
    return True


class ContractServer:
    """The app's state; ``app`` is the aiohttp application."""

    def __init__(
        self,
        *,
        product: str = "elasticsearch",
        api_keys: dict[str, User] | None = None,
        basic: dict[tuple[str, str], User] | None = None,
        bearer: dict[str, User] | None = None,
        max_content_length: int = 100 * 1024 * 1024,
        validate_ecs: bool = True,
        check_types: bool = True,
        respond_delay_secs: float = 0.0,
    ) -> None:
        self.product = product
        self.api_keys = api_keys or {}
        self.basic = basic or {}
        self.bearer = bearer or {}
        self.max_content_length = max_content_length
        self.validate_ecs = validate_ecs
        self.check_types = check_types
        self.respond_delay_secs = respond_delay_secs
        self.holding = 0  # bulk requests stored but not yet answered (respond_delay_secs)
        self._types_cache: dict[tuple[Any, ...], dict[str, str]] = {}
        self._put_generation = 0
        self.streams: dict[str, Stream] = {}
        self.component_templates: dict[str, Any] = {}
        self.index_templates: dict[str, Any] = {}
        self.ilm_policies: dict[str, Any] = {}
        self.pipelines: dict[str, Any] = {}
        self.ecs_problems: list[str] = []
        self.requests: list[tuple[str, str, int]] = []
        self.bulk_requests = 0
        self.seen_auth: list[str] = []
        self._fail: list[tuple[int, float | None]] = []
        self._throttle_items = 0
        self.app = web.Application(client_max_size=max(max_content_length * 2, 1024 * 1024))
        r = self.app.router
        r.add_get("/", self.root)
        r.add_route("*", "/_bulk", self.bulk)
        r.add_route("*", "/{target}/_bulk", self.bulk)
        r.add_put("/_index_template/{name}", self.put_index_template)
        r.add_put("/_component_template/{name}", self.put_component_template)
        r.add_put("/_ilm/policy/{name}", self.put_ilm)
        r.add_put("/_ingest/pipeline/{name}", self.put_pipeline)
        r.add_route("*", "/_security/user/_has_privileges", self.has_privileges)

    # ------------------------------------------------------------ test controls
    def fail_next(self, status: int, n: int = 1, retry_after: float | None = None) -> None:
        self._fail.extend([(status, retry_after)] * n)

    def throttle_items(self, n: int) -> None:
        self._throttle_items += n

    @property
    def documents(self) -> dict[str, dict[str, Any]]:
        return {i: d for s in self.streams.values() for i, d in s.docs.items()}

    def count(self) -> int:
        return sum(len(s.docs) for s in self.streams.values())

    # ------------------------------------------------------------ plumbing
    def _ok(self, body: Any, status: int = 200) -> web.Response:
        headers = {"X-Elastic-Product": "Elasticsearch"} if self.product == "elasticsearch" else {}
        return web.Response(status=status, body=orjson.dumps(body), content_type=_JSON, headers=headers)

    def _auth(self, request: web.Request) -> User | web.Response:
        if not (self.api_keys or self.basic or self.bearer):
            return User("anonymous")
        header = request.headers.get("Authorization", "")
        scheme, _, cred = header.partition(" ")
        user: User | None = None
        if scheme == "ApiKey":
            user = self.api_keys.get(cred)
        elif scheme == "Basic":
            try:
                name, _, pw = base64.b64decode(cred, validate=True).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                name, pw = "", ""
            user = self.basic.get((name, pw))
        elif scheme == "Bearer":
            user = self.bearer.get(cred)
        self.seen_auth.append(scheme or "none")
        if user is None:
            return es_error(401, "security_exception", "unable to authenticate with provided credentials")
        return user

    # ------------------------------------------------------------ endpoints
    async def root(self, request: web.Request) -> web.Response:
        user = self._auth(request)
        if isinstance(user, web.Response):
            return user
        version: dict[str, Any] = {"number": "9.2.0", "build_flavor": "default", "lucene_version": "10.3.1"}
        if self.product == "opensearch":
            version = {"distribution": "opensearch", "number": "3.3.0", "lucene_version": "10.3.1"}
        return self._ok(
            {
                "name": "contract-node",
                "cluster_name": "wgsiem-contract",
                "cluster_uuid": "contract",
                "version": version,
                "tagline": "You Know, for Search",
            }
        )

    async def has_privileges(self, request: web.Request) -> web.Response:
        user = self._auth(request)
        if isinstance(user, web.Response):
            return user
        body = orjson.loads(await request.read() or b"{}")
        index: dict[str, dict[str, bool]] = {}
        for entry in body.get("index", []):
            for name in entry["names"]:
                index[name] = {p: p in user.privileges for p in entry["privileges"]}
        all_ok = all(all(v.values()) for v in index.values())
        return self._ok(
            {
                "username": user.name,
                "has_all_requested": all_ok,
                "cluster": {},
                "index": index,
                "application": {},
            }
        )

    async def bulk(self, request: web.Request) -> web.Response:
        user = self._auth(request)
        if isinstance(user, web.Response):
            return user
        if request.method not in ("POST", "PUT"):
            return es_error(405, "method_not_allowed", "bulk takes POST or PUT")
        if request.content_length is not None and request.content_length > self.max_content_length:
            return es_error(
                413,
                "content_too_long_exception",
                f"request content length [{request.content_length}] exceeds [{self.max_content_length}]",
            )
        body = await request.read()
        self.bulk_requests += 1
        if len(body) > self.max_content_length:
            return es_error(413, "content_too_long_exception", "request too large")
        if self._fail:
            status, retry_after = self._fail.pop(0)
            resp = es_error(
                status, "es_rejected_execution_exception" if status == 429 else "unavailable", "injected"
            )
            if retry_after is not None:
                resp.headers["Retry-After"] = str(int(retry_after))
            return resp
        ctype = request.headers.get("Content-Type", "")
        # the documented type is application/x-ndjson; like Elasticsearch, JSON is accepted too
        if not re.match(r"^application/(x-ndjson|json|vnd\.elasticsearch\+(x-ndjson|json))\b", ctype):
            return es_error(406, "media_type_header_exception", f"Content-Type [{ctype}] is not x-ndjson")
        if "create_doc" not in user.privileges:
            return es_error(
                403,
                "security_exception",
                f"action [indices:data/write/bulk] is unauthorized for user [{user.name}]",
            )
        if not body.endswith(b"\n"):
            return es_error(
                400, "illegal_argument_exception", "The bulk request must be terminated by a newline [\\n]"
            )
        lines = body.split(b"\n")[:-1]
        if len(lines) % 2:
            return es_error(400, "illegal_argument_exception", "action without a source line")
        default_index = request.match_info.get("target")
        if not (self.check_types or self.validate_ecs):
            return self._bulk_fast(lines, default_index)
        items: list[dict[str, Any]] = []
        for i in range(0, len(lines), 2):
            try:
                action = orjson.loads(lines[i])
                source = orjson.loads(lines[i + 1])
            except orjson.JSONDecodeError as exc:
                return es_error(400, "x_content_parse_exception", f"line {i + 1}: {exc}")
            if not isinstance(action, dict) or len(action) != 1:
                return es_error(400, "illegal_argument_exception", "Malformed action/metadata line")
            ((op, meta),) = action.items()
            items.append({op: self._store(op, meta, source, default_index)})
        errors = any(not 200 <= next(iter(it.values()))["status"] < 300 for it in items)
        if self.respond_delay_secs:  # stored, answer not sent yet: a client killed now never hears
            self.holding += 1
            try:
                await asyncio.sleep(self.respond_delay_secs)
            finally:
                self.holding -= 1
        return self._ok({"errors": errors, "took": 1, "items": items})

    def _bulk_fast(self, lines: list[bytes], default_index: str | None) -> web.Response:
        """The benchmark's mode: same protocol and answers, but sources are only checked to be JSON
        objects with ``@timestamp`` (by bytes), so the server is not the bottleneck being measured."""
        items: list[dict[str, Any]] = []
        errors = False
        for i in range(0, len(lines), 2):
            action = orjson.loads(lines[i])
            ((op, meta),) = action.items()
            index = meta.get("_index", default_index)
            _id = meta.get("_id")
            stream = self.streams.setdefault(index, Stream())
            source = lines[i + 1]
            if op != "create" or not source.startswith(b"{") or b'"@timestamp"' not in source:
                items.append(
                    {
                        op: {
                            "_index": index,
                            "_id": _id,
                            "status": 400,
                            "error": {"type": "illegal_argument_exception", "reason": "bad"},
                        }
                    }
                )
                errors = True
            elif _id in stream.docs:
                items.append(
                    {
                        op: {
                            "_index": index,
                            "_id": _id,
                            "status": 409,
                            "error": {"type": "version_conflict_engine_exception", "reason": "exists"},
                        }
                    }
                )
                errors = True
            else:
                stream.docs[_id] = {}
                items.append(
                    {op: {"_index": index, "_id": _id, "_version": 1, "result": "created", "status": 201}}
                )
        return self._ok({"errors": errors, "took": 1, "items": items})

    def _store(self, op: str, meta: dict[str, Any], source: Any, default_index: str | None) -> dict[str, Any]:
        index = meta.get("_index", default_index)
        _id = meta.get("_id")

        def fail(status: int, kind: str, reason: str) -> dict[str, Any]:
            return {"_index": index, "_id": _id, "status": status, "error": {"type": kind, "reason": reason}}

        if not isinstance(index, str):
            return fail(400, "action_request_validation_exception", "index is missing")
        if not _DATA_STREAM.match(index):
            return fail(400, "illegal_argument_exception", f"[{index}] is not a data stream in this server")
        if op != "create":
            return fail(
                400,
                "illegal_argument_exception",
                f"only write ops with an op_type of create are allowed in data streams (got {op})",
            )
        if self._throttle_items > 0:
            self._throttle_items -= 1
            return fail(
                429, "es_rejected_execution_exception", "rejected execution of coordinating operation"
            )
        if not isinstance(source, dict) or "@timestamp" not in source:
            return fail(
                400, "document_parsing_exception", "data stream timestamp field [@timestamp] is missing"
            )
        stream = self.streams.setdefault(index, Stream())
        _id = _id or f"auto-{len(stream.order)}"
        if _id in stream.docs:
            return fail(
                409,
                "version_conflict_engine_exception",
                f"[{_id}]: version conflict, document already exists (current version [1])",
            )
        explicit = self._explicit_types(index) if self.check_types else {}
        for name, value in _leaves(source) if self.check_types else ():
            ftype = explicit.get(name)
            if ftype is not None and ftype not in _OPAQUE and not _fits(ftype, value):
                return fail(
                    400,
                    "document_parsing_exception",
                    f"failed to parse field [{name}] of type [{ftype}] in document with id '{_id}'",
                )
            if ftype is not None:
                continue
            if any(name.startswith(f + ".") and t in _OPAQUE for f, t in explicit.items()):
                continue
            kind = _dynamic_type(value)
            seen = stream.dynamic.setdefault(name, kind)
            if seen != kind and not (seen == "number" and kind == "number"):
                return fail(
                    400,
                    "document_parsing_exception",
                    f"mapper [{name}] cannot be changed from type [{seen}] to [{kind}]",
                )
        if self.validate_ecs:
            doc = {k: v for k, v in source.items() if k != "data_stream"} | {
                "data_stream": source.get("data_stream", {})
            }
            for problem in validate(doc):
                self.ecs_problems.append(f"{_id}: {problem}")
            ds = source.get("data_stream", {})
            if ds and f"logs-{ds.get('dataset')}-{ds.get('namespace')}" != index:
                self.ecs_problems.append(f"{_id}: data_stream {ds} does not name {index}")
        stream.docs[_id] = source
        stream.order.append(_id)
        return {
            "_index": index,
            "_id": _id,
            "_version": 1,
            "result": "created",
            "status": 201,
            "_seq_no": len(stream.order) - 1,
            "_primary_term": 1,
        }

    def _explicit_types(self, index: str) -> dict[str, str]:
        key = (index, self._put_generation)
        cached = self._types_cache.get(key)
        if cached is None:
            cached = self._types_cache[key] = self._compute_types(index)
        return cached

    def _compute_types(self, index: str) -> dict[str, str]:
        best: tuple[int, dict[str, Any]] | None = None
        for tpl in self.index_templates.values():
            patterns = tpl["index_patterns"]
            patterns = [patterns] if isinstance(patterns, str) else patterns
            if any(re.fullmatch(re.escape(p).replace(r"\*", ".*"), index) for p in patterns) and (
                best is None or tpl.get("priority", 0) > best[0]
            ):
                best = (tpl.get("priority", 0), tpl)
        if best is None:
            return {}
        types: dict[str, str] = {}
        for comp in best[1].get("composed_of", []):
            mappings = self.component_templates[comp].get("template", {}).get("mappings", {})
            types.update(_flat_types(mappings.get("properties", {})))
        types.update(_flat_types(best[1].get("template", {}).get("mappings", {}).get("properties", {})))
        return types

    async def _put(self, request: web.Request, checker: Any, store: dict[str, Any]) -> web.Response:
        user = self._auth(request)
        if isinstance(user, web.Response):
            return user
        if "manage" not in user.privileges:
            return es_error(403, "security_exception", f"action is unauthorized for user [{user.name}]")
        try:
            body = orjson.loads(await request.read())
        except orjson.JSONDecodeError as exc:
            return es_error(400, "parse_exception", str(exc))
        problems = checker(body)
        if problems:
            return es_error(400, "x_content_parse_exception", "; ".join(problems))
        store[request.match_info["name"]] = body
        self._put_generation += 1  # mappings may have changed
        self.requests.append((request.method, request.path, 200))
        return self._ok({"acknowledged": True})

    async def put_component_template(self, request: web.Request) -> web.Response:
        def check(body: Any) -> list[str]:
            problems = check_shape(body, _COMPONENT_TEMPLATE, "component_template")
            tpl = body.get("template") if isinstance(body, dict) else None
            if isinstance(tpl, dict):
                problems += check_shape(tpl, _TEMPLATE, "template")
                if "mappings" in tpl:
                    problems += check_mappings(tpl["mappings"], "mappings")
            return problems

        return await self._put(request, check, self.component_templates)

    async def put_index_template(self, request: web.Request) -> web.Response:
        def check(body: Any) -> list[str]:
            problems = check_shape(body, _INDEX_TEMPLATE, "index_template")
            if isinstance(body, dict):
                missing = [c for c in body.get("composed_of", []) if c not in self.component_templates]
                if missing:
                    problems.append(
                        f"index template specifies component templates {missing} that do not exist"
                    )
                tpl = body.get("template")
                if isinstance(tpl, dict):
                    problems += check_shape(tpl, _TEMPLATE, "template")
            return problems

        return await self._put(request, check, self.index_templates)

    async def put_ilm(self, request: web.Request) -> web.Response:
        return await self._put(request, check_ilm, self.ilm_policies)

    async def put_pipeline(self, request: web.Request) -> web.Response:
        return await self._put(request, check_pipeline, self.pipelines)


@dataclass
class Running:
    server: ContractServer
    runner: web.AppRunner
    url: str
    port: int

    async def stop(self) -> None:
        await self.runner.cleanup()


async def start(
    server: ContractServer, *, port: int = 0, ssl_context: ssl.SSLContext | None = None
) -> Running:
    """Serve on 127.0.0.1 (``port=0``: any free port)."""
    runner = web.AppRunner(server.app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port, ssl_context=ssl_context)
    await site.start()
    sockets = site._server.sockets if site._server is not None else []  # type: ignore[union-attr]
    bound = sockets[0].getsockname()[1]
    scheme = "https" if ssl_context else "http"
    return Running(server, runner, f"{scheme}://127.0.0.1:{bound}", bound)


def now_iso() -> str:
    return datetime.now().astimezone().isoformat()


def main() -> None:
    """``python -m tests.sinks.elasticsearch.contract_server PORT``: serve fast (no ECS/type checks)."""
    import sys

    server = ContractServer(validate_ecs=False, check_types=False)
    web.run_app(server.app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None)


if __name__ == "__main__":
    main()
