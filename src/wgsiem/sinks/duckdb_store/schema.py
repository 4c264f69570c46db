"""The store's tables and how one ECS document maps onto them — SQL only, no I/O.

Design, driven by the ingest target (≥ 50,000 events/s on one core) and by what DuckDB makes cheap:

* **One JSON parse per document, in C++.** Python serializes each document once (orjson); the batch
  reaches DuckDB as an Arrow string column, scanned zero-copy, and :data:`INSERT_EVENTS` extracts every
  field with one ``json_extract_string(doc, [paths])``. Measured against the previous NDJSON batch file
  read as CSV into a temp table: the file write, the CSV scan and the temp-table copy (~2.5 µs/event)
  are gone. Extracting the fields in Python instead (dict lookups into Arrow columns, ~9 µs/event) or
  with ``pyarrow.json`` (~8 µs/event) costs more than DuckDB's extraction (~2 µs/event).
  A missing field or a field of the wrong type becomes NULL (``try_cast``), never an exception, so one
  odd document cannot fail its batch.
* **The document is not in DuckDB.** ``events`` is an index: the query columns, the fold columns and
  where the document is in the store's segment files (``doc_seg``, ``doc_frame``, ``doc_frame_len``,
  ``doc_off``, ``doc_len``; see ``segments``). Storing the 1.35 KB document as a zstd VARCHAR made
  the commit the largest cost of ingest (~8 µs/event at load); the index row costs a fraction.
* **No JSON list is parsed per event.** ``allowed_ips`` is kept as its JSON text and turned into a
  list only after the fold has picked each peer's latest (``_json_list``); the per-event parse and the
  list column cost ~5 µs/event (measured, INSERT 15 → 10 µs). The tunnel address falls back to the
  peer's single host route the same way, after aggregation.
* **Few statements per batch.** DuckDB re-plans every statement, even a prepared one, and planning the
  extraction costs milliseconds: so ``events`` also carries the few fields ``sessions`` and ``peers``
  are derived from, and there is no staging table.
* **Derived tables are folded in, not updated per batch.** Updates are DuckDB's most expensive operation
  (and updating a LIST column rewrites the row). :data:`MERGE_PEERS` and :data:`MERGE_SESSIONS` fold
  every event with ``seq`` above the ``derived_seq`` watermark into ``peers``/``sessions`` in one
  transaction that also moves the watermark: one update per peer or session for many events. A replayed
  or retried batch inserts no event (``event_id`` is the primary key), so it derives nothing twice, and
  a crash between ingest and fold loses nothing. A session's endpoint history is aggregated per
  (session, endpoint) first and only then listed in first-seen order: listing every event's endpoint
  (each carries one) and de-duplicating the list afterwards cost twice as much (~3.3 → ~1.8 µs/event).
* **``event_id`` stays the primary key.** It costs ~1 µs/event (insert + commit). An anti-join of each
  batch against all stored ids cannot prune by zone map (ids are hashes) and grows with the table; one
  bounded by the batch's ``@timestamp`` range measured ~free on a small table, but misses a re-sent
  document whose timestamp was missing (stored with the ingest time) — see docs/performance.md.
"""

from __future__ import annotations

__all__ = [
    "DDL",
    "FIELDS",
    "INSERT_EVENTS",
    "MACROS",
    "MERGE_PEERS",
    "MERGE_SESSIONS",
    "SCHEMA_VERSION",
    "SESSION_ACTIONS",
    "events_ddl",
    "sql_ident",
    "sql_str",
]

SCHEMA_VERSION = 3
"""3: documents in segment files, ``events`` holds where (``doc_seg``, ``doc_frame``, …) instead of ``doc``
(``migrate`` moves a version-2 store's documents out); 2: ``events.doc`` zstd-compressed VARCHAR."""


def sql_str(text: str) -> str:
    """A SQL string literal (for the few places DuckDB takes no bound parameter)."""
    return "'" + text.replace("'", "''") + "'"


def sql_ident(name: str) -> str:
    """A quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def events_ddl(name: str) -> str:
    """``CREATE TABLE`` of the events index under ``name`` (the migration builds it beside the old one)."""
    return _EVENTS_DDL.replace("{name}", name)


_EVENTS_DDL = """
    CREATE TABLE IF NOT EXISTS {name} (
        seq BIGINT NOT NULL DEFAULT nextval('events_seq'),
        event_id VARCHAR PRIMARY KEY,
        ts TIMESTAMPTZ NOT NULL,
        action VARCHAR,
        dataset VARCHAR,
        kind VARCHAR,
        interface VARCHAR,
        peer_key VARCHAR,
        source_ip VARCHAR,
        doc_seg INTEGER NOT NULL,
        doc_frame BIGINT NOT NULL,
        doc_frame_len INTEGER NOT NULL,
        doc_off BIGINT NOT NULL,
        doc_len INTEGER NOT NULL,
        ts_defaulted BOOLEAN NOT NULL,
        session_id VARCHAR,
        session_start TIMESTAMPTZ,
        session_end TIMESTAMPTZ,
        session_duration_secs DOUBLE,
        session_rx_bytes BIGINT,
        session_tx_bytes BIGINT,
        session_end_reason VARCHAR,
        session_endpoints VARCHAR[],
        transfer_rx_bytes BIGINT,
        transfer_tx_bytes BIGINT,
        endpoint VARCHAR,
        latest_handshake TIMESTAMPTZ,
        peer_rx_bytes BIGINT,
        peer_tx_bytes BIGINT,
        allowed_ips VARCHAR,
        tunnel_ip VARCHAR
    )"""


DDL: tuple[str, ...] = (
    "CREATE SEQUENCE IF NOT EXISTS events_seq",
    """
    CREATE TABLE IF NOT EXISTS store_meta (
        key VARCHAR PRIMARY KEY,
        value VARCHAR NOT NULL
    )""",
    # seq: monotonically increasing cursor for `events --follow` and for the derive watermark
    # (rowids are not stable across deletes); doc_*: where the document's line is in the segments;
    # columns after ts_defaulted feed sessions/peers (see above).
    events_ddl("events"),
    """
    CREATE TABLE IF NOT EXISTS sessions (
        session_id VARCHAR PRIMARY KEY,
        interface VARCHAR,
        peer_key VARCHAR,
        "start" TIMESTAMPTZ,
        "end" TIMESTAMPTZ,
        duration_secs DOUBLE,
        rx_bytes BIGINT,
        tx_bytes BIGINT,
        endpoints VARCHAR[],
        end_reason VARCHAR,
        tunnel_ip VARCHAR,
        last_endpoint VARCHAR,
        last_seen TIMESTAMPTZ
    )""",
    """
    CREATE TABLE IF NOT EXISTS peers (
        interface VARCHAR NOT NULL,
        peer_key VARCHAR NOT NULL,
        first_seen TIMESTAMPTZ,
        last_seen TIMESTAMPTZ,
        endpoint VARCHAR,
        allowed_ips VARCHAR[],
        latest_handshake TIMESTAMPTZ,
        rx_bytes BIGINT,
        tx_bytes BIGINT,
        session_open BOOLEAN NOT NULL DEFAULT false,
        removed_at TIMESTAMPTZ,
        PRIMARY KEY (interface, peer_key)
    )""",
)

MACROS: tuple[str, ...] = (
    # Order-preserving de-duplication (endpoint history reads oldest first).
    """CREATE OR REPLACE TEMP MACRO wgs_dedup(l) AS
        list_filter(l, lambda x, i: list_position(l, x) = i)""",
)

# Every field the tables need, extracted with ONE parse per document: json_extract_string(doc, [paths]).
# Objects and arrays come back as their JSON text; absent fields as NULL.
FIELDS: dict[str, str] = {
    "event_id": "$.event.id",
    "ts": '$."@timestamp"',
    "action": "$.event.action",
    "dataset": "$.event.dataset",
    "kind": "$.event.kind",
    "wg_interface": "$.wireguard.interface.name",
    "observer_interface": "$.observer.ingress.interface.name",
    "peer_key": "$.wireguard.peer.public_key",
    "source_ip": "$.source.ip",
    "nat_ip": "$.source.nat.ip",
    "session_id": "$.wireguard.session.id",
    "session_start": "$.wireguard.session.start",
    "session_end": "$.wireguard.session.end",
    "session_duration_secs": "$.wireguard.session.duration_secs",
    "session_rx_bytes": "$.wireguard.session.rx_bytes",
    "session_tx_bytes": "$.wireguard.session.tx_bytes",
    "session_endpoints": "$.wireguard.session.endpoints",
    "session_end_reason": "$.wireguard.session.end_reason",
    "transfer_rx_bytes": "$.wireguard.transfer.rx_bytes",
    "transfer_tx_bytes": "$.wireguard.transfer.tx_bytes",
    "peer_endpoint": "$.wireguard.peer.endpoint",
    "new_endpoint": "$.wireguard.change.endpoint.new",
    "latest_handshake": "$.wireguard.peer.latest_handshake",
    "peer_rx_bytes": "$.wireguard.peer.rx_bytes",
    "peer_tx_bytes": "$.wireguard.peer.tx_bytes",
    "allowed_ips": "$.wireguard.peer.allowed_ips",
}


def _f(name: str) -> str:
    return f"f[{list(FIELDS).index(name) + 1}]"


def _ts(name: str) -> str:
    return f"try_cast({_f(name)} AS TIMESTAMPTZ)"


def _finite(col: str) -> str:
    # 'infinity' casts to a timestamp, but it is no event time.
    return f"CASE WHEN isfinite({col}) THEN {col} END"


def _list(name: str) -> str:
    # A JSON array of scalars as VARCHAR[]; anything else (absent, a string, an object) is NULL.
    return _json_list(_f(name))


def _json_list(x: str) -> str:
    return f"CASE WHEN starts_with({x}, '[') AND json_valid({x}) THEN json_extract_string({x}, '$[*]') END"


def _tunnel_ip(allowed: str) -> str:
    # The peer's one host route (a /32 or /128) is its tunnel address when no source.nat.ip says it.
    return f"""list_transform(list_filter({allowed}, lambda a: len({allowed}) = 1
                AND (ends_with(a, '/32') OR ends_with(a, '/128'))), lambda a: split_part(a, '/', 1))[1]"""


_PATHS = "[" + ", ".join(sql_str(p) for p in FIELDS.values()) + "]"

_EVENT_COLS = (
    "event_id, ts, action, dataset, kind, interface, peer_key, source_ip, "
    "doc_seg, doc_frame, doc_frame_len, doc_off, doc_len, "
    "ts_defaulted, "
    "session_id, session_start, session_end, session_duration_secs, session_rx_bytes, session_tx_bytes, "
    "session_end_reason, session_endpoints, transfer_rx_bytes, transfer_tx_bytes, endpoint, "
    "latest_handshake, peer_rx_bytes, peer_tx_bytes, allowed_ips, tunnel_ip"
)

INSERT_EVENTS = f"""
INSERT {{or_ignore}} INTO events ({_EVENT_COLS})
SELECT
    event_id,
    coalesce({_finite("ts0")}, now()) AS ts,
    action, dataset, kind, interface, peer_key, source_ip,
    $seg AS doc_seg, $base + f_off AS doc_frame, f_len AS doc_frame_len, off - f_start AS doc_off,
    strlen(doc) - 1 AS doc_len,
    {_finite("ts0")} IS NULL AS ts_defaulted,
    session_id,
    {_finite("session_start0")},
    {_finite("session_end0")},
    session_duration_secs, session_rx_bytes, session_tx_bytes, session_end_reason, session_endpoints,
    transfer_rx_bytes, transfer_tx_bytes, endpoint,
    {_finite("latest_handshake0")},
    peer_rx_bytes, peer_tx_bytes, allowed_ips, nat_ip AS tunnel_ip
FROM (
    SELECT
        doc, off, f_off, f_len, f_start,
        {_f("event_id")} AS event_id,
        {_ts("ts")} AS ts0,
        {_f("action")} AS action,
        {_f("dataset")} AS dataset,
        {_f("kind")} AS kind,
        coalesce({_f("wg_interface")}, {_f("observer_interface")}) AS interface,
        {_f("peer_key")} AS peer_key,
        {_f("source_ip")} AS source_ip,
        {_f("nat_ip")} AS nat_ip,
        {_f("session_id")} AS session_id,
        {_ts("session_start")} AS session_start0,
        {_ts("session_end")} AS session_end0,
        try_cast({_f("session_duration_secs")} AS DOUBLE) AS session_duration_secs,
        try_cast({_f("session_rx_bytes")} AS BIGINT) AS session_rx_bytes,
        try_cast({_f("session_tx_bytes")} AS BIGINT) AS session_tx_bytes,
        {_f("session_end_reason")} AS session_end_reason,
        {_list("session_endpoints")} AS session_endpoints,
        try_cast({_f("transfer_rx_bytes")} AS BIGINT) AS transfer_rx_bytes,
        try_cast({_f("transfer_tx_bytes")} AS BIGINT) AS transfer_tx_bytes,
        coalesce({_f("new_endpoint")}, {_f("peer_endpoint")}) AS endpoint,
        {_ts("latest_handshake")} AS latest_handshake0,
        try_cast({_f("peer_rx_bytes")} AS BIGINT) AS peer_rx_bytes,
        try_cast({_f("peer_tx_bytes")} AS BIGINT) AS peer_tx_bytes,
        CASE WHEN starts_with({_f("allowed_ips")}, '[') THEN {_f("allowed_ips")} END AS allowed_ips
    FROM (SELECT *, json_extract_string(doc, {_PATHS}) AS f FROM {{batch}})
)
"""
"""{or_ignore}: "" for the fast path (a duplicate raises ConstraintException and Store.ingest redoes the
batch without the stored ones), "OR IGNORE" for a caller that wants no exception; {batch}: the name the
Arrow batch is registered under: ``doc``, each document's NDJSON line *with* its newline (zero-copy
over the joined batch; JSON allows the trailing whitespace), ``off``, where the line starts in the
batch, and its zstd frame (``f_off``/``f_len`` in the compressed batch, ``f_start`` in the raw one, see
``segments.encode_frames``). ``$seg``/``$base``: the segment and offset the frames were appended at.
No ORDER BY: the batch is scanned in list order and DuckDB's ``preserve_insertion_order``
(on by default) keeps it, so ``seq`` follows arrival order without a sort (a test holds this).
``now()`` is the transaction's start: the ingest time, used when ``@timestamp`` is missing or
unparsable (``ts_defaulted`` records that)."""

# ---- derived tables: events with seq in ({lo}, {hi}] are folded in ---------------------------------
# "Last" means latest by @timestamp, arrival (seq) breaking ties — one poll stamps several events with
# the same time — so the result is the same however the events were split into batches and folds.
# (MERGE cannot be prepared, so the two integers are formatted in.)

_NEW_EVENTS = "FROM events WHERE seq > {lo} AND seq <= {hi}"

_ORDER = "(epoch_us(ts)::HUGEINT * 1099511627776 + seq)"
"""(ts, seq) as one HUGEINT (``seq`` < 2^40), the key of every "latest" in a fold: ``arg_max`` over a
STRUCT key takes DuckDB's generic path, over a number its fast one — folding cost ~3.7 → ~2.3 µs/event.
Same order as the pair: ``ts`` is always finite (INSERT_EVENTS coalesces it), ``seq`` below 2^40."""


def _newer(col: str) -> str:
    # Events older than what is stored (an old file replayed) must not overwrite newer state.
    return (
        f"{col} = CASE WHEN p.last_seen IS NULL OR b.last_seen >= p.last_seen "
        f"THEN coalesce(b.{col}, p.{col}) ELSE coalesce(p.{col}, b.{col}) END"
    )


# Updating a LIST column makes DuckDB rewrite the row (delete + insert), several times the cost of a
# scalar update: list columns are only SET by the clause whose condition says they changed.
_PEER_SCALARS = ",\n    ".join(
    [
        "first_seen = least(p.first_seen, b.first_seen)",
        "last_seen = greatest(p.last_seen, b.last_seen)",
        *(_newer(c) for c in ("endpoint", "latest_handshake", "rx_bytes", "tx_bytes", "session_open")),
        "removed_at = CASE WHEN b.presence_changed THEN b.removed_at ELSE p.removed_at END",
    ]
)

MERGE_PEERS = f"""
MERGE INTO peers AS p
USING (
    SELECT
        interface, peer_key,
        min(ts) AS first_seen,
        max(ts) AS last_seen,
        arg_max(endpoint, {_ORDER}) FILTER (WHERE endpoint IS NOT NULL) AS endpoint,
        {_json_list(f"arg_max(allowed_ips, {_ORDER}) FILTER (WHERE allowed_ips IS NOT NULL)")} AS allowed_ips,
        arg_max(latest_handshake, {_ORDER}) FILTER (WHERE latest_handshake IS NOT NULL) AS latest_handshake,
        arg_max(peer_rx_bytes, {_ORDER}) FILTER (WHERE peer_rx_bytes IS NOT NULL) AS rx_bytes,
        arg_max(peer_tx_bytes, {_ORDER}) FILTER (WHERE peer_tx_bytes IS NOT NULL) AS tx_bytes,
        arg_max(action = 'session-started', {_ORDER})
            FILTER (WHERE action IN ('session-started', 'session-ended', 'peer-removed')) AS session_open,
        arg_max_null(CASE WHEN action = 'peer-removed' THEN ts END, {_ORDER})
            FILTER (WHERE action IN ('peer-removed', 'peer-added')) AS removed_at,
        coalesce(bool_or(action IN ('peer-removed', 'peer-added')), false) AS presence_changed
    {_NEW_EVENTS} AND interface IS NOT NULL AND peer_key IS NOT NULL
    GROUP BY interface, peer_key
) AS b
ON p.interface = b.interface AND p.peer_key = b.peer_key
WHEN MATCHED AND b.allowed_ips IS NOT NULL AND b.allowed_ips IS DISTINCT FROM p.allowed_ips THEN UPDATE SET
    {_PEER_SCALARS},
    {_newer("allowed_ips")}
WHEN MATCHED THEN UPDATE SET
    {_PEER_SCALARS}
WHEN NOT MATCHED THEN INSERT VALUES (
    b.interface, b.peer_key, b.first_seen, b.last_seen, b.endpoint, b.allowed_ips, b.latest_handshake,
    b.rx_bytes, b.tx_bytes, coalesce(b.session_open, false), b.removed_at
)
"""

# Sessions: created by session-started, updated by transfer / endpoint-changed, completed by
# session-ended, whose totals are authoritative over the summed transfer deltas.
SESSION_ACTIONS = ("session-started", "session-ended", "transfer", "endpoint-changed")

_SESSION_SCALARS = ",\n    ".join(
    [
        "interface = coalesce(b.interface, s.interface)",
        "peer_key = coalesce(b.peer_key, s.peer_key)",
        '"start" = least(s."start", b."start")',
        '"end" = CASE WHEN b.ended THEN b."end" ELSE s."end" END',
        """duration_secs = CASE WHEN b.ended
        THEN coalesce(b.duration_secs, epoch(b."end") - epoch(least(s."start", b."start")))
        ELSE s.duration_secs END""",
        "rx_bytes = coalesce(b.final_rx, coalesce(s.rx_bytes, 0) + coalesce(b.delta_rx, 0))",
        "tx_bytes = coalesce(b.final_tx, coalesce(s.tx_bytes, 0) + coalesce(b.delta_tx, 0))",
        "end_reason = coalesce(b.end_reason, s.end_reason)",
        "tunnel_ip = coalesce(b.tunnel_ip, s.tunnel_ip)",
        "last_endpoint = coalesce(b.last_endpoint, s.last_endpoint)",
        "last_seen = greatest(s.last_seen, b.last_seen)",
    ]
)

_ENDED = "action = 'session-ended'"
_SESSION_EVENTS = f"""{_NEW_EVENTS} AND session_id IS NOT NULL
        AND action IN ({", ".join(sql_str(a) for a in SESSION_ACTIONS)})"""

MERGE_SESSIONS = f"""
MERGE INTO sessions AS s
USING (
SELECT
    a.* EXCLUDE (ended_endpoints),
    wgs_dedup(list_concat(coalesce(e.seen, []), coalesce(a.ended_endpoints, []))) AS endpoints
FROM (
    SELECT
        session_id,
        arg_max(interface, {_ORDER}) FILTER (WHERE interface IS NOT NULL) AS interface,
        arg_max(peer_key, {_ORDER}) FILTER (WHERE peer_key IS NOT NULL) AS peer_key,
        coalesce(min(session_start), min(ts) FILTER (WHERE action = 'session-started'), min(ts)) AS "start",
        max(ts) AS last_seen,
        bool_or({_ENDED}) AS ended,
        arg_max(coalesce(session_end, ts), {_ORDER}) FILTER (WHERE {_ENDED}) AS "end",
        arg_max(session_duration_secs, {_ORDER})
            FILTER (WHERE {_ENDED} AND session_duration_secs IS NOT NULL) AS duration_secs,
        arg_max(session_rx_bytes, {_ORDER})
            FILTER (WHERE {_ENDED} AND session_rx_bytes IS NOT NULL) AS final_rx,
        arg_max(session_tx_bytes, {_ORDER})
            FILTER (WHERE {_ENDED} AND session_tx_bytes IS NOT NULL) AS final_tx,
        sum(transfer_rx_bytes) FILTER (WHERE action = 'transfer') AS delta_rx,
        sum(transfer_tx_bytes) FILTER (WHERE action = 'transfer') AS delta_tx,
        arg_max(session_endpoints, {_ORDER})
            FILTER (WHERE {_ENDED} AND session_endpoints IS NOT NULL) AS ended_endpoints,
        arg_max(session_end_reason, {_ORDER}) FILTER (WHERE {_ENDED} AND session_end_reason IS NOT NULL)
            AS end_reason,
        coalesce(
            arg_max(tunnel_ip, {_ORDER}) FILTER (WHERE tunnel_ip IS NOT NULL),
            {_tunnel_ip(_json_list(f"arg_max(allowed_ips, {_ORDER}) FILTER (WHERE allowed_ips IS NOT NULL)"))}
        ) AS tunnel_ip,
        arg_max(endpoint, {_ORDER}) FILTER (WHERE endpoint IS NOT NULL) AS last_endpoint
    {_SESSION_EVENTS}
    GROUP BY session_id
) AS a
LEFT JOIN (
    SELECT session_id, list(endpoint ORDER BY first) AS seen
    FROM (
        SELECT session_id, endpoint, min({_ORDER}) AS first
        {_SESSION_EVENTS} AND endpoint IS NOT NULL
        GROUP BY session_id, endpoint
    )
    GROUP BY session_id
) AS e USING (session_id)
) AS b
ON s.session_id = b.session_id
WHEN MATCHED AND NOT list_has_all(coalesce(s.endpoints, []), b.endpoints) THEN UPDATE SET
    {_SESSION_SCALARS},
    endpoints = wgs_dedup(list_concat(coalesce(s.endpoints, []), b.endpoints))
WHEN MATCHED THEN UPDATE SET
    {_SESSION_SCALARS}
WHEN NOT MATCHED THEN INSERT VALUES (
    b.session_id, b.interface, b.peer_key, b."start", b."end",
    CASE WHEN b.ended THEN coalesce(b.duration_secs, epoch(b."end") - epoch(b."start")) END,
    coalesce(b.final_rx, b.delta_rx, 0),
    coalesce(b.final_tx, b.delta_tx, 0),
    b.endpoints, b.end_reason, b.tunnel_ip, b.last_endpoint, b.last_seen
)
"""
