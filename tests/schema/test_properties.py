"""Properties over arbitrary valid ECS events of our sources: mapping never raises, every result meets
its class / data model (our tables and OCSF's own schema), and no private or preshared key ever
reaches a mapped document."""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
from datetime import UTC, datetime
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.schema.goldens import examples, golden
from tests.schema.ocsf_official import problems as ocsf_official_problems
from tests.schema.test_validation import cim_problems, ocsf_problems
from wgsiem.schema import SCHEMAS, map_document

CASES = examples()
ACTIONS = sorted({a for _, a in CASES})
CATEGORIES = [
    "authentication",
    "configuration",
    "driver",
    "file",
    "host",
    "intrusion_detection",
    "network",
    "process",
    "session",
]
TYPES = [
    "access",
    "allowed",
    "change",
    "connection",
    "creation",
    "deletion",
    "denied",
    "end",
    "error",
    "info",
    "start",
]
KINDS = ["alert", "event", "state", "signal"]

scalars = st.one_of(
    st.text(max_size=30),
    st.integers(min_value=0, max_value=2**53),
    st.floats(allow_nan=False, allow_infinity=False, min_value=0, max_value=1e12),
    st.booleans(),
)
ips = st.one_of(st.ip_addresses(v=4).map(str), st.ip_addresses(v=6).map(str))
iso = st.integers(min_value=0, max_value=4_102_444_800_000).map(
    lambda ms: datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"
)


@st.composite
def ecs_events(draw: st.DrawFn) -> dict[str, Any]:
    """A real example of any source, with its categorization, endpoints, counters, times and
    wireguard.* leaves redrawn (types kept valid ECS)."""
    doc = copy.deepcopy(golden("ecs", *draw(st.sampled_from(CASES))))
    ev = doc["event"]
    ev["action"] = draw(st.sampled_from(ACTIONS))
    ev["kind"] = draw(st.sampled_from(KINDS))
    ev["category"] = draw(st.lists(st.sampled_from(CATEGORIES), min_size=1, max_size=3, unique=True))
    ev["type"] = draw(st.lists(st.sampled_from(TYPES), min_size=1, max_size=2, unique=True))
    outcome = draw(st.sampled_from([None, "success", "failure", "unknown"]))
    if outcome is None:
        ev.pop("outcome", None)
    else:
        ev["outcome"] = outcome
    if draw(st.booleans()):
        ev["severity"] = draw(st.integers(min_value=0, max_value=100))
    if draw(st.booleans()):
        ev["duration"] = draw(st.integers(min_value=0, max_value=10**15))
    doc["@timestamp"] = draw(iso)
    for side in ("source", "destination"):
        if draw(st.booleans()):
            obj = doc.setdefault(side, {})
            obj["ip"] = obj["address"] = draw(ips)
            obj["port"] = draw(st.integers(min_value=0, max_value=65535))
            if draw(st.booleans()):
                obj["bytes"] = draw(st.integers(min_value=0, max_value=2**62))
        elif draw(st.booleans()):
            doc.pop(side, None)
    if draw(st.booleans()):
        doc.setdefault("network", {})["direction"] = draw(
            st.sampled_from(["inbound", "outbound", "ingress", "egress", "unknown"])
        )
    wg = doc.setdefault("wireguard", {})
    for _ in range(draw(st.integers(min_value=0, max_value=4))):
        group = wg.setdefault(draw(st.sampled_from(["peer", "interface", "session", "change", "extra"])), {})
        if isinstance(group, dict):
            group[draw(st.text(min_size=1, max_size=12))] = draw(scalars)
    for drop in draw(
        st.lists(
            st.sampled_from(["observer", "agent", "network", "user", "message", "wireguard"]), max_size=3
        )
    ):
        doc.pop(drop, None)
    return doc


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ecs_events())
def test_mapping_never_raises_and_always_meets_the_target(doc: dict[str, Any]) -> None:
    for schema in SCHEMAS:
        out = map_document(doc, schema)
        orjson.dumps(out)
    ocsf = map_document(doc, "ocsf")
    assert ocsf_problems(ocsf) == []
    assert ocsf_official_problems(ocsf) == []
    assert cim_problems(map_document(doc, "cim")) == []


def _fingerprint(secret: bytes, key: str) -> str:
    return hmac.new(secret, base64.b64decode(key), hashlib.sha256).hexdigest()[:16]


keys = st.binary(min_size=32, max_size=32).map(lambda b: base64.b64encode(b).decode())
WITH_KEYS = [c for c in CASES if "private_key" in orjson.dumps(golden("ecs", *c)).decode()]


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(WITH_KEYS),
    st.lists(keys, min_size=3, max_size=3, unique=True),
    st.binary(min_size=32, max_size=32),
)
def test_no_private_or_preshared_key_in_any_mapping(
    case: tuple[str, str], three: list[str], collector_secret: bytes
) -> None:
    """The wg_state idea: real documents whose key fields are what sources emit — presence and a
    keyed fingerprint of the secret — must not give the secret away in any schema."""
    private, psk, public = three
    doc = copy.deepcopy(golden("ecs", *case))
    wg = doc["wireguard"]
    wg.setdefault("interface", {})["private_key"] = {
        "present": True,
        "fingerprint": _fingerprint(collector_secret, private),
    }
    wg["interface"]["public_key"] = public
    peer = wg.setdefault("peer", {})
    peer["preshared_key"] = {"present": True, "fingerprint": _fingerprint(collector_secret, psk)}
    for schema in SCHEMAS:
        blob = orjson.dumps(map_document(doc, schema)).decode()
        for secret in (private, psk, base64.b64decode(private).hex(), base64.b64decode(psk).hex()):
            assert secret not in blob


@given(st.sampled_from(WITH_KEYS), keys, keys)
@settings(max_examples=100, deadline=None)
def test_key_material_a_buggy_source_left_in_is_not_carried(
    case: tuple[str, str], private: str, psk: str
) -> None:
    """Defence in depth: a raw key where the fingerprint object belongs never reaches OCSF's
    ``unmapped`` (CIM copies no key field at all)."""
    doc = copy.deepcopy(golden("ecs", *case))
    doc["wireguard"].setdefault("interface", {})["private_key"] = private
    doc["wireguard"].setdefault("peer", {})["preshared_key"] = {"present": True, "value": psk}
    for schema in ("cim", "ocsf"):
        blob = orjson.dumps(map_document(doc, schema)).decode()
        assert private not in blob and psk not in blob


@given(st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(2100, 1, 1)))
def test_ocsf_time_is_the_epoch_milliseconds_of_the_ecs_date(when: datetime) -> None:
    from wgsiem.schema.ocsf import _ms

    when = when.replace(microsecond=when.microsecond // 1000 * 1000, tzinfo=UTC)
    iso = when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"
    expected = int(when.timestamp()) * 1000 + when.microsecond // 1000
    assert _ms(iso) == expected
    assert _ms(iso) == expected  # the second time from the memo
