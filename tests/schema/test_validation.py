"""Every mapped golden carries what its OCSF class / CIM data model requires (tables in
``tests/schema/requirements.py``, cited from the schemas), with allowed values only."""

from __future__ import annotations

from typing import Any

import pytest

from tests.schema.goldens import examples, golden, ids
from tests.schema.requirements import (
    BASE_REQUIRED,
    CIM_MODELS,
    OCSF_CLASSES,
    SEVERITY_IDS,
    STATUS_IDS,
)
from wgsiem.schema import map_document
from wgsiem.schema.cim import ACTIONS_BY_MODEL, TAGS_BY_MODEL

CASES = examples()


def ocsf_problems(doc: dict[str, Any]) -> list[str]:
    """Everything wrong with one OCSF event, all at once."""
    bad = [f"missing {a}" for a in BASE_REQUIRED if a not in doc]
    if bad:
        return bad
    cls = OCSF_CLASSES.get(doc["class_uid"])
    if cls is None:
        return [f"class {doc['class_uid']} is not one this mapping may use"]
    if doc["category_uid"] != cls["category_uid"]:
        bad.append(f"category_uid {doc['category_uid']} for class {doc['class_uid']}")
    if doc["class_uid"] // 1000 != doc["category_uid"]:
        bad.append("class_uid is not category_uid*1000 + class")
    if doc["activity_id"] not in cls["activities"]:
        bad.append(f"activity_id {doc['activity_id']}")
    if doc["type_uid"] != doc["class_uid"] * 100 + doc["activity_id"]:
        bad.append("type_uid != class_uid*100 + activity_id")
    if doc["activity_id"] == 99 and not doc.get("activity_name"):
        bad.append("activity 99 (Other) without activity_name")
    if doc["severity_id"] not in SEVERITY_IDS:
        bad.append(f"severity_id {doc['severity_id']}")
    if "status_id" in doc and doc["class_uid"] != 2004 and doc["status_id"] not in STATUS_IDS:
        bad.append(f"status_id {doc['status_id']}")
    if not isinstance(doc["time"], int) or doc["time"] < 0:
        bad.append("time is not epoch milliseconds")
    meta = doc["metadata"]
    if not meta.get("version") or not meta["version"].startswith("1."):
        bad.append("metadata.version is not OCSF 1.x")
    if not (meta.get("product") or {}).get("name"):
        bad.append("metadata.product without a name")
    bad += [f"missing {a}" for a in cls["required"] if not doc.get(a)]
    if cls["at_least_one"] and not any(doc.get(a) for a in cls["at_least_one"]):
        bad.append(f"none of {cls['at_least_one']}")
    if "connection_info" in doc and "direction_id" not in doc["connection_info"]:
        bad.append("connection_info without direction_id")
    if doc["class_uid"] == 4014 and doc.get("tunnel_interface", {"type_id": 4}).get("type_id") != 4:
        bad.append("tunnel_interface is not a Tunnel interface")
    if doc["class_uid"] == 2004:
        if not doc["finding_info"].get("uid"):
            bad.append("finding_info.uid")
        if "analytic" in doc["finding_info"] and "type_id" not in doc["finding_info"]["analytic"]:
            bad.append("analytic.type_id")
    if doc["class_uid"] == 3004 and not (doc["entity"].get("name") or doc["entity"].get("uid")):
        bad.append("entity without name or uid")
    if doc["class_uid"] == 3002 and not doc["user"].get("name"):
        bad.append("user without name")
    if "device" in doc and "type_id" not in doc["device"]:
        bad.append("device without type_id")
    return bad


def cim_problems(doc: dict[str, Any]) -> list[str]:
    model = doc.get("cim_data_model")
    if model is None:
        return [] if doc["tag"] == ["wireguard"] else ["no data model but data-model tags"]
    spec = CIM_MODELS[model]
    bad = []
    if not spec["tags"] <= set(doc["tag"]):
        bad.append(f"tags {doc['tag']} do not select {model}")
    if set(doc["tag"]) - set(TAGS_BY_MODEL[model]) - {"start", "end"}:
        bad.append(f"stray tags {doc['tag']}")
    if spec["actions"] is not None and doc.get("action") not in spec["actions"]:
        bad.append(f"action {doc.get('action')!r} not allowed in {model}")
    bad += [f"missing {f}" for f in spec["required"] if doc.get(f) in (None, "", [])]
    if model == "Alerts":
        if doc["severity"] not in spec["severities"]:
            bad.append(f"severity {doc['severity']}")
        if doc["type"] not in spec["types"]:
            bad.append(f"type {doc['type']}")
    if model == "Network_Sessions" and "start" in doc["tag"] and doc["action"] != "started":
        bad.append("Session_Start tag on a non-start")
    if model == "Network_Sessions" and "end" in doc["tag"] and doc["action"] != "ended":
        bad.append("Session_End tag on a non-end")
    if model == "Network_Traffic" and doc.get("direction") not in (None, "inbound", "outbound"):
        bad.append(f"direction {doc['direction']}")
    for k, v in doc.items():
        if isinstance(v, dict):
            bad.append(f"{k} is nested: CIM fields are flat")
    return bad


@pytest.mark.parametrize(("source", "action"), CASES, ids=ids(CASES))
def test_ocsf_golden_carries_its_class_requirements(source: str, action: str) -> None:
    assert ocsf_problems(golden("ocsf", source, action)) == []


@pytest.mark.parametrize(("source", "action"), CASES, ids=ids(CASES))
def test_cim_golden_carries_its_data_model_requirements(source: str, action: str) -> None:
    assert cim_problems(golden("cim", source, action)) == []


def test_the_mapping_tables_agree_with_the_requirement_tables() -> None:
    for model, actions in ACTIONS_BY_MODEL.items():
        assert actions <= (CIM_MODELS[model]["actions"] or set()), model


def test_the_requested_classes_and_models_are_all_reached() -> None:
    """Tunnel Open/Close/Renew, Network Activity, the config-change class; Network_Sessions (VPN),
    Network_Traffic, Change, Alerts."""
    ocsf = {(golden("ocsf", s, a)["class_uid"], golden("ocsf", s, a)["activity_id"]) for s, a in CASES}
    assert {(4014, 1), (4014, 2), (4014, 3), (4001, 6), (3004, 1), (3004, 3), (3004, 4), (2004, 1)} <= ocsf
    cim = {golden("cim", s, a).get("cim_data_model") for s, a in CASES}
    assert {"Network_Sessions", "Network_Traffic", "Change", "Alerts", "Authentication"} <= cim
    vpn = [
        golden("cim", s, a)
        for s, a in CASES
        if golden("cim", s, a).get("cim_data_model") == "Network_Sessions"
    ]
    assert all("vpn" in d["tag"] for d in vpn)


def test_session_lifecycle_of_wg_state() -> None:
    """The side-by-side table of docs/schema.md for the wg_state session family, checked."""
    want = {
        "session-started": ("started", ["network", "session", "vpn", "start"], 401401),
        "handshake": ("started", ["network", "session", "vpn"], 401403),
        "session-ended": ("ended", ["network", "session", "vpn", "end"], 401402),
        "endpoint-changed": ("started", ["network", "session", "vpn"], 401499),
    }
    for action, (cim_action, tags, type_uid) in want.items():
        doc = golden("ecs", "wg_state", action)
        cim, ocsf = map_document(doc, "cim"), map_document(doc, "ocsf")
        assert (cim["action"], cim["tag"], ocsf["type_uid"]) == (cim_action, tags, type_uid), action
    ended = map_document(golden("ecs", "wg_state", "session-ended"), "cim")
    assert (ended["src_ip"], ended["dest_ip"], ended["duration"]) == (
        "192.0.2.11",
        "10.222.0.11",
        0.208492517,
    )
    assert (ended["bytes_out"], ended["bytes_in"], ended["bytes"]) == (212, 188, 400)


def test_validators_catch_what_they_should() -> None:
    ocsf = map_document(golden("ecs", "wg_state", "session-started"), "ocsf")
    assert ocsf_problems({**ocsf, "type_uid": 1}) == ["type_uid != class_uid*100 + activity_id"]
    assert ocsf_problems({k: v for k, v in ocsf.items() if k != "time"}) == ["missing time"]
    cim = map_document(golden("ecs", "wg_state", "transfer"), "cim")
    assert cim_problems({**cim, "action": "accepted"}) == ["action 'accepted' not allowed in Network_Traffic"]
