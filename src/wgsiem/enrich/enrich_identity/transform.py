"""The ``enrich_identity`` transform: which person is behind a WireGuard peer.

The peer comes from ``wireguard.peer.public_key`` (every ``wg_state``, ``kernel_log``, ``wggo_log``,
``config_watch`` event that names one, and flows the ``netflow`` source attributed). A flow that the
source could not attribute — or any event without a key — is attributed here by address: the first of
``tunnel_ip_fields`` that a peer's AllowedIPs hold (:meth:`PeerDirectory.by_tunnel_ip`, longest prefix),
written as ``wireguard.peer.{public_key, interface, tunnel_ip, attribution: "tunnel-ip"}``.

For a peer, the identity directory (inventory over LDAP over config comments, field by field) fills:

* ``user.name``, ``user.email``, ``user.id``, ``user.full_name``, ``user.domain`` and
  ``user.risk.static_level`` (ECS) — only the ones the event does not carry already, unless
  ``overwrite_user``; an identity provider's login event keeps its own ``user.*``;
* ``wireguard.user.{department, device, risk, sources}`` — ECS has no department or personal-device
  field (``user.group`` is an access group; ``host.*`` on a gateway event is the gateway), and
  ``score_risk`` reads ``wireguard.user.risk``;
* ``wireguard.peer.name`` (the config comment's friendly name) and ``wireguard.peer.known``:
  ``true`` when some identity source knows the key, ``false`` for a peer no one has claimed;
* ``related.user``: name, email and id, appended once each.

Events that concern no peer pass untouched.
"""

from __future__ import annotations

import time
from typing import Any

from wgsiem.enrich.base import TransformContext, cache_stat
from wgsiem.event import Envelope

from .config import EnrichIdentityConfig
from .directory import IdentityDirectory
from .inventory import Identity

__all__ = ["EnrichIdentity"]

_TUNNEL_CACHE_MAX = 65_536
_DOCS_MAX = 65_536
_MISSING: Any = object()

_Docs = tuple[dict[str, Any], dict[str, Any], list[str], str | None, tuple[str, ...]]
"""Per peer key, ready-made: user.*, wireguard.user.*, related.user, peer name, user.* keys holding
objects (copied per event with the top level)."""


class EnrichIdentity:
    """See the module docstring; built as ``EnrichIdentity(transform_id, config, ctx)``."""

    __name__ = "enrich_identity"

    def __init__(self, transform_id: str, config: EnrichIdentityConfig, ctx: TransformContext) -> None:
        self.transform_id = transform_id
        self.config = config
        self.ctx = ctx
        self.telemetry = ctx.telemetry
        self.directory = IdentityDirectory(config, self._error)
        self.directory.start()
        self._docs: dict[str, _Docs | None] = {}
        self._hits = 0
        self._misses = 0
        self._docs_generation = -1
        self._tunnel_paths = [tuple(p.split(".")) for p in config.tunnel_ip_fields]
        self._tunnel_cache: dict[str, Any] = {}
        self._tunnel_generation = -1
        self._tunnel_hits = 0
        self._tunnel_misses = 0
        self.known = 0
        self.unknown = 0
        self.by_tunnel_ip = 0

    def _error(self, etype: str, stage: str, message: str) -> None:
        self.telemetry.error(etype, stage, message)

    # ---------------------------------------------------------------- per event
    def __call__(self, env: Envelope) -> Envelope:
        data = env.data
        directory = self.directory
        now = time.monotonic()
        if now >= directory.next_check:
            directory.check_now(now)
        wg = data.get("wireguard")
        peer = wg.get("peer") if type(wg) is dict else None
        key = peer.get("public_key") if type(peer) is dict else None
        if type(key) is not str:
            found = self._by_address(data)
            if found is None:
                return env
            key, interface, ip = found
            if type(wg) is not dict:
                wg = data["wireguard"] = {}
            if type(peer) is not dict:
                peer = wg["peer"] = {}
            peer.update(public_key=key, interface=interface, tunnel_ip=ip, attribution="tunnel-ip")
            self.by_tunnel_ip += 1
        assert type(wg) is dict and type(peer) is dict
        cached = self.documents(key)
        if cached is None:
            peer["known"] = False
            self.unknown += 1
            return env
        user_doc, wg_user, related, peer_name, nested = cached
        peer["known"] = True
        self.known += 1
        if peer_name is not None:
            peer["name"] = peer_name
        # the cached documents are shared: each event gets its own copies (one level deep is all
        # they have: user.risk is the only object inside user.*, sources the only list)
        user = data.get("user")
        if not user_doc:
            pass
        elif type(user) is not dict:
            user = data["user"] = user_doc.copy()
            for k in nested:
                user[k] = user[k].copy()
        elif self.config.overwrite_user:
            user.update(user_doc)
            for k in nested:
                user[k] = user[k].copy()
        else:
            for k, v in user_doc.items():
                if k not in user:
                    user[k] = v.copy() if type(v) is dict else v
        existing = wg.get("user")
        if type(existing) is dict:
            existing.update(wg_user)
            existing["sources"] = wg_user["sources"][:]
        else:
            doc = wg_user.copy()
            doc["sources"] = doc["sources"][:]
            wg["user"] = doc
        if related:
            rel = data.get("related")
            if type(rel) is not dict:
                data["related"] = {"user": related[:]}
            else:
                users = rel.get("user")
                if type(users) is not list:
                    rel["user"] = related[:]
                else:
                    for u in related:
                        if u not in users:
                            users.append(u)
        return env

    def documents(self, key: str) -> _Docs | None:
        """The ready documents of a peer key (``None``: unknown), from the per-peer cache; the fused
        chain (:mod:`wgsiem.enrich.fused_chain`) calls it on a miss of its own cache."""
        directory = self.directory
        if self._docs_generation != directory.generation:
            self._docs.clear()
            self._docs_generation = directory.generation
        docs = self._docs
        cached = docs.get(key, _MISSING)
        if cached is _MISSING:
            self._misses += 1
            ident = directory.get(key)
            if len(docs) >= _DOCS_MAX:  # peers are few; a flood of made-up keys must not grow it
                docs.clear()
            # an unknown peer is cached too (as None): it keeps sending until someone claims it
            cached = docs[key] = _documents(ident) if ident is not None else None
        else:
            self._hits += 1
        return cached

    def _by_address(self, data: dict[str, Any]) -> tuple[str, str, str] | None:
        peers = self.ctx.peers
        if self._tunnel_generation != peers.generation:
            self._tunnel_cache.clear()
            self._tunnel_generation = peers.generation
        cache = self._tunnel_cache
        for path in self._tunnel_paths:
            node: Any = data
            for part in path:
                node = node.get(part) if type(node) is dict else None
            if type(node) is not str:
                continue
            if node in cache:
                hit = cache[node]
                self._tunnel_hits += 1
            else:
                self._tunnel_misses += 1
                if len(cache) >= _TUNNEL_CACHE_MAX:
                    cache.clear()
                p = peers.by_tunnel_ip(node)
                hit = cache[node] = (p.public_key, p.interface) if p is not None else None
            if hit is not None:
                return hit[0], hit[1], node
        return None

    # ---------------------------------------------------------------- lifecycle
    def check_now(self) -> bool:
        """Check the inventory and config files for a new version immediately (what the timer does)."""
        return self.directory.check_now()

    def status(self) -> dict[str, Any]:
        return {
            **self.directory.status(),
            "known": self.known,
            "unknown": self.unknown,
            "by_tunnel_ip": self.by_tunnel_ip,
            "caches": self.cache_stats(),
        }

    def cache_stats(self) -> dict[str, dict[str, Any]]:
        """Hit rates of the per-peer document cache and the tunnel-address → peer cache."""
        return {
            "peers": cache_stat(self._hits, self._misses, len(self._docs)),
            "tunnel_ip": cache_stat(self._tunnel_hits, self._tunnel_misses, len(self._tunnel_cache)),
        }

    def clear_cache(self) -> None:
        """Forget the cached documents and addresses (rebuilt from the directory on the next events)."""
        self._docs.clear()
        self._tunnel_cache.clear()

    def close(self) -> None:
        self.directory.close()


def _documents(ident: Identity) -> _Docs:
    related = [v for v in (ident.name, ident.email, ident.id) if v is not None]
    user = ident.user_document()
    nested = tuple(k for k, v in user.items() if type(v) is dict)
    return user, ident.wireguard_document(), list(dict.fromkeys(related)), ident.peer_name, nested
