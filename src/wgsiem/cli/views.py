"""Read commands: ask the running ``wgsiem run`` over its local API, else open the store read-only."""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from rich.console import Console
from rich.table import Table

from wgsiem.api.client import ApiUnavailable, api_get
from wgsiem.config.model import Config
from wgsiem.errors import StoreError

__all__ = ["events", "peers", "peers_table", "sessions", "status"]

# a pipe or file gets wide lines rather than 80-column wrapping
console = Console(width=None if sys.stdout.isatty() else 200)


def _store_path(cfg: Config) -> Path:
    from wgsiem.sinks.duckdb_store.config import DuckdbStoreConfig

    for s in cfg.sinks.values():
        if isinstance(s, DuckdbStoreConfig):
            return Path(s.path)
    return Path(cfg.state_dir) / "wgsiem.duckdb"


def _query(cfg: Config, name: str, params: dict[str, Any]) -> tuple[Any, str]:
    """(answer, where it came from): the running service, else the store opened read-only."""
    try:
        return api_get(cfg.api_socket, name, params), "live"
    except ApiUnavailable:
        pass
    path = _store_path(cfg)
    if not path.exists():
        raise StoreError(
            f"no running wgsiem and no store at {path}",
            fix="start `wgsiem run` (or pass --state-dir / --config pointing at its state)",
        )
    from wgsiem.service import query_store

    return query_store(path, name, params), "store"


def _print_json(obj: Any) -> None:
    print(orjson.dumps(obj, option=orjson.OPT_INDENT_2, default=str).decode())


def human_bytes(n: int | None) -> str:
    if n is None:
        return "-"
    v = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if v < 1024 or unit == "TiB":
            return f"{int(v)} {unit}" if unit == "B" else f"{v:.2f} {unit}"
        v /= 1024
    return str(n)


def _ago(ts: Any) -> str:
    if ts in (None, ""):
        return "-"
    if isinstance(ts, str):
        ts = datetime.fromisoformat(ts.replace("Z", "+00:00"))
    secs = time.time() - ts.timestamp() if isinstance(ts, datetime) else time.time() - float(ts)
    if secs < 0:
        return "now"
    for unit, n in (("d", 86400), ("h", 3600), ("m", 60)):
        if secs >= n:
            return f"{int(secs // n)}{unit} ago"
    return f"{int(secs)}s ago"


def _short(key: str | None) -> str:
    return f"{key[:8]}…{key[-4:]}" if key and len(key) > 14 else (key or "-")


def status(cfg: Config, as_json: bool) -> None:
    data, origin = _query(cfg, "status", {})
    if as_json:
        _print_json(data)
        return
    console.print(f"[bold]wgsiem[/] ({'running' if origin == 'live' else 'not running — from the store'})")
    for name, src in data.get("sources", {}).items():
        lp = src.get("last_poll", {})
        console.print(
            f"source [cyan]{name}[/]: {src.get('peers', 0)} peers, "
            f"{src.get('open_sessions', 0)} open sessions; "
            f"last poll {src.get('last_poll_at') or '-'} (read {lp.get('read_secs', 0)}s, "
            f"diff {lp.get('diff_secs', 0)}s, {lp.get('changes', 0)} changes)"
        )
    t = Table("component", "kind", "type", "received", "sent", "dropped", "errors", title="components")
    for c in data.get("components", []):
        dropped = ", ".join(f"{k}={v}" for k, v in c.get("dropped", {}).items()) or "0"
        errors = ", ".join(f"{k}={v}" for k, v in c.get("errors", {}).items()) or "0"
        t.add_row(c["id"], c["kind"], c["type"], str(c["received"]), str(c["sent"]), dropped, errors)
    console.print(t)
    _print_sinks(data.get("sinks", {}))
    if "store" in data:
        console.print("store: " + ", ".join(f"{k}={v}" for k, v in data["store"].items()))


def _print_sinks(sinks: dict[str, Any]) -> None:
    """Network sinks' delivery: outbox depth, lag, retries, parked, last error (``"sinks"`` key)."""
    rows = {k: v for k, v in sinks.items() if isinstance(v, dict) and isinstance(v.get("outbox"), dict)}
    if not rows:
        return
    t = Table(
        "sink",
        "type",
        "state",
        "queued",
        "queued bytes",
        "lag",
        "delivered",
        "retries",
        "parked",
        "overflow dropped",
        "last error",
        title="delivery",
    )
    for sid, st in rows.items():
        ob = st["outbox"]
        lag = ob.get("oldest_undelivered_age_secs") or 0
        state = str(ob.get("state", "-"))
        if state == "retrying":
            state = f"[red]retrying[/] {ob.get('failing_for_secs') or 0:.0f}s"
        elif state == "full":
            state = "[yellow]full[/]"
        t.add_row(
            sid,
            str(st.get("type", "-")),
            state,
            str(ob.get("queued_events", 0)),
            human_bytes(ob.get("queued_bytes")),
            f"{lag:.1f}s",
            str(ob.get("delivered", 0)),
            str(ob.get("retries", 0)),
            str(ob.get("parked", 0)),
            str(ob.get("overflow_dropped", 0)),
            (ob.get("last_error") or "-")[:80],
        )
    console.print(t)
    for sid, st in rows.items():
        rec = st["outbox"].get("recovery")
        if rec:
            console.print(
                f"sink [cyan]{sid}[/]: last outage {rec['outage_secs']:.0f}s, backlog "
                f"{int(rec['backlog_events'])} drained in {rec['drain_secs']:.1f}s "
                f"({rec['events_per_sec']:.0f} events/s)"
            )
        for d in st["outbox"].get("damage", [])[-3:]:
            console.print(
                f"sink [cyan]{sid}[/]: [yellow]outbox damage[/] {d['reason']} in {d['file']}@{d['offset']}"
            )


def peers_table(rows: list[dict[str, Any]], title: str = "peers") -> Table:
    t = Table(
        "interface",
        "peer",
        "connected",
        "endpoint",
        "allowed ips",
        "since",
        "handshake",
        "received",
        "sent",
        title=title,
    )
    for p in rows:
        t.add_row(
            p.get("interface"),
            _short(p.get("public_key") or p.get("peer_key")),
            "[green]yes[/]" if p.get("connected") or p.get("session_open") else "no",
            p.get("endpoint") or "-",
            ",".join(p.get("allowed_ips") or []) or "-",
            _ago(p.get("session_start")) if p.get("session_start") else "-",
            _ago(p.get("latest_handshake")),
            human_bytes(p.get("rx_bytes")),
            human_bytes(p.get("tx_bytes")),
        )
    return t


def peers(cfg: Config, as_json: bool, interface: str | None) -> None:
    data, origin = _query(cfg, "peers", {"interface": interface})
    if as_json:
        _print_json(data)
        return
    console.print(peers_table(data, f"peers ({'live' if origin == 'live' else 'from the store'})"))


def sessions(cfg: Config, as_json: bool, since: float, open_only: bool, peer: str | None) -> None:
    data, _ = _query(cfg, "sessions", {"since": since, "open": int(open_only), "peer": peer})
    if as_json:
        _print_json(data)
        return
    t = Table("interface", "peer", "start", "end", "duration", "received", "sent", "endpoints", "end reason")
    for s in data:
        dur = s.get("duration_secs")
        t.add_row(
            s.get("interface"),
            _short(s.get("peer_key")),
            str(s.get("start") or "-")[:19],
            str(s.get("end") or "open")[:19],
            f"{dur:.0f}s" if isinstance(dur, int | float) else "-",
            human_bytes(s.get("rx_bytes")),
            human_bytes(s.get("tx_bytes")),
            ", ".join(s.get("endpoints") or []),
            s.get("end_reason") or "",
        )
    console.print(t)


def _line(doc: dict[str, Any]) -> str:
    ev = doc.get("event", {})
    wg = doc.get("wireguard", {})
    peer = wg.get("peer", {}).get("public_key")
    src = doc.get("source", {})
    extra = ""
    ch = wg.get("change", {})
    if "endpoint" in ch:
        extra = f" {ch['endpoint']['old']} → {ch['endpoint']['new']}"
    elif "transfer" in wg:
        extra = f" rx={wg['transfer']['rx_bytes']} tx={wg['transfer']['tx_bytes']}"
    elif ev.get("action") == "session-ended":
        s = wg.get("session", {})
        reason = s.get("end_reason")
        extra = f" {s.get('duration_secs')}s rx={s.get('rx_bytes')} tx={s.get('tx_bytes')} ({reason})"
    where = f" from {src['ip']}" if src.get("ip") else ""
    iface = wg.get("interface", {}).get("name", "")
    return f"{doc.get('@timestamp')} {iface} {ev.get('action')} {_short(peer) if peer else ''}{where}{extra}"


def events(cfg: Config, since: float | None, action: str | None, follow: bool, as_json: bool) -> None:
    params: dict[str, Any] = {"action": action, "limit": 1000}
    if since is not None:
        params["since"] = since
    else:
        params["tail"] = 50
    last_seq: int | None = None
    while True:
        rows, _ = _query(cfg, "events", params)
        for row in rows:
            doc = row["doc"]
            print(orjson.dumps(doc).decode() if as_json else _line(doc), flush=True)
            last_seq = row["seq"]
        if not follow:
            return
        params = {"action": action, "after": last_seq if last_seq is not None else 0, "limit": 1000}
        if not rows:
            time.sleep(1.0)


def fmt_utc(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat()
