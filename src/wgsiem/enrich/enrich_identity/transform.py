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

from wgsiem.enrich.base import TransformContext
from wgsiem.event import Envelope

from .config import EnrichIdentityConfig
from .directory import IdentityDirectory
from .inventory import Identity

__all__ = ["EnrichIdentity"]

_TUNNEL_CACHE_MAX = 65_536


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
        self._docs: dict[str, tuple[dict[str, Any], dict[str, Any], list[str], str | None]] = {}
        self._docs_generation = -1
        self._tunnel_paths = [tuple(p.split(".")) for p in config.tunnel_ip_fields]
        self._tunnel_cache: dict[str, Any] = {}
        self._tunnel_generation = -1
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
        if self._docs_generation != directory.generation:
            self._docs.clear()
            self._docs_generation = directory.generation
        cached = self._docs.get(key)
        if cached is None:
            ident = directory.get(key)
            if ident is None:
                peer["known"] = False
                self.unknown += 1
                return env
            cached = self._docs[key] = _documents(ident)
        user_doc, wg_user, related, peer_name = cached
        peer["known"] = True
        self.known += 1
        if peer_name is not None:
            peer["name"] = peer_name
        user = data.get("user")
        if not user_doc:
            pass
        elif type(user) is not dict:
            data["user"] = _copy(user_doc)
        elif self.config.overwrite_user:
            user.update(_copy(user_doc))
        else:
            for k, v in user_doc.items():
                if k not in user:
                    user[k] = v.copy() if type(v) is dict else v
        existing = wg.get("user")
        if type(existing) is dict:
            existing.update(wg_user)
            existing["sources"] = list(wg_user["sources"])
        else:
            doc = dict(wg_user)
            doc["sources"] = list(wg_user["sources"])
            wg["user"] = doc
        if related:
            rel = data.get("related")
            if type(rel) is not dict:
                rel = data["related"] = {}
            users = rel.get("user")
            if type(users) is not list:
                rel["user"] = list(related)
            else:
                for u in related:
                    if u not in users:
                        users.append(u)
        return env

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
            else:
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
        }

    def close(self) -> None:
        self.directory.close()


def _documents(ident: Identity) -> tuple[dict[str, Any], dict[str, Any], list[str], str | None]:
    related = [v for v in (ident.name, ident.email, ident.id) if v is not None]
    return ident.user_document(), ident.wireguard_document(), list(dict.fromkeys(related)), ident.peer_name


def _copy(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: (v.copy() if type(v) is dict else v) for k, v in doc.items()}
