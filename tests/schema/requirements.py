"""What a document of each target class must carry, written down from the schemas themselves.

OCSF (``ocsf/ocsf-schema``; ``shared/reference/formats/07_schemas.md`` §7c for the 1.x snapshot
``a5cfc68e``, and the class files it cites):

* ``events/base_event.json``: required ``activity_id``, ``category_uid``, ``class_uid``, ``metadata``,
  ``severity_id``, ``time``, ``type_uid``; ``dictionary.json``: ``type_uid = class_uid * 100 +
  activity_id``; ``severity_id`` 0–6 or 99; ``status_id`` 0, 1 Success, 2 Failure, 99.
* ``objects/metadata.json``: required ``product`` and ``version``; ``objects/product.json``: a name.
* ``events/network/tunnel_activity.json`` (4014, category 4): ``activity_id`` 1 Open, 2 Close, 3 Renew
  (+0, 99); constraint ``at_least_one`` of ``connection_info``, ``session``, ``src_endpoint``,
  ``traffic``, ``tunnel_interface``, ``tunnel_type_id``.
* ``events/network/network_activity.json`` (4001, category 4): ``activity_id`` 1–7 (+0, 99);
  ``events/network/network.json`` constraint ``at_least_one`` of ``dst_endpoint``, ``src_endpoint``.
* ``objects/network_connection_info.json``: ``direction_id`` required.
* ``objects/network_interface.json``: ``type_id`` 4 = Tunnel.
* ``events/iam/entity_management.json`` (3004, category 3): ``activity_id`` 1 Create, 2 Read,
  3 Update, 4 Delete (+0, 99); ``entity`` required (``objects/managed_entity.json``).
* ``events/iam/authentication.json`` (3002, category 3): ``activity_id`` 1 Logon, 2 Logoff, 3–5
  Kerberos (+0, 99); ``user`` required; ``at_least_one`` of ``service``, ``dst_endpoint``.
* ``events/findings/finding.json`` / ``detection_finding.json`` (2004, category 2): ``activity_id``
  1 Create, 2 Update, 3 Close (+0, 99); ``finding_info`` required, whose ``uid`` is required
  (``objects/finding_info.json``); ``analytic.type_id`` required when ``analytic`` is given.
* ``events/base_event.json`` as a class (0, category 0 Uncategorized): ``activity_id`` 0 or 99.

Splunk CIM (``Splunk_SA_CIM`` 6.4.0 ``Network_Sessions.json``/``Network_Traffic.json``, 07_schemas.md
§7b; help.splunk.com CIM 6.x "Change", "Alerts", "Authentication"): the tags that select a data model,
the ``action`` values each allows, and the fields its datasets use (the calculated ones the add-on
fills with ``unknown`` are required here so a document works without the add-on).
"""

from __future__ import annotations

from typing import Any

BASE_REQUIRED = ("activity_id", "category_uid", "class_uid", "metadata", "severity_id", "time", "type_uid")
SEVERITY_IDS = frozenset({0, 1, 2, 3, 4, 5, 6, 99})
STATUS_IDS = frozenset({0, 1, 2, 99})

OCSF_CLASSES: dict[int, dict[str, Any]] = {
    4014: {
        "category_uid": 4,
        "activities": {0, 1, 2, 3, 99},
        "required": (),
        "at_least_one": (
            "connection_info",
            "session",
            "src_endpoint",
            "traffic",
            "tunnel_interface",
            "tunnel_type_id",
        ),
    },
    4001: {
        "category_uid": 4,
        "activities": {0, 1, 2, 3, 4, 5, 6, 7, 99},
        "required": (),
        "at_least_one": ("dst_endpoint", "src_endpoint"),
    },
    3004: {"category_uid": 3, "activities": {0, 1, 2, 3, 4, 99}, "required": ("entity",), "at_least_one": ()},
    3002: {
        "category_uid": 3,
        "activities": {0, 1, 2, 3, 4, 5, 99},
        "required": ("user",),
        "at_least_one": ("service", "dst_endpoint"),
    },
    2004: {
        "category_uid": 2,
        "activities": {0, 1, 2, 3, 99},
        "required": ("finding_info",),
        "at_least_one": (),
    },
    0: {"category_uid": 0, "activities": {0, 99}, "required": (), "at_least_one": ()},
}

CIM_MODELS: dict[str, dict[str, Any]] = {
    "Network_Sessions": {
        "tags": {"network", "session"},
        "actions": {"started", "blocked", "ended"},
        "required": ("action", "src_ip", "dest_ip", "user", "dvc", "vendor_product"),
    },
    "Network_Traffic": {
        "tags": {"network", "communicate"},
        "actions": {"allowed", "blocked", "teardown"},
        "required": (
            "action",
            "src",
            "src_ip",
            "src_port",
            "dest",
            "dest_ip",
            "dest_port",
            "transport",
            "user",
            "dvc",
            "vendor_product",
        ),
    },
    "Change": {
        "tags": {"change"},
        "actions": {
            "acl_modified",
            "cleared",
            "created",
            "deleted",
            "modified",
            "read",
            "stopped",
            "updated",
        },
        "required": (
            "action",
            "change_type",
            "dest",
            "dvc",
            "object",
            "object_category",
            "object_id",
            "result",
            "src",
            "user",
            "vendor_product",
        ),
    },
    "Alerts": {
        "tags": {"alert"},
        "actions": None,  # the Alerts model has no action field
        "required": (
            "app",
            "description",
            "dest",
            "id",
            "severity",
            "signature",
            "src",
            "type",
            "user",
            "vendor_product",
        ),
        "severities": {"critical", "high", "medium", "low", "informational", "unknown"},
        "types": {"alarm", "alert", "event", "task", "warning"},
    },
    "Authentication": {
        "tags": {"authentication"},
        "actions": {"success", "failure", "pending", "error"},
        "required": ("action", "app", "dest", "src", "user", "vendor_product"),
    },
}
