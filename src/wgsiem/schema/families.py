"""Which target class an ECS document belongs to: one decision shared by the CIM and OCSF mappers.

The decision is made from ECS categorization (``event.kind``, ``event.category``, ``event.dataset``),
not from a table of ``event.action`` names, so an action a source adds later still lands in a family
(the goldens pin every action known today). In order:

========== ================================================= ======================= ==================
family     ECS                                               CIM data model          OCSF class
========== ================================================= ======================= ==================
alert      ``event.kind: alert``                             Alerts                  Detection Finding
identity   ``authentication`` from ``wireguard.context``      Authentication          Authentication
tunnel     ``session`` or ``authentication`` (a WireGuard     Network_Sessions (VPN)  Tunnel Activity
           handshake, keypair or session)
change     ``configuration`` (not a ``state`` record)        Change                  Entity Management
traffic    ``network``                                       Network_Traffic         Network Activity
other      anything else (daemon/driver lifecycle,           — (no data model)       Base Event
           ``messages-suppressed``, change tickets)
========== ================================================= ======================= ==================
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, Literal

__all__ = ["FAMILIES", "Family", "family", "gateway_interface", "peer_key", "peer_name"]

Family = Literal["alert", "identity", "tunnel", "change", "traffic", "other"]
FAMILIES: Final[tuple[Family, ...]] = ("alert", "identity", "tunnel", "change", "traffic", "other")

_EMPTY: Mapping[str, Any] = {}


def family(event: Mapping[str, Any]) -> Family:
    """The family of a document whose ``event`` object is ``event`` (see the module table)."""
    cats = event.get("category") or ()
    if event.get("kind") == "alert":
        return "alert"
    if "authentication" in cats and event.get("dataset") == "wireguard.context":
        return "identity"
    if "session" in cats or "authentication" in cats:
        return "tunnel"
    if "configuration" in cats and event.get("kind") != "state":
        return "change"
    if "network" in cats:
        return "traffic"
    return "other"


def gateway_interface(doc: Mapping[str, Any]) -> str | None:
    """The WireGuard interface the event is about (``wireguard.interface.name``, else the observer's)."""
    wg = doc.get("wireguard") or _EMPTY
    name = (wg.get("interface") or _EMPTY).get("name")
    if name is None:
        name = (((doc.get("observer") or _EMPTY).get("ingress") or _EMPTY).get("interface") or _EMPTY).get(
            "name"
        )
    return name if isinstance(name, str) else None


def peer_key(doc: Mapping[str, Any]) -> str | None:
    """The peer's public key when the event names one (public keys are public; never a private key)."""
    key = ((doc.get("wireguard") or _EMPTY).get("peer") or _EMPTY).get("public_key")
    return key if isinstance(key, str) else None


def peer_name(doc: Mapping[str, Any]) -> str | None:
    """Who the event is about: ``user.name``, else the peer's friendly name from its config."""
    name = (doc.get("user") or _EMPTY).get("name")
    if not isinstance(name, str):
        name = ((doc.get("wireguard") or _EMPTY).get("peer") or _EMPTY).get("name")
    return name if isinstance(name, str) else None
