"""One pass instead of four: ``enrich_geo`` → ``enrich_identity`` → ``enrich_assets`` → ``score_risk`` fused.

Why: each transform of the chain already answers from a cache of ready-made fragments, so what an
event costs is Python reading the few fields a transform needs and writing copies — four times over,
and ``score_risk`` re-reads everything the others just wrote (seven factors) to find its cached
result. Fused, an event is read once and its answer is assembled from four caches of *parts*:

========== ============================================ ==================================================
cache      key                                          value (built once, from the member transforms)
========== ============================================ ==================================================
``sides``  ``<side>.ip`` (one dict per side)            geo, AS and ``wireguard.geo.<side>`` makers, the
                                                        ``wireguard.asset.<side>`` maker, the side's risk
                                                        evidence
``peers``  peer key (``wireguard.peer.public_key``, or  ``user.*``, ``wireguard.user``, ``related.user``,
           the one found by tunnel address)             peer name makers, the peer's risk evidence
``observer`` (``observer.hostname``, ``observer.ip``)   ``wireguard.asset.observer`` maker and evidence
``risk``   the parts' evidence numbers                  ``event.risk_score``, level, factor rows maker
========== ============================================ ==================================================

A single cache keyed by every input at once would miss on every new (peer, destination) pair — a
quarter of the benchmark's flows; its parts repeat far more. "Evidence" is what ``score_risk`` can
read from a part (country, AS, anonymizer flags, asset criticality/name/tags/environment, the user's
risk level, an unknown peer's key), interned to a small number, so the risk cache key is a tuple of
ints and equal evidence from different addresses or people shares one risk result.

**Same documents.** The output is byte-identical (key order included) to the unfused chain: the parts
are built by the member transforms' own code, and the writes happen in the members' order. An event
whose shape the fused pass does not handle — a ``user`` it already carries, ``wireguard.geo``/
``user``/``asset``/``risk`` already present, ``<side>.geo``/``as`` already set, a ``related.user`` to
merge into, a non-text address, a ``wireguard.peer.known`` of its own — is handed to the member
transforms one after the other (counted as ``slow_path``). Tests: ``tests/enrich/test_fused_chain.py``.

**Copies.** Fragments in the caches are never handed out: a *maker* per fragment returns a fresh
copy (``dict.copy`` of a flat fragment, nested objects and lists copied too). Leaves (text, numbers)
are shared, which is safe because they are immutable; every dict and list of an output is the event's
own, so a later in-place edit (``apply_privacy``) never reaches a cache or another event.

**Reloads.** Every reload empties the fused caches in the same step: the members' ``generation``
counters (geo database swap, asset inventory edit; identity inventory, config file or LDAP refresh —
the directory's generation, bumped by the LDAP thread too) are compared on every event. The members'
reload timers run from here (the earliest due one, one ``monotonic()`` per event).

**Telemetry.** The pipeline counts the fused component (``<id>+<id>+…``, type ``enrich_chain``); each
member keeps its own component for its errors, and its ``received``/``sent`` are brought level with the
fused count at every reload check and on ``status()``. Member counters (``known``, ``matched``,
``scored``, geo's ``invalid_addresses`` …) are kept per event as before. ``cache_stats()`` reports
the fused caches and, prefixed with the member id, the members' own caches — which, fused, are only
asked on a miss of a fused cache.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from wgsiem.event import Envelope

from .base import cache_stat
from .enrich_assets.transform import EnrichAssets
from .enrich_geo.databases import DatabaseLookupError
from .enrich_geo.transform import EnrichGeo, _InvalidAddress
from .enrich_identity.transform import EnrichIdentity
from .score_risk.transform import ScoreRisk

__all__ = ["FUSABLE", "FusedEnrichment", "fuse_transforms"]

FUSABLE: dict[type, int] = {EnrichGeo: 0, EnrichIdentity: 1, EnrichAssets: 2, ScoreRisk: 3}
"""Member classes and their place in the fused order."""

_monotonic = time.monotonic
_SIDES_MAX = 65_536  # per side, like the members' address caches; then emptied
_PEERS_MAX = 65_536
_OBSERVERS_MAX = 1_024
_RISK_MAX = 16_384  # ~1.5 KiB a result, as score_risk's own cache
_EVIDENCE_MAX = 262_144
_SIDES = ("source", "destination")
_UNKNOWN_SCORES_MAX = 1_024  # per unknown peer
_Scored = tuple[float, str, tuple[dict[str, Any], ...], float]  # score, level, rows, running total
_WRITTEN = frozenset(("geo", "user", "asset", "risk"))  # wireguard.* the members write (and risk reads)
_copy = dict.copy

Maker = Callable[[], Any]


def _maker(frag: Any, nested: tuple[str, ...] = ()) -> Maker:
    """A function returning a fresh copy of ``frag`` (a dict or list) whose ``nested`` members (dicts or
    lists of leaves) are fresh too; leaves are shared (immutable)."""
    if not nested:
        return frag.copy
    if len(nested) == 1:  # the usual shape (tags, sources, risk, organization): no loop
        key = nested[0]
        copy_frag, copy_sub = frag.copy, frag[key].copy

        def make_one() -> Any:
            c = copy_frag()
            c[key] = copy_sub()
            return c

        return make_one

    def make() -> Any:
        c = frag.copy()
        for k in nested:
            c[k] = c[k].copy()
        return c

    return make


def _nested(doc: dict[str, Any]) -> tuple[str, ...]:
    return tuple(k for k, v in doc.items() if type(v) in (dict, list))


class _Side:
    """What one ``<side>.ip`` gives, ready to write (see the module docstring)."""

    __slots__ = ("as_", "asset", "error", "ev", "geo", "wg")

    def __init__(self) -> None:
        self.geo: Maker | None = None
        self.as_: Maker | None = None
        self.wg: Maker | None = None  # wireguard.geo.<side>; None: geo writes nothing for this side
        self.asset: Maker | None = None
        self.error: tuple[str, str] | None = None  # (counter, message) of an invalid address
        self.ev = 0


class _Peer:
    __slots__ = ("ev", "known", "name", "related", "scores", "unknown_row", "user", "wg_user")

    def __init__(self) -> None:
        self.known = False
        # an unknown peer that score_risk counts: its factor row (named by the key) and, per evidence
        # of the rest of the event, the (score, level) that row makes of it
        self.unknown_row: dict[str, Any] | None = None
        self.scores: dict[tuple[int, int, int, int], tuple[float, str]] = {}
        self.name: str | None = None
        self.user: Maker | None = None
        self.wg_user: Maker | None = None
        self.related: list[str] | None = None
        self.ev = 0


class FusedEnrichment:
    """The members (a run of geo → identity → assets → risk, in that order, at least two) as one
    processor; built by :func:`fuse_transforms`. See the module docstring."""

    __name__ = "enrich_chain"

    def __init__(self, members: list[tuple[str, Any]]) -> None:
        self.members = members
        self.transform_id = "+".join(tid for tid, _ in members)
        by_type = {type(proc): proc for _tid, proc in members}
        self.geo: EnrichGeo | None = by_type.get(EnrichGeo)
        self.identity: EnrichIdentity | None = by_type.get(EnrichIdentity)
        self.assets: EnrichAssets | None = by_type.get(EnrichAssets)
        self.risk: ScoreRisk | None = by_type.get(ScoreRisk)
        geo_sides: tuple[str, ...] = self.geo._sides if self.geo is not None else ()
        asset_sides: tuple[str, ...] = self.assets._sides if self.assets is not None else ()
        for sides in (geo_sides, asset_sides):
            if list(sides) != [s for s in _SIDES if s in sides]:
                raise ValueError("fused sides must be in the order source, destination")
        # per side (0 source, 1 destination): does geo / assets look it up, must it be read at all
        self._geo_on = tuple(s in geo_sides for s in _SIDES)
        self._asset_on = tuple(s in asset_sides for s in _SIDES)
        read = set(geo_sides) | set(asset_sides)
        if self.risk is not None:  # risk reads <side>.geo/.as of its sides: carried ones go the slow way
            read |= set(self.risk._country[1]) | set(self.risk._asn[1])
        self._src_read, self._dst_read = ("source" in read, "destination" in read)
        self._src_on = self._geo_on[0] or self._asset_on[0]
        self._dst_on = self._geo_on[1] or self._asset_on[1]
        self._observer = self.assets is not None and self.assets._observer
        self._src_cache: dict[str, _Side] = {}
        self._dst_cache: dict[str, _Side] = {}
        self._peers: dict[str, _Peer] = {}
        self._observers: dict[Any, tuple[Maker | None, int]] = {}
        self._risk_cache: dict[tuple[int, int, int, int], _Scored] = {}
        self._evidence: dict[Any, int] = {None: 0}
        self._stale = False
        for proc in (self.geo, self.assets):
            if proc is not None:
                proc.on_clear.append(self._mark_stale)
        if self.identity is not None:
            self.identity.directory.on_change.append(self._mark_stale)
        self._next_check = 0.0
        self._synced = 0
        self.events = 0
        self.slow_path = 0
        self._misses = {"sides": 0, "peers": 0, "observer": 0, "risk": 0}
        self._side_lookups = 0
        self._peer_lookups = 0
        self._observer_lookups = 0
        self._procs = [proc for _tid, proc in members]

    # ---------------------------------------------------------------- housekeeping
    def _mark_stale(self) -> None:
        """A member reloaded (called by it, possibly from the LDAP thread): the next event starts over."""
        self._stale = True

    def _periodic(self, now: float) -> None:
        """Run the members' reload checks that are due; bring their telemetry level."""
        due = []
        geo, identity, assets = self.geo, self.identity, self.assets
        if geo is not None:
            if now >= geo._next_check:
                geo._check_reload(now)
            due.append(geo._next_check)
        if identity is not None:
            d = identity.directory
            if now >= d.next_check:
                d.check_now(now)
            due.append(d.next_check)
        if assets is not None:
            if now >= assets._next_check:
                assets._check_reload(now)
            due.append(assets._next_check)
        self._next_check = min(due) if due else now + 5.0
        self._sync_telemetry()

    def _sync_telemetry(self) -> None:
        delta = self.events - self._synced
        if delta:
            self._synced = self.events
            for proc in self._procs:
                tel = proc.telemetry
                tel.received += delta
                tel.sent += delta

    def clear_cache(self) -> None:
        """Empty the fused caches (and the members')."""
        self._src_cache.clear()
        self._dst_cache.clear()
        self._peers.clear()
        self._observers.clear()
        self._risk_cache.clear()
        self._evidence = {None: 0}
        for proc in self._procs:
            clear = getattr(proc, "clear_cache", None)
            if clear is not None:
                clear()
        self._stale = False

    def _reset(self) -> None:
        """A member reloaded: forget every fused answer (the members emptied their own caches)."""
        self._stale = False
        self._src_cache.clear()
        self._dst_cache.clear()
        self._peers.clear()
        self._observers.clear()
        self._risk_cache.clear()
        self._evidence = {None: 0}

    def _intern(self, evidence: Any) -> int:
        ids = self._evidence
        n = ids.get(evidence)
        if n is None:
            n = ids[evidence] = len(ids)
            if n >= _EVIDENCE_MAX:  # a flood of made-up keys: start over with the next event
                self._stale = True
        return n

    # ---------------------------------------------------------------- per event
    def __call__(self, env: Envelope) -> Envelope:
        self.events += 1
        now = _monotonic()
        if now >= self._next_check:
            self._periodic(now)
        if self._stale:
            self._reset()
        data = env.data
        wg = data.get("wireguard")
        if type(wg) is dict:
            if not _WRITTEN.isdisjoint(wg):
                return self._slow(env)
        elif wg is not None:
            return self._slow(env)
        if "user" in data:
            return self._slow(env)

        # ---- read everything first: an event the fused pass cannot take is left untouched
        src = dst = None
        s_sp: _Side | None = None
        d_sp: _Side | None = None
        if self._src_read:
            src = data.get("source")
            if type(src) is dict:
                if "geo" in src or "as" in src:
                    return self._slow(env)
                if self._src_on:
                    ip = src.get("ip")
                    if ip is not None:
                        if type(ip) is not str:
                            return self._slow(env)
                        self._side_lookups += 1
                        s_sp = self._src_cache.get(ip)
                        if s_sp is None:
                            s_sp = self._side_miss(0, ip)
        if self._dst_read:
            dst = data.get("destination")
            if type(dst) is dict:
                if "geo" in dst or "as" in dst:
                    return self._slow(env)
                if self._dst_on:
                    ip = dst.get("ip")
                    if ip is not None:
                        if type(ip) is not str:
                            return self._slow(env)
                        self._side_lookups += 1
                        d_sp = self._dst_cache.get(ip)
                        if d_sp is None:
                            d_sp = self._side_miss(1, ip)

        peer = wg.get("peer") if wg is not None else None
        if peer is not None and (type(peer) is not dict or "known" in peer):
            return self._slow(env)
        identity = self.identity
        key: Any = None
        tunnel: tuple[str, str, str] | None = None
        pp: _Peer | None = None
        if identity is not None:
            key = peer.get("public_key") if peer is not None else None
            if type(key) is not str:
                tunnel = identity._by_address(data)
                key = tunnel[0] if tunnel is not None else None
            if key is not None:
                self._peer_lookups += 1
                pp = self._peers.get(key)
                if pp is None:
                    pp = self._peer_miss(key)
                if pp.related:
                    rel = data.get("related")
                    if rel is not None and (type(rel) is not dict or "user" in rel):
                        return self._slow(env)

        obs_doc: Maker | None = None
        obs_ev = 0
        if self._observer:
            obs = data.get("observer")
            if type(obs) is dict:
                oip = obs.get("ip")
                if oip is not None:
                    oip = oip[0] if type(oip) is list and oip else oip
                    oip = oip if type(oip) is str else None
                host = obs.get("hostname")
                okey: Any = (host if type(host) is str else None, oip) if oip is not None else host
                self._observer_lookups += 1
                try:
                    hit = self._observers.get(okey)
                except TypeError:  # an unhashable hostname (not from our sources)
                    return self._slow(env)
                if hit is None:
                    hit = self._observer_miss(okey, host if type(host) is str else None, oip)
                obs_doc, obs_ev = hit

        risk = self.risk
        event = data.get("event")
        if risk is not None and type(event) is not dict:
            return self._slow(env)

        # ---- write, in the members' order
        if self.geo is not None:
            wg_geo: dict[str, Any] | None = None
            if s_sp is not None and self._geo_on[0]:
                assert src is not None
                if s_sp.error is not None:
                    self._geo_error(s_sp)
                elif s_sp.wg is not None:
                    if s_sp.geo is not None:
                        src["geo"] = s_sp.geo()
                    if s_sp.as_ is not None:
                        src["as"] = s_sp.as_()
                    if wg is None:
                        wg = data["wireguard"] = {}
                    wg_geo = wg["geo"] = {"source": s_sp.wg()}
            if d_sp is not None and self._geo_on[1]:
                assert dst is not None
                if d_sp.error is not None:
                    self._geo_error(d_sp)
                elif d_sp.wg is not None:
                    if d_sp.geo is not None:
                        dst["geo"] = d_sp.geo()
                    if d_sp.as_ is not None:
                        dst["as"] = d_sp.as_()
                    if wg_geo is not None:
                        wg_geo["destination"] = d_sp.wg()
                    else:
                        if wg is None:
                            wg = data["wireguard"] = {}
                        wg["geo"] = {"destination": d_sp.wg()}

        if pp is not None:
            assert identity is not None
            if tunnel is not None:
                if wg is None:
                    wg = data["wireguard"] = {}
                if peer is None:
                    peer = wg["peer"] = {}
                # what identity's peer.update(public_key=…, interface=…, tunnel_ip=…, attribution=…) does
                peer["public_key"] = key
                peer["interface"] = tunnel[1]
                peer["tunnel_ip"] = tunnel[2]
                peer["attribution"] = "tunnel-ip"
                identity.by_tunnel_ip += 1
            assert wg is not None and peer is not None  # a key comes from wireguard.peer or a tunnel
            if not pp.known:
                peer["known"] = False
                identity.unknown += 1
            else:
                peer["known"] = True
                identity.known += 1
                if pp.name is not None:
                    peer["name"] = pp.name
                if pp.user is not None:
                    data["user"] = pp.user()
                wg["user"] = pp.wg_user()  # type: ignore[misc]
                related = pp.related
                if related:
                    rel = data.get("related")
                    if rel is None:
                        data["related"] = {"user": related[:]}
                    else:
                        rel["user"] = related[:]

        assets = self.assets
        if assets is not None:
            found: dict[str, Any] | None = None
            if s_sp is not None and s_sp.asset is not None:
                found = {"source": s_sp.asset()}
            if d_sp is not None and d_sp.asset is not None:
                if found is None:
                    found = {"destination": d_sp.asset()}
                else:
                    found["destination"] = d_sp.asset()
            if obs_doc is not None:
                if found is None:
                    found = {"observer": obs_doc()}
                else:
                    found["observer"] = obs_doc()
            if found is not None:
                assets.matched += 1
                if wg is None:
                    wg = data["wireguard"] = {}
                wg["asset"] = found

        if risk is not None:
            if identity is None:
                pev = self._raw_peer_evidence(wg) if wg is not None else 0
            else:
                pev = pp.ev if pp is not None else 0
            rkey = (s_sp.ev if s_sp is not None else 0, d_sp.ev if d_sp is not None else 0, pev, obs_ev)
            scored = self._risk_cache.get(rkey)
            if pp is None or pp.unknown_row is None:
                if scored is None:
                    scored = self._risk_miss(rkey, data, False)
                score, level, rows, _partial = scored
                factors = [*map(_copy, rows)]
            else:
                # unknown_peer is risk's last factor and its row names the key: the rest of the
                # evidence keeps one result for all unknown peers, the peer adds its row
                if scored is None:
                    scored = self._risk_miss(rkey, data, True)
                sl = pp.scores.get(rkey)
                if sl is None:
                    sl = self._with_unknown(rkey, scored, pp)
                score, level = sl
                factors = [*map(_copy, scored[2]), pp.unknown_row.copy()]
            event["risk_score"] = score  # type: ignore[index]  # a dict: checked while reading
            if wg is None:
                wg = data["wireguard"] = {}
            wg["risk"] = {"level": level, "factors": factors}
            risk.scored += 1
            risk.score_sum += score
            risk.by_level[level] += 1
        return env

    def _slow(self, env: Envelope) -> Envelope:
        """Through the members one by one: exactly the unfused chain."""
        self.slow_path += 1
        out: Envelope | None = env
        for proc in self._procs:
            out = proc(out)
            if out is None:  # pragma: no cover - no member drops events
                return None  # type: ignore[return-value]
        return out  # type: ignore[return-value]

    def _geo_error(self, sp: _Side) -> None:
        geo = self.geo
        assert geo is not None and sp.error is not None
        kind, message = sp.error
        geo.without_geo += 1
        if kind == "invalid":
            geo.invalid_addresses += 1
            geo.telemetry.error("InvalidAddress", "lookup", message)
        else:
            geo.lookup_errors += 1
            geo.telemetry.error("DatabaseLookupError", "lookup", message)

    # ---------------------------------------------------------------- misses
    def _side_miss(self, i: int, ip: str) -> _Side:
        self._misses["sides"] += 1
        side = _SIDES[i]
        sp = _Side()
        cacheable = True
        geo_doc = as_doc = anon = asset = None
        geo = self.geo
        if geo is not None and self._geo_on[i] and ip:
            try:
                res = geo._lookup(ip)
            except _InvalidAddress:
                sp.error = ("invalid", f"{side}.ip {ip!r} is not an IP address")
            except DatabaseLookupError as exc:
                sp.error = ("lookup", str(exc))
                cacheable = False  # geo does not cache it either: the next event asks again
            else:
                geo_doc, as_doc = res.geo, res.as_doc
                if geo_doc is not None:
                    sp.geo = _maker(geo_doc, ("location",) if res.geo_location_object else ())
                if as_doc is not None:
                    sp.as_ = _maker(as_doc, ("organization",) if res.as_organization else ())
                nested = (("databases",) if res.wg_databases else ()) + (
                    ("anonymizer",) if res.wg_anonymizer else ()
                )
                sp.wg = _maker(res.wg_doc, nested)
                anon = res.wg_doc.get("anonymizer")
        assets = self.assets
        if assets is not None and self._asset_on[i]:
            asset = assets._match(ip)
            if asset is not None:
                sp.asset = _maker(asset, _nested(asset))
        if self.risk is not None:
            sp.ev = self._intern(self.risk.side_evidence(side, geo_doc, as_doc, anon, asset))
        if cacheable:
            cache = self._dst_cache if i else self._src_cache
            if len(cache) >= _SIDES_MAX:
                cache.clear()
            cache[ip] = sp
        return sp

    def _peer_miss(self, key: str) -> _Peer:
        self._misses["peers"] += 1
        identity = self.identity
        assert identity is not None
        docs = identity.documents(key)
        pp = _Peer()
        risk = self.risk
        if docs is None:  # unknown: it keeps sending until someone claims it
            if risk is not None and risk._unknown_w:
                pp.unknown_row = risk._row("unknown_peer", risk._unknown_w, 1.0, (key,))
        else:
            user_doc, wg_user, related, peer_name, nested = docs
            pp.known = True
            pp.name = peer_name
            pp.user = _maker(user_doc, nested) if user_doc else None
            pp.wg_user = _maker(wg_user, ("sources",))
            pp.related = list(related) if related else None
            risk = user_doc.get("risk")
            pp.ev = self._intern(
                (
                    "peer",
                    tuple(risk.items()) if type(risk) is dict else risk,
                    repr(wg_user.get("risk")),
                    bool(user_doc),
                )
            )
        if len(self._peers) >= _PEERS_MAX:
            self._peers.clear()
        self._peers[key] = pp
        return pp

    def _observer_miss(self, okey: Any, host: str | None, ip: str | None) -> tuple[Maker | None, int]:
        self._misses["observer"] += 1
        assets = self.assets
        assert assets is not None
        doc = assets._match_observer(host, ip)
        hit: tuple[Maker | None, int] = (
            (
                _maker(doc, _nested(doc)),
                self._intern(self.risk.side_evidence("observer", None, None, None, doc))
                if self.risk is not None
                else 0,
            )
            if doc is not None
            else (None, 0)
        )
        if len(self._observers) >= _OBSERVERS_MAX:
            self._observers.clear()
        self._observers[okey] = hit
        return hit

    def _raw_peer_evidence(self, wg: dict[str, Any]) -> int:
        """Without identity in the chain, risk's unknown-peer factor reads the event's own flag."""
        peer = wg.get("peer")
        if type(peer) is dict and peer.get("known") is False:
            key = peer.get("public_key")
            return self._intern(("unknown", key if type(key) is str else None))
        return 0

    def _risk_miss(self, rkey: tuple[int, int, int, int], data: dict[str, Any], unknown: bool) -> _Scored:
        """``score_risk``'s own reading of the event as written so far, kept by evidence: score, level,
        rows and the running total before capping and rounding (for an unknown peer's row to add to).
        For an unknown peer's event, the result without its ``unknown_peer`` factor (the last one)."""
        self._misses["risk"] += 1
        risk = self.risk
        assert risk is not None
        hits = risk.hits(data)
        if unknown:
            assert hits and hits[-1][0] == "unknown_peer"
            hits.pop()
        if hits:
            try:
                score, level, rows = risk._scored(tuple(hits))
            except TypeError:  # evidence that cannot be a key (never from our transforms)
                score, level, rows = risk.score(hits)
        else:
            score, level, rows = risk._nothing
        partial = risk._base
        for row in rows:  # the same additions, in the same order, as ScoreRisk.score
            partial += row["score"]
        result = (score, level, rows, partial)
        if len(self._risk_cache) >= _RISK_MAX:
            self._risk_cache.clear()
        self._risk_cache[rkey] = result
        return result

    def _with_unknown(self, rkey: tuple[int, int, int, int], scored: _Scored, pp: _Peer) -> tuple[float, str]:
        """(score, level) of the rest's result plus the unknown peer's row, as ScoreRisk.score sums."""
        risk = self.risk
        assert risk is not None and pp.unknown_row is not None
        score = round(min(100.0, scored[3] + pp.unknown_row["score"]), 2)
        level = "low"
        for floor, lvl in risk._levels:
            if score >= floor:
                level = lvl
                break
        if len(pp.scores) >= _UNKNOWN_SCORES_MAX:
            pp.scores.clear()
        pp.scores[rkey] = (score, level)
        return score, level

    # ---------------------------------------------------------------- lifecycle
    def cache_stats(self) -> dict[str, dict[str, Any]]:
        """The fused caches, then each member's own (asked only on a fused miss), as ``<id>.<cache>``."""
        miss = self._misses
        risk_lookups = self.events - self.slow_path if self.risk is not None else 0
        out = {
            "fused.sides": cache_stat(
                self._side_lookups - miss["sides"], miss["sides"], len(self._src_cache) + len(self._dst_cache)
            ),
            "fused.peers": cache_stat(self._peer_lookups - miss["peers"], miss["peers"], len(self._peers)),
            "fused.observer": cache_stat(
                self._observer_lookups - miss["observer"], miss["observer"], len(self._observers)
            ),
            # every event of the fused pass asks the risk cache once
            "fused.risk": cache_stat(risk_lookups - miss["risk"], miss["risk"], len(self._risk_cache)),
        }
        for tid, proc in self.members:
            stats = getattr(proc, "cache_stats", None)
            if stats is not None:
                for name, c in stats().items():
                    out[f"{tid}.{name}"] = c
        return out

    def check_now(self) -> None:
        """Run every member's reload check now (what the timers do)."""
        for proc in self._procs:
            check = getattr(proc, "check_now", None)
            if check is not None:
                check()

    def status(self) -> dict[str, Any]:
        self._sync_telemetry()
        return {
            "fused": [tid for tid, _ in self.members],
            "events": self.events,
            "slow_path": self.slow_path,
            "caches": self.cache_stats(),
            "members": {tid: proc.status() for tid, proc in self.members if hasattr(proc, "status")},
        }

    def close(self) -> None:
        self._sync_telemetry()
        for proc in self._procs:
            close = getattr(proc, "close", None)
            if close is not None:
                close()


def fuse_transforms(transforms: list[tuple[str, Any]]) -> list[tuple[str, Any]]:
    """``transforms`` with every run of two or more of geo → identity → assets → risk (in that order,
    nothing in between) replaced by one :class:`FusedEnrichment` under the id ``<id>+<id>…``."""
    out: list[tuple[str, Any]] = []
    run: list[tuple[str, Any]] = []

    def flush() -> None:
        if len(run) >= 2:
            fused = FusedEnrichment(list(run))
            out.append((fused.transform_id, fused))
        else:
            out.extend(run)
        run.clear()

    for tid, proc in transforms:
        rank = FUSABLE.get(type(proc))
        sides = getattr(proc, "_sides", ())
        if list(sides) != [s for s in _SIDES if s in sides]:
            rank = None  # destination before source: the member writes in that order, left unfused
        if rank is None:
            flush()
            out.append((tid, proc))
            continue
        if run and FUSABLE[type(run[-1][1])] >= rank:
            flush()
        run.append((tid, proc))
    flush()
    return out
