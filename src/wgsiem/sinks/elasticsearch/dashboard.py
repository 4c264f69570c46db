"""The Kibana saved objects of the content pack (``kibana/wgsiem.ndjson``, Saved Objects import API).

Aggregation-based visualizations (``visState``) rather than Lens: their saved-object shape is small,
stable since Kibana 7 and migrated forward by Kibana on import, so the file written here is one
that every Kibana 8/9 accepts. Every object references the one data view, ``logs-wireguard.*-*``.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["DATA_VIEW_ID", "saved_objects"]

DATA_VIEW_ID = "wgsiem-logs-wireguard"
DASHBOARD_ID = "wgsiem-overview"
_INDEX_REF = "kibanaSavedObjectMeta.searchSourceJSON.index"


def _search_source(query: str = "") -> dict[str, str]:
    source = {"query": {"query": query, "language": "kuery"}, "filter": [], "indexRefName": _INDEX_REF}
    return {"searchSourceJSON": json.dumps(source, sort_keys=True)}


def _vis(
    vis_id: str, title: str, vis_type: str, aggs: list[dict[str, Any]], query: str = ""
) -> dict[str, Any]:
    params: dict[str, Any] = {"type": vis_type, "addTooltip": True, "addLegend": True}
    if vis_type == "table":
        params = {"perPage": 10, "showPartialRows": False, "showMetricsAtAllLevels": False}
    state = {"title": title, "type": vis_type, "aggs": aggs, "params": params}
    return {
        "id": vis_id,
        "type": "visualization",
        "attributes": {
            "title": title,
            "description": "",
            "visState": json.dumps(state, sort_keys=True),
            "uiStateJSON": "{}",
            "version": 1,
            "kibanaSavedObjectMeta": _search_source(query),
        },
        "references": [{"id": DATA_VIEW_ID, "name": _INDEX_REF, "type": "index-pattern"}],
    }


def _count() -> dict[str, Any]:
    return {"id": "1", "enabled": True, "type": "count", "schema": "metric", "params": {}}


def _terms(agg_id: str, field: str, schema: str, size: int = 10) -> dict[str, Any]:
    return {
        "id": agg_id,
        "enabled": True,
        "type": "terms",
        "schema": schema,
        "params": {"field": field, "size": size, "order": "desc", "orderBy": "1"},
    }


def _histogram(agg_id: str) -> dict[str, Any]:
    return {
        "id": agg_id,
        "enabled": True,
        "type": "date_histogram",
        "schema": "segment",
        "params": {"field": "@timestamp", "interval": "auto", "min_doc_count": 1, "extended_bounds": {}},
    }


def saved_objects() -> list[dict[str, Any]]:
    """Data view, visualizations, a saved search of alerts, and the dashboard — in import order."""
    data_view = {
        "id": DATA_VIEW_ID,
        "type": "index-pattern",
        "attributes": {
            "title": "logs-wireguard.*-*",
            "timeFieldName": "@timestamp",
            "name": "wgsiem (WireGuard)",
        },
        "references": [],
    }
    visualizations = [
        _vis(
            "wgsiem-events-over-time",
            "wgsiem: events over time by dataset",
            "histogram",
            [_count(), _histogram("2"), _terms("3", "event.dataset", "group", 8)],
        ),
        _vis(
            "wgsiem-sessions",
            "wgsiem: sessions started per peer",
            "table",
            [_count(), _terms("2", "wireguard.peer.public_key", "bucket", 20)],
            'event.action : "session-started"',
        ),
        _vis(
            "wgsiem-endpoint-countries",
            "wgsiem: peer endpoints by country",
            "pie",
            [_count(), _terms("2", "source.geo.country_iso_code", "segment", 15)],
            'event.action : ("session-started" or "endpoint-changed")',
        ),
        _vis(
            "wgsiem-alerts-by-rule",
            "wgsiem: alerts by rule",
            "table",
            [_count(), _terms("2", "rule.name", "bucket", 20), _terms("3", "event.severity", "bucket", 5)],
            'event.kind : "alert"',
        ),
        _vis(
            "wgsiem-handshake-failures",
            "wgsiem: handshake failures and invalid packets",
            "histogram",
            [_count(), _histogram("2"), _terms("3", "event.action", "group", 10)],
            'event.action : (handshake-* or invalid-*) and not event.outcome : "success"',
        ),
    ]
    alerts_search = {
        "id": "wgsiem-alerts",
        "type": "search",
        "attributes": {
            "title": "wgsiem: alerts",
            "description": "",
            "columns": ["rule.name", "event.severity", "wireguard.peer.public_key", "source.ip", "message"],
            "sort": [["@timestamp", "desc"]],
            "kibanaSavedObjectMeta": _search_source('event.kind : "alert"'),
        },
        "references": [{"id": DATA_VIEW_ID, "name": _INDEX_REF, "type": "index-pattern"}],
    }
    panels = []
    references = []
    layout = [
        (0, 0, 48, 12),
        (0, 12, 24, 15),
        (24, 12, 24, 15),
        (0, 27, 24, 15),
        (24, 27, 24, 15),
        (0, 42, 48, 15),
    ]
    for i, (obj, (x, y, w, h)) in enumerate(zip([*visualizations, alerts_search], layout, strict=True)):
        panels.append(
            {
                "panelIndex": str(i + 1),
                "gridData": {"x": x, "y": y, "w": w, "h": h, "i": str(i + 1)},
                "embeddableConfig": {},
                "panelRefName": f"panel_{i}",
            }
        )
        references.append({"id": obj["id"], "name": f"panel_{i}", "type": obj["type"]})
    dashboard = {
        "id": DASHBOARD_ID,
        "type": "dashboard",
        "attributes": {
            "title": "wgsiem: WireGuard overview",
            "description": "Tunnel sessions, peers, endpoints, handshake failures and wgsiem alerts.",
            "panelsJSON": json.dumps(panels, sort_keys=True),
            "optionsJSON": json.dumps({"useMargins": True, "hidePanelTitles": False}),
            "timeRestore": False,
            "kibanaSavedObjectMeta": {
                "searchSourceJSON": json.dumps({"query": {"query": "", "language": "kuery"}})
            },
        },
        "references": references,
    }
    return [data_view, *visualizations, alerts_search, dashboard]
