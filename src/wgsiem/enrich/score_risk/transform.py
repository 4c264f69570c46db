"""The ``score_risk`` transform: ``event.risk_score`` (0–100) and why, from configurable factors.

Each factor reads fields the earlier transforms wrote and yields a value in [0, 1]:

================== ==================================================================================
asset_criticality  ``wireguard.asset.<side>.criticality`` / 5 (enrich_assets)
asset_sensitivity  the highest value of the asset's ``tags`` / ``environment`` in the configured maps
user_risk          ``user.risk.*_score_norm`` / ``*_score`` / ``*_level``, else ``wireguard.user.risk``
country            ``<side>.geo.country_iso_code`` in the configured map (enrich_geo)
asn                ``<side>.as.number`` or ``<side>.as.organization.name`` in the configured maps
anonymizer         the highest configured value of the flags in ``wireguard.geo.<side>.anonymizer``
unknown_peer       1 when ``wireguard.peer.known`` is ``false`` (identity enrichment)
================== ==================================================================================

``event.risk_score = min(100, base_score + Σ weight × value)`` — additive and capped, so every point
of a score can be traced to one line of ``wireguard.risk.factors`` (``name``, ``weight``, ``value``,
``score`` = weight × value, ``detail``), and ``wireguard.risk.level`` names the band. Factors that
contribute nothing are left out of the list.
"""

from __future__ import annotations

import functools
from typing import Any

from wgsiem.enrich.base import TransformContext, cache_stat
from wgsiem.event import Envelope

from .config import ScoreRiskConfig

__all__ = ["USER_RISK_LEVELS", "ScoreRisk"]

USER_RISK_LEVELS: dict[str, float] = {
    "unknown": 0.0,
    "low": 0.25,
    "moderate": 0.5,
    "medium": 0.5,
    "high": 0.75,
    "critical": 1.0,
}

Factor = tuple[str, float, float, str]  # name, weight, value, detail
Scored = tuple[float, str, tuple[dict[str, Any], ...]]  # risk_score, level, factor rows (shared)
_RESULTS_MAX = 16_384  # ~1.5 KiB each: at most ~24 MiB
_NONE: tuple[Any, ...] = ()


def _unit(x: float) -> float:
    return 0.0 if x < 0 else 1.0 if x > 1 else float(x)


def _number(v: Any) -> float | None:
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None


_EMPTY: dict[str, Any] = {}  # read-only stand-in for a missing object
_NUMBER_KEYS = ("calculated_score_norm", "static_score_norm", "calculated_score", "static_score")
_LEVEL_KEYS = ("calculated_level", "static_level")


def user_risk_value(data: dict[str, Any]) -> tuple[float, str] | None:
    """The user's risk in [0, 1] and where it came from, or ``None`` if the event carries none."""
    user = data.get("user")
    risk = user.get("risk") if isinstance(user, dict) else None
    if isinstance(risk, dict):
        for key in _NUMBER_KEYS:
            v = risk.get(key)
            if v is not None:  # the usual identity document holds a level only: skip the calls
                n = _number(v)
                if n is not None:
                    return _unit(n / 100), f"user.risk.{key} {n:g}"
        for key in _LEVEL_KEYS:
            lvl = risk.get(key)
            if isinstance(lvl, str) and lvl.lower() in USER_RISK_LEVELS:
                return USER_RISK_LEVELS[lvl.lower()], f"user.risk.{key} {lvl}"
    wg = data.get("wireguard")
    wuser = wg.get("user") if isinstance(wg, dict) else None
    wrisk = wuser.get("risk") if isinstance(wuser, dict) else None
    if isinstance(wrisk, dict):
        n = _number(wrisk.get("score"))
        if n is not None:
            return _unit(n / 100), f"wireguard.user.risk.score {n:g}"
        wrisk = wrisk.get("level")
    n = _number(wrisk)
    if n is not None:
        return _unit(n / 100), f"wireguard.user.risk {n:g}"
    if isinstance(wrisk, str) and wrisk.lower() in USER_RISK_LEVELS:
        return USER_RISK_LEVELS[wrisk.lower()], f"wireguard.user.risk {wrisk}"
    return None


_STATIC_LEVEL: dict[str, tuple[float, tuple[str]]] = {
    lvl: (USER_RISK_LEVELS[lvl.lower()], (f"user.risk.static_level {lvl}",))
    for name in USER_RISK_LEVELS
    for lvl in (name, name.upper(), name.capitalize())
}
"""``user.risk.static_level`` → (value, evidence) — what :func:`user_risk_value` says for a ``user.risk``
holding that level alone, precomputed for the hot path."""


class ScoreRisk:
    """See the module docstring; built as ``ScoreRisk(transform_id, config, ctx)``."""

    __name__ = "score_risk"

    def __init__(self, transform_id: str, config: ScoreRiskConfig, ctx: TransformContext) -> None:
        self.transform_id = transform_id
        self.config = config
        self.telemetry = ctx.telemetry
        c = config
        self._crit = (c.asset_criticality.weight, tuple(c.asset_criticality.sides))
        self._sens = (
            c.asset_sensitivity.weight,
            tuple(c.asset_sensitivity.sides),
            dict(c.asset_sensitivity.tags),
            {k.lower(): v for k, v in c.asset_sensitivity.environments.items()},
        )
        self._user_w = c.user_risk.weight
        self._country = (
            c.country.weight,
            tuple(c.country.sides),
            {k.upper(): v for k, v in c.country.countries.items()},
        )
        self._asn = (
            c.asn.weight,
            tuple(c.asn.sides),
            dict(c.asn.asns),
            {k.lower(): v for k, v in c.asn.organizations.items()},
        )
        self._anon = (c.anonymizer.weight, tuple(c.anonymizer.sides), dict(c.anonymizer.kinds))
        self._unknown_w = c.unknown_peer.weight
        self._levels = sorted(((v, k) for k, v in c.levels.items()), reverse=True)
        self._base = c.base_score
        self._scored = functools.lru_cache(maxsize=_RESULTS_MAX)(self._score_key)
        self.scored = 0
        self.score_sum = 0.0
        self.by_level: dict[str, int] = dict.fromkeys(c.levels, 0)
        self._nothing = self.score([])

    def hits(self, data: dict[str, Any]) -> list[tuple[str, float, float, tuple[Any, ...]]]:
        """(factor, weight, value, what matched) for every factor above 0 — pure, no edit of ``data``.

        "What matched" is a small tuple (side, asset name, criticality, …) that names the evidence; the
        explanation text is made from it once and cached (:meth:`_row`)."""
        out: list[tuple[str, float, float, tuple[Any, ...]]] = []
        wg = data.get("wireguard")
        if type(wg) is not dict:
            wg = _EMPTY
        assets = wg.get("asset")
        if type(assets) is dict:
            w, sides = self._crit
            if w:
                best, hit = 0, _NONE
                for side in sides:
                    a = assets.get(side)
                    if type(a) is dict:
                        crit = a.get("criticality")
                        if type(crit) is int and crit > best:
                            best, hit = crit, (side, a.get("name"), crit)
                if best:
                    out.append(("asset_criticality", w, _unit(best / 5), hit))
            w, sides, tags, envs = self._sens
            if w:
                best_v, hit = 0.0, _NONE
                for side in sides:
                    a = assets.get(side)
                    if type(a) is not dict:
                        continue
                    a_tags = a.get("tags")
                    if type(a_tags) is list:
                        for tag in a_tags:
                            v = tags.get(tag, 0.0) if type(tag) is str else 0.0
                            if v > best_v:
                                best_v, hit = v, (side, a.get("name"), "tag", tag)
                    env = a.get("environment")
                    if type(env) is str:
                        v = envs.get(env.lower(), 0.0)
                        if v > best_v:
                            best_v, hit = v, (side, a.get("name"), "environment", env)
                if best_v:
                    out.append(("asset_sensitivity", w, best_v, hit))
        if self._user_w and ("user" in data or "user" in wg):
            # what enrich_identity writes, {"static_level": <level>} alone, is answered from a table;
            # any other shape takes the general reading
            hit_user = None
            user = data.get("user")
            if type(user) is dict:
                risk = user.get("risk")
                if type(risk) is dict and len(risk) == 1:
                    lvl = risk.get("static_level")
                    if type(lvl) is str:
                        hit_user = _STATIC_LEVEL.get(lvl)
            if hit_user is None:
                ur = user_risk_value(data)
                hit_user = (ur[0], (ur[1],)) if ur is not None else None
            if hit_user is not None and hit_user[0] > 0:
                out.append(("user_risk", self._user_w, hit_user[0], hit_user[1]))
        w, sides, countries = self._country
        if w and countries:
            best_v, hit = 0.0, _NONE
            for side in sides:
                part = data.get(side)
                geo = part.get("geo") if type(part) is dict else None
                cc = geo.get("country_iso_code") if type(geo) is dict else None
                if type(cc) is str:
                    v = countries.get(cc.upper(), 0.0)
                    if v > best_v:
                        best_v, hit = v, (side, cc)
            if best_v:
                out.append(("country", w, best_v, hit))
        w, sides, asns, orgs = self._asn
        if w and (asns or orgs):
            best_v, hit = 0.0, _NONE
            for side in sides:
                part = data.get(side)
                as_ = part.get("as") if type(part) is dict else None
                if type(as_) is not dict:
                    continue
                num = as_.get("number")
                v = asns.get(num, 0.0) if type(num) is int else 0.0
                if v > best_v:
                    best_v, hit = v, (side, "number", num)
                org = as_.get("organization")
                name = org.get("name") if type(org) is dict else None
                if type(name) is str and orgs:
                    v = orgs.get(name.lower(), 0.0)
                    if v > best_v:
                        best_v, hit = v, (side, "organization", name)
            if best_v:
                out.append(("asn", w, best_v, hit))
        w, sides, kinds = self._anon
        geo_wg = wg.get("geo")
        if w and type(geo_wg) is dict:
            best_v, hit = 0.0, _NONE
            for side in sides:
                g = geo_wg.get(side)
                anon = g.get("anonymizer") if type(g) is dict else None
                if type(anon) is not dict:
                    continue
                for kind, flag in anon.items():
                    if flag is True:
                        v = kinds.get(kind, 0.0)
                        if v > best_v:
                            best_v, hit = v, (side, kind)
            if best_v:
                out.append(("anonymizer", w, best_v, hit))
        if self._unknown_w:
            peer = wg.get("peer")
            if type(peer) is dict and peer.get("known") is False:
                key = peer.get("public_key")
                out.append(("unknown_peer", self._unknown_w, 1.0, (key if type(key) is str else None,)))
        return out

    def side_evidence(
        self,
        side: str,
        geo: dict[str, Any] | None,
        as_doc: dict[str, Any] | None,
        anonymizer: dict[str, Any] | None,
        asset: dict[str, Any] | None,
    ) -> tuple[Any, ...] | None:
        """What :meth:`hits` can take from one side's fragments (``<side>.geo``, ``<side>.as``,
        ``wireguard.geo.<side>.anonymizer``, ``wireguard.asset.<side>``; ``side`` may be ``observer``):
        only the values a configured factor gives more than 0, with what its explanation names.
        Two sides with equal evidence make :meth:`hits` say the same, so the fused chain
        (:mod:`wgsiem.enrich.fused_chain`) keeps one result per combination of evidence.
        ``None``: nothing of this side can count."""
        out: list[Any] = []
        w, sides = self._crit
        crit = asset.get("criticality") if asset is not None else None
        if w and side in sides and type(crit) is int and crit > 0:
            out.append(("crit", crit, asset.get("name")))  # type: ignore[union-attr]
        w, sides, tags, envs = self._sens
        if w and side in sides and asset is not None:
            a_tags = asset.get("tags")
            found = (
                [t for t in a_tags if type(t) is str and tags.get(t, 0.0) > 0] if type(a_tags) is list else []
            )
            env = asset.get("environment")
            env = env if type(env) is str and envs.get(env.lower(), 0.0) > 0 else None
            if found or env is not None:
                out.append(("sens", asset.get("name"), tuple(found), env))
        w, sides, countries = self._country
        cc = geo.get("country_iso_code") if geo is not None else None
        if w and countries and side in sides and type(cc) is str and countries.get(cc.upper(), 0.0) > 0:
            out.append(("country", cc))
        w, sides, asns, orgs = self._asn
        if w and (asns or orgs) and side in sides and as_doc is not None:
            num = as_doc.get("number")
            org = as_doc.get("organization")
            name = org.get("name") if type(org) is dict else None
            n_ok = type(num) is int and asns.get(num, 0.0) > 0
            o_ok = type(name) is str and bool(orgs) and orgs.get(name.lower(), 0.0) > 0
            if n_ok or o_ok:
                out.append(("asn", num if n_ok else None, name if o_ok else None))
        w, sides, kinds = self._anon
        if w and side in sides and anonymizer is not None:
            flags = tuple(k for k, f in anonymizer.items() if f is True and kinds.get(k, 0.0) > 0)  # type: ignore[call-overload]
            if flags:
                out.append(("anon", flags))
        return (side, *out) if out else None

    @staticmethod
    def detail(name: str, hit: tuple[Any, ...]) -> str:
        """The human explanation of one factor's evidence."""
        if name == "asset_criticality":
            return f"{hit[0]} {hit[1]} criticality {hit[2]}"
        if name == "asset_sensitivity":
            return f"{hit[0]} {hit[1]} {hit[2]} {hit[3]}"
        if name == "country":
            return f"{hit[0]} country {hit[1]}"
        if name == "asn":
            return f"{hit[0]} AS{hit[2]}" if hit[1] == "number" else f"{hit[0]} AS organization {hit[2]}"
        if name == "anonymizer":
            return f"{hit[0]} anonymizer {hit[1]}"
        if name == "unknown_peer":
            return f"peer {hit[0][:8]}… unknown" if hit[0] else "peer unknown"
        return str(hit[0])

    def factors(self, data: dict[str, Any]) -> list[Factor]:
        """Every factor that applies to ``data`` with a value above 0, explained (pure)."""
        return [(n, w, v, self.detail(n, hit)) for n, w, v, hit in self.hits(data)]

    def _row(self, name: str, weight: float, value: float, hit: tuple[Any, ...]) -> dict[str, Any]:
        return {
            "name": name,
            "weight": weight,
            "value": round(value, 4),
            "score": round(weight * value, 2),
            "detail": self.detail(name, hit),
        }

    def score(self, hits: list[tuple[str, float, float, tuple[Any, ...]]]) -> Scored:
        """``(event.risk_score, wireguard.risk.level, factor rows)`` for the hits of one event (pure).

        The score adds the *rounded* row scores, so the rows always add up to what the event says."""
        total = self._base
        rows = []
        for name, weight, value, hit in hits:
            row = self._row(name, weight, value, hit)
            total += row["score"]
            rows.append(row)
        score = round(min(100.0, total), 2)
        level = "low"
        for floor, lvl in self._levels:
            if score >= floor:
                level = lvl
                break
        return score, level, tuple(rows)

    def __call__(self, env: Envelope) -> Envelope:
        data = env.data
        hits = self.hits(data)
        if hits:
            # The evidence of an event (its hits) decides its score, level and rows completely, and
            # repeats: a peer reaching the same assets from the same place. So the finished result is
            # cached by the evidence (an LRU); an event then costs the reading of its fields and one
            # lookup.
            try:
                scored = self._scored(tuple(hits))
            except TypeError:  # evidence that cannot be a key (never from our transforms)
                scored = self.score(hits)
        else:
            scored = self._nothing
        score, level, rows = scored
        event = data.get("event")
        if type(event) is not dict:
            event = data["event"] = {}
        event["risk_score"] = score
        wg = data.get("wireguard")
        if type(wg) is not dict:
            wg = data["wireguard"] = {}
        # the cached rows are shared: each event gets its own
        wg["risk"] = {"level": level, "factors": [*map(dict.copy, rows)]}
        self.scored += 1
        self.score_sum += score
        self.by_level[level] += 1
        return env

    def _score_key(self, key: tuple[tuple[str, float, float, tuple[Any, ...]], ...]) -> Scored:
        return self.score(list(key))

    def clear_cache(self) -> None:
        """Forget every cached result (the next events are scored from scratch)."""
        self._scored.cache_clear()

    def cache_stats(self) -> dict[str, dict[str, Any]]:
        """Hit rate of the result cache (by evidence), for ``status`` pages and the benchmark."""
        ci = self._scored.cache_info()
        return {"results": cache_stat(ci.hits, ci.misses, ci.currsize, ci.maxsize)}

    def status(self) -> dict[str, Any]:
        return {
            "events_scored": self.scored,
            "mean_score": round(self.score_sum / self.scored, 2) if self.scored else None,
            "by_level": dict(self.by_level),
        }
