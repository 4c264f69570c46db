"""A real WireGuard lab: wireguard-go gateway and clients in network namespaces, driven from Python.

Why it exists: wgsiem's sources must be tested against what WireGuard really reports (handshakes,
roaming endpoints, counter resets, 100k-peer dumps), and its fixtures must be verbatim captures. This
module builds that world from a :class:`~wgsiem.lab.topology.LabSpec` and gives tests verbs that make
things happen (``connect``, ``roam``, ``remove_peer``, ``restart_gateway``...), each returning only once
the gateway has observably reacted — every wait polls a condition with a deadline.

Traffic stays on veths between the lab's own namespaces; "public" addresses are documentation ranges.
"""

from __future__ import annotations

import base64
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

from wgsiem.lab.keys import b64_to_hex, generate_keypair, generate_psk, random_public_keys, read_key
from wgsiem.lab.netns import (
    delete_namespace,
    find_wireguard_go,
    ip_batch,
    list_namespaces,
    namespace_pids,
    netns_argv,
    process_alive,
    require_environment,
    run,
    spawn_wireguard_go,
    stop_process,
    wait_for,
    wg_argv,
)
from wgsiem.lab.report import down_report, lab_report
from wgsiem.lab.state import ClientState, InterfaceState, LabState, load_state, save_state
from wgsiem.lab.topology import (
    CLIENT_VETH,
    WIREGUARD_GO_MAX_PEERS,
    ClientPlan,
    GatewayPlan,
    LabError,
    LabSpec,
    RoamTarget,
    client_ip_batch,
    gateway_ip_batch,
    interface_pattern,
    namespace_pattern,
    roam_target,
    veth_batch,
)
from wgsiem.lab.traffic import send_udp
from wgsiem.lab.uapi import (
    SOCKET_DIR,
    UapiPeer,
    bulk_peer_lines,
    parse_get,
    set_body,
    socket_path,
    uapi_get,
    uapi_set,
)
from wgsiem.lab.wgconf import (
    client_peer_args,
    client_tunnel_batch,
    gateway_peer_args,
    gateway_tunnel_batch,
    interface_args,
    roam_batch,
)

__all__ = ["Lab", "LabError", "LabSpec", "UapiPeer"]

READY_TIMEOUT = 15.0
HANDSHAKE_TIMEOUT = 30.0
"""WireGuard retries a lost initiation only after REKEY_TIMEOUT (5 s): leave room for a few."""
RESEND_EVERY = 1.0


class Lab:
    """One lab, named by ``spec.name``, whose state lives in ``state_dir``.

    Constructing a Lab touches nothing; ``up()`` builds it (after removing any stale lab of the same
    name) and ``down()`` removes every trace. A Lab built from the same ``state_dir`` in another process
    (see :meth:`load`) drives the same running lab.
    """

    def __init__(self, spec: LabSpec, state_dir: Path) -> None:
        self._requested = spec
        self.state_dir = Path(state_dir).absolute()
        self._children: dict[str, subprocess.Popen[bytes]] = {}
        self._secrets: set[str] = set()
        self._state = load_state(self.state_dir)
        self._foreign: str | None = None
        if self._state is not None and self._state.name != spec.name:
            # The directory records another lab: ours to tear down (it lives in our state dir), not to drive.
            self._foreign, self._state = self._state.name, None
        self._remember_secrets()

    @property
    def spec(self) -> LabSpec:
        """The running lab's spec (from its state) or, before ``up()``, the one asked for."""
        return self._state.spec if self._state is not None else self._requested

    @classmethod
    def load(cls, state_dir: Path) -> Lab:
        """The lab recorded in ``state_dir`` (for commands run after ``up`` from another process)."""
        state = load_state(Path(state_dir))
        if state is None:
            raise LabError(f"no lab state in {state_dir}", fix="run `wgsiem lab up` first")
        return cls(state.spec, Path(state_dir))

    def __enter__(self) -> Lab:
        try:
            self.up()
        except BaseException:
            self.down()
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.down()

    # -- names and keys ------------------------------------------------------------------------------

    @property
    def gateway_namespace(self) -> str:
        return self.spec.gateway_namespace

    @property
    def gateway_interface(self) -> str:
        return self.spec.gateway().interface

    @property
    def gateway_public_key(self) -> str:
        return self._st.gateways[self.gateway_interface].public_key

    @property
    def clients(self) -> list[int]:
        """Indices of the lab's clients, including those added live."""
        return sorted(self._st.clients)

    def client_namespace(self, i: int) -> str:
        return self.spec.client(i).namespace

    def client_interface(self, i: int) -> str:
        return self.spec.client(i).interface

    def client_public_key(self, i: int) -> str:
        return self._client_iface(i).public_key

    def log_path(self, interface: str) -> Path:
        """wireguard-go's debug log for ``interface`` (appended across gateway restarts)."""
        return self.state_dir / f"{interface}.log"

    def secrets(self) -> list[str]:
        """Every private key and preshared key of this lab (base64), to scan outputs for leaks.

        Remembered in memory, so the list is still complete after ``down()`` removed the key files.
        """
        self._remember_secrets()
        return sorted(self._secrets)

    # -- lifecycle -----------------------------------------------------------------------------------

    def up(self) -> None:
        """Build the lab; returns once every wireguard-go answers on its UAPI socket and is configured."""
        require_environment()
        self.down()
        self.state_dir.mkdir(parents=True, exist_ok=True)
        spec = self._requested
        for log in self.state_dir.glob("*.log"):  # a new lab starts new logs; restarts append
            if interface_pattern(spec.name).fullmatch(log.stem):
                log.unlink()
        plans = spec.client_plans()
        self._state = LabState(name=spec.name, ipv6=spec.ipv6, clients_at_up=spec.clients)
        self._save()
        gw = spec.gateway()
        for ns in [gw.namespace, *(p.namespace for p in plans)]:
            run(["ip", "netns", "add", ns])
        ip_batch(gw.namespace, gateway_ip_batch(spec, plans))
        for plan in plans:
            ip_batch(plan.namespace, client_ip_batch(plan))
            self._new_client_state(plan)
        self._start_gateway_interface(gw, fresh_key=True)
        self._start_clients(plans)
        self._configure_gateway(gw)
        for plan in plans:
            self._configure_client(plan)
        self._save()

    def down(self) -> None:
        """Remove processes, namespaces, sockets and keys of this lab. Safe twice and after a partial up."""
        require_environment()
        names = {self._requested.name}
        if self._foreign is not None:
            names.add(self._foreign)
        for name in sorted(names):
            self._remove_traces(name)
        for child in self._children.values():
            child.poll()
        self._children.clear()
        self._remember_secrets()
        shutil.rmtree(self.state_dir / "keys", ignore_errors=True)
        shutil.rmtree(self.state_dir / "views", ignore_errors=True)
        (self.state_dir / "lab.json").unlink(missing_ok=True)
        self._state = None
        self._foreign = None

    def _remove_traces(self, name: str) -> None:
        """Stop lab ``name``'s processes, delete its namespaces and stale sockets, matched exactly by name."""
        if_re, ns_re = interface_pattern(name), namespace_pattern(name)
        found = find_wireguard_go(lambda interface: if_re.fullmatch(interface) is not None)
        for interface, pid in sorted(found.items()):
            stop_process(pid, ["wireguard-go", "-f", interface], child=self._children.pop(interface, None))
        for ns in list_namespaces():
            if ns_re.fullmatch(ns):
                for pid in namespace_pids(ns):  # anything else left in our namespace, e.g. a sender
                    stop_process(pid)
                delete_namespace(ns)
        if SOCKET_DIR.is_dir():
            for sock in SOCKET_DIR.glob("*.sock"):
                if if_re.fullmatch(sock.name.removesuffix(".sock")):
                    sock.unlink(missing_ok=True)

    def status(self) -> dict[str, Any]:
        """A JSON-ready picture of the lab: processes, names, public keys, and what the gateway sees."""
        namespaces = [ns for ns in list_namespaces() if namespace_pattern(self.spec.name).fullmatch(ns)]
        if self._state is None:
            return down_report(self.spec.name, self.state_dir, namespaces)
        st = self._state
        ifaces = [*st.gateways.values(), *st.client_interfaces.values()]
        running = {i.interface: self._running(i) for i in ifaces}
        seen: dict[str, UapiPeer] | None = None
        if running.get(self.gateway_interface):
            try:
                seen = parse_get(uapi_get(self.gateway_interface, timeout=10.0)).peers
            except LabError:
                seen = None
        return lab_report(st, self.state_dir, namespaces, running, seen)

    # -- observing -----------------------------------------------------------------------------------

    def wg_argv(self, namespace: str, *args: str) -> list[str]:
        """argv running ``wg args`` in ``namespace``, seeing only that namespace's interfaces.

        ``/var/run/wireguard`` is shared by all namespaces, so a plain ``ip netns exec NS wg show all``
        would also list the clients (and any other lab on the host); see :mod:`wgsiem.lab.netns`.
        """
        view = self.state_dir / "views" / namespace
        view.mkdir(parents=True, exist_ok=True)
        st = self._st
        mine = [s.interface for s in [*st.gateways.values(), *st.client_interfaces.values()]]
        return wg_argv(namespace, [i for i in mine if self._namespace_of(i) == namespace], view, args)

    def wg(self, namespace: str, *args: str) -> str:
        return run(self.wg_argv(namespace, *args))

    def gateway_dump(self) -> str:
        """``wg show all dump`` as run in the gateway namespace."""
        return self.wg(self.gateway_namespace, "show", "all", "dump")

    def gateway_peer(self, i: int) -> UapiPeer | None:
        """What the gateway currently reports for client ``i``'s peer (None if it has no such peer)."""
        raw = uapi_get(self.gateway_interface)
        return parse_get(raw).peers.get(b64_to_hex(self.client_public_key(i)))

    # -- actions -------------------------------------------------------------------------------------

    def connect(self, i: int, timeout: float = HANDSHAKE_TIMEOUT) -> UapiPeer:
        """Send through client ``i``'s tunnel until the gateway reports a handshake and received bytes."""
        before = self._prepare_session(i)
        return self._drive(
            i,
            lambda p: p.last_handshake_sec > 0 and p.rx_bytes > before.rx_bytes,
            what=f"a handshake from client {i} at the gateway",
            timeout=timeout,
        )

    def send(self, i: int, nbytes: int, timeout: float = 120.0) -> int:
        """Send ``nbytes`` of UDP payload from client ``i`` to the gateway through the tunnel, paced.

        Returns once the gateway's received-bytes counter for the peer grew by at least ``nbytes``
        (WireGuard overhead makes the growth a little larger); the growth is returned.
        """
        return self._send(i, nbytes, pace=True, timeout=timeout)

    def burst(self, i: int, nbytes: int, timeout: float = 120.0) -> int:
        """Like :meth:`send` but unpaced; returns when all arrived or the counter stopped moving.

        Datagrams dropped by full queues are not resent, so the returned growth may be below ``nbytes``.
        """
        return self._send(i, nbytes, pace=False, timeout=timeout)

    def roam(self, i: int, new_outer_ip: str | None = None, timeout: float = HANDSHAKE_TIMEOUT) -> str:
        """Move client ``i`` to another outer address; returns the new endpoint the gateway reports.

        wireguard-go keeps sending from its cached source address until the peer's endpoint is set
        again, so the endpoint is re-set with ``wg set`` after the address change, as a roaming client's
        network manager would.
        """
        st = self._client_state(i)
        target = roam_target(self.spec, i, new_outer_ip)
        taken = {
            a.split("/")[0]: j
            for j, c in self._st.clients.items()
            if j != i
            for a in (c.outer_v4, c.outer_v6)
            if a
        }
        if str(target.address.ip) in taken:
            raise LabError(
                f"{target.address.ip} is client {taken[str(target.address.ip)]}'s address",
                fix="pick an address no other client uses",
            )
        self._prepare_session(i)
        self._move_outer_address(i, st, target)
        self._set_client_peer(i)
        host = str(target.address.ip)
        peer = self._drive(
            i,
            lambda p: p.endpoint is not None and p.endpoint.rpartition(":")[0].strip("[]") == host,
            what=f"the gateway to see client {i} at {host}",
            timeout=timeout,
        )
        assert peer.endpoint is not None
        return peer.endpoint

    def idle(self, i: int) -> None:
        """Make client ``i`` send nothing at all until the next ``connect``/``send``/``roam``.

        Persistent keepalive is already off, but WireGuard still sends a passive keepalive 10 s after
        receiving data, and wireguard-go ignores its link going down here; withdrawing the client's
        own peer entry for the gateway stops every packet at once. The gateway keeps its view of the
        peer (endpoint, last handshake, counters), exactly as for a client that went quiet.
        """
        st = self._client_state(i)
        if st.idle:
            return
        plan = self.spec.client(i)
        run(
            netns_argv(
                plan.namespace, ["wg", "set", plan.interface, "peer", self.gateway_public_key, "remove"]
            )
        )
        st.idle = True
        self._save()

    def remove_peer(self, i: int) -> None:
        """Remove client ``i``'s peer from the gateway (``wg set <gw> peer <key> remove``)."""
        st = self._client_state(i)
        run(
            netns_argv(
                self.gateway_namespace,
                ["wg", "set", self.gateway_interface, "peer", self.client_public_key(i), "remove"],
            )
        )
        st.removed = True
        self._save()

    def add_peer(self, i: int) -> None:
        """Put client ``i``'s peer back on the gateway after :meth:`remove_peer`."""
        st = self._client_state(i)
        run(
            netns_argv(
                self.gateway_namespace, ["wg", "set", self.gateway_interface, *self._gateway_peer_args(i)]
            )
        )
        st.removed = False
        self._save()

    def add_client(self) -> int:
        """A new client namespace, linked to the bridge, whose peer is added live to the gateway."""
        i = max(self._st.clients, default=0) + 1
        plan = self.spec.client(i)
        run(["ip", "netns", "add", plan.namespace])
        ip_batch(self.gateway_namespace, veth_batch(plan))
        ip_batch(plan.namespace, client_ip_batch(plan))
        self._new_client_state(plan)
        self._start_clients((plan,))
        self._configure_client(plan)
        self.add_peer(i)
        return i

    def restart_gateway(self) -> None:
        """Kill the gateway's wireguard-go and start a fresh one with the same configuration.

        The interface is recreated, so every peer's counters and handshake start from zero, as after a
        gateway reboot. Synthetic bulk peers are not re-added (they are not part of the configuration).
        """
        gw = self.spec.gateway()
        iface = self._st.gateways[gw.interface]
        if iface.pid is not None:
            stop_process(
                iface.pid, ["wireguard-go", "-f", gw.interface], child=self._children.pop(gw.interface, None)
            )
        socket_path(gw.interface).unlink(missing_ok=True)
        self._start_gateway_interface(gw, fresh_key=False)
        self._configure_gateway(gw)
        self._save()

    def add_gateway_interface(self) -> str:
        """A second (third...) WireGuard interface in the gateway namespace, without peers.

        Exists so tests and fixtures can see ``wg show all dump`` with several interfaces; fill it with
        :meth:`add_bulk_peers` (``interface=``).
        """
        gw = self.spec.gateway(len(self._st.gateways))
        self._start_gateway_interface(gw, fresh_key=True)
        self._configure_gateway(gw)
        return gw.interface

    def add_bulk_peers(self, n: int, interface: str | None = None, timeout: float = 600.0) -> list[str]:
        """Add ``n`` synthetic peers to a gateway interface with one UAPI write; returns their public keys.

        Keys are random, allowed IPs count up from 10.223.0.0/32, endpoints are distinct
        (address, port) pairs in 203.0.113.0/24 (see :func:`~wgsiem.lab.topology.bulk_peer_slot`).
        wireguard-go holds at most 65536 peers per interface: for 100k, use two gateway interfaces.
        """
        if n < 0:
            raise LabError(f"cannot add {n} peers", fix="pass a positive count")
        target = interface or self.gateway_interface
        if target not in self._st.gateways:
            raise LabError(f"{target} is not a gateway interface of this lab", fix="see `lab status`")
        present = (b"\n" + uapi_get(target)).count(b"\npublic_key=")
        if present + n > WIREGUARD_GO_MAX_PEERS:
            raise LabError(
                f"{target} has {present} peers; {n} more would pass wireguard-go's limit of "
                f"{WIREGUARD_GO_MAX_PEERS} peers per interface (and crash it)",
                fix="spread them: lab.add_bulk_peers(n, interface=lab.add_gateway_interface())",
            )
        keys = random_public_keys(n)
        uapi_set(target, set_body(bulk_peer_lines(self._st.bulk_peers, keys)), timeout=timeout)
        self._st.bulk_peers += n
        self._save()
        return [base64.b64encode(k).decode() for k in keys]

    # -- internals -----------------------------------------------------------------------------------

    @property
    def _st(self) -> LabState:
        if self._state is None:
            raise LabError(f"lab {self.spec.name!r} is not up", fix="run `wgsiem lab up` (or Lab.up()) first")
        return self._state

    def _save(self) -> None:
        save_state(self.state_dir, self._st)

    def _remember_secrets(self) -> None:
        if self._state is None:
            return
        files = [Path(s.private_key_file) for s in self._state.gateways.values()]
        files += [Path(s.private_key_file) for s in self._state.client_interfaces.values()]
        files += [Path(c.psk_file) for c in self._state.clients.values() if c.psk_file]
        for f in files:
            path = f if f.is_absolute() else self.state_dir / f
            if path.exists():
                self._secrets.add(read_key(path))

    def _key_file(self, name: str) -> Path:
        return self.state_dir / "keys" / name

    def _namespace_of(self, interface: str) -> str:
        st = self._st
        for iface in [*st.gateways.values(), *st.client_interfaces.values()]:
            if iface.interface == interface:
                return iface.namespace
        raise LabError(f"{interface} is not an interface of this lab", fix="see `wgsiem lab status`")

    def _running(self, iface: InterfaceState) -> bool:
        return iface.pid is not None and process_alive(iface.pid) and socket_path(iface.interface).exists()

    def _client_state(self, i: int) -> ClientState:
        try:
            return self._st.clients[i]
        except KeyError:
            raise LabError(f"client {i} does not exist", fix=f"clients are {self.clients}") from None

    def _client_iface(self, i: int) -> InterfaceState:
        self._client_state(i)
        return self._st.client_interfaces[i]

    def _new_client_state(self, plan: ClientPlan) -> None:
        self._st.clients[plan.index] = ClientState(
            index=plan.index,
            outer_v4=str(plan.outer_v4),
            outer_v4_via=str(plan.outer_v4_via),
            outer_v6=str(plan.outer_v6) if plan.outer_v6 else None,
            outer_v6_via=str(plan.outer_v6_via) if plan.outer_v6_via else None,
            psk_file=str(generate_psk(self._key_file(f"c{plan.index}.psk"))) if plan.preshared_key else None,
        )
        self._save()

    def _spawn(self, namespace: str, interface: str) -> InterfaceState:
        """Start wireguard-go and record its pid at once, so a failing ``up`` can still be torn down."""
        child = spawn_wireguard_go(namespace, interface, self.log_path(interface))
        self._children[interface] = child
        key = generate_keypair(self._key_file(f"{interface}.key"))
        self._secrets.add(read_key(key.private_file))
        return InterfaceState(interface, namespace, str(key.private_file), key.public, pid=child.pid)

    def _await_ready(self, iface: InterfaceState) -> None:
        child = self._children.get(iface.interface)

        def ready() -> bool | None:
            if child is not None and child.poll() is not None:
                tail = self.log_path(iface.interface).read_text(errors="replace")[-600:]
                raise LabError(
                    f"wireguard-go for {iface.interface} exited with {child.returncode}: {tail}",
                    fix=f"see {self.log_path(iface.interface)}; is /dev/net/tun available?",
                )
            if not socket_path(iface.interface).exists():
                return None
            try:
                uapi_get(iface.interface, timeout=2.0)
            except LabError:
                return None
            return True

        wait_for(
            ready,
            timeout=READY_TIMEOUT,
            what=f"wireguard-go's UAPI socket for {iface.interface}",
            fix=f"see {self.log_path(iface.interface)}",
        )

    def _start_gateway_interface(self, gw: GatewayPlan, *, fresh_key: bool) -> None:
        old = self._st.gateways.get(gw.interface)
        if fresh_key or old is None:
            iface = self._spawn(gw.namespace, gw.interface)
        else:
            child = spawn_wireguard_go(gw.namespace, gw.interface, self.log_path(gw.interface))
            self._children[gw.interface] = child
            iface = InterfaceState(
                gw.interface, gw.namespace, old.private_key_file, old.public_key, child.pid
            )
        iface.listen_port = gw.listen_port
        self._st.gateways[gw.interface] = iface
        self._save()
        self._await_ready(iface)

    def _start_clients(self, plans: tuple[ClientPlan, ...]) -> None:
        started = [self._spawn(p.namespace, p.interface) for p in plans]
        for plan, iface in zip(plans, started, strict=True):
            self._st.client_interfaces[plan.index] = iface
        self._save()
        for iface in started:
            self._await_ready(iface)

    def _gateway_peer_args(self, i: int) -> list[str]:
        psk = self._client_state(i).psk_file
        return gateway_peer_args(self.spec.client(i), self.client_public_key(i), psk)

    def _client_peer_args(self, i: int) -> list[str]:
        psk = self._client_state(i).psk_file
        return client_peer_args(self.spec.client(i), self.gateway_public_key, psk)

    def _configure_gateway(self, gw: GatewayPlan) -> None:
        iface = self._st.gateways[gw.interface]
        args = interface_args(gw.interface, iface.private_key_file, gw.listen_port)
        if gw.interface == self.gateway_interface:
            for i in sorted(self._st.clients):
                if not self._st.clients[i].removed:
                    args += self._gateway_peer_args(i)
        run(netns_argv(gw.namespace, ["wg", *args]))
        ip_batch(gw.namespace, gateway_tunnel_batch(gw))

    def _configure_client(self, plan: ClientPlan) -> None:
        iface = self._st.client_interfaces[plan.index]
        args = interface_args(plan.interface, iface.private_key_file) + self._client_peer_args(plan.index)
        run(netns_argv(plan.namespace, ["wg", *args]))
        ip_batch(plan.namespace, client_tunnel_batch(plan))

    def _set_client_peer(self, i: int) -> None:
        """(Re-)set client ``i``'s peer entry for the gateway; this also resets its cached source address."""
        plan = self.spec.client(i)
        run(netns_argv(plan.namespace, ["wg", "set", plan.interface, *self._client_peer_args(i)]))
        self._client_state(i).idle = False
        self._save()

    def _prepare_session(self, i: int) -> UapiPeer:
        """Make sure client ``i`` can reach the gateway; returns the gateway's current view of it.

        When the gateway has no handshake for the peer (never connected, or the gateway restarted and
        forgot its sessions) the client's gateway-peer entry is recreated: the client would otherwise
        keep using a session the gateway no longer knows for up to 15 s before re-handshaking.
        """
        st = self._client_state(i)
        if st.removed:
            raise LabError(f"client {i}'s peer was removed from the gateway", fix=f"call add_peer({i}) first")
        peer = self.gateway_peer(i)
        if peer is None:
            raise LabError(f"the gateway has no peer for client {i}", fix="check `wgsiem lab status`")
        if peer.last_handshake_sec == 0 and not st.idle:
            plan = self.spec.client(i)
            run(
                netns_argv(
                    plan.namespace, ["wg", "set", plan.interface, "peer", self.gateway_public_key, "remove"]
                )
            )
            st.idle = True
        if st.idle:
            self._set_client_peer(i)
        return peer

    def _drive(self, i: int, done: Callable[[UapiPeer], bool], *, what: str, timeout: float) -> UapiPeer:
        """Send an empty datagram from client ``i`` every second until ``done(gateway_peer)`` holds."""
        plan = self.spec.client(i)
        next_send = 0.0

        def check() -> UapiPeer | None:
            nonlocal next_send
            now = time.monotonic()
            if now >= next_send:
                send_udp(plan.namespace, str(self.spec.gateway().tunnel_address.ip), 0)
                next_send = now + RESEND_EVERY
            peer = self.gateway_peer(i)
            return peer if peer is not None and done(peer) else None

        return wait_for(check, timeout=timeout, what=what, fix=self._log_hint(i))

    def _send(self, i: int, nbytes: int, *, pace: bool, timeout: float) -> int:
        if nbytes < 0:
            raise LabError(f"cannot send {nbytes} bytes", fix="pass a positive byte count")
        before = self._prepare_session(i)
        if before.last_handshake_sec == 0:
            before = self.connect(i)
        plan = self.spec.client(i)
        gateway_ip = str(self.spec.gateway().tunnel_address.ip)
        deadline = time.monotonic() + timeout

        def grown_now() -> int:
            peer = self.gateway_peer(i)
            return (peer.rx_bytes if peer else 0) - before.rx_bytes

        # A paced send must arrive in full: datagrams lost on the way (seen here when wireguard-go is
        # starved of CPU) are sent again, for what is still missing, once the counter stops moving.
        to_send = nbytes
        last_round = 0
        last = {"rx": -1, "since": 0.0}

        def settled() -> int | None:
            grown = grown_now()
            if grown >= nbytes:
                return grown
            now = time.monotonic()
            if grown != last["rx"]:
                last.update(rx=grown, since=now)
            elif now - last["since"] >= (1.0 if not pace else 3.0):
                return grown  # nothing more is coming from this round
            return None

        while True:
            send_udp(
                plan.namespace, gateway_ip, to_send, pace=pace, timeout=max(1.0, deadline - time.monotonic())
            )
            last.update(rx=-1, since=time.monotonic())
            grown = wait_for(
                settled,
                timeout=max(0.0, deadline - time.monotonic()),
                what=f"{nbytes} bytes from client {i} to reach the gateway",
                fix=self._log_hint(i),
            )
            if grown >= nbytes or not pace:
                return grown  # a burst: what was dropped will not come
            if time.monotonic() >= deadline:
                raise LabError(
                    f"timed out after {timeout:g}s waiting for {nbytes} bytes from client {i} "
                    f"to reach the gateway (got {grown})",
                    fix=self._log_hint(i),
                )
            if grown == last_round:
                # nothing at all got through this round: re-create the client's tunnel (new handshake)
                self.idle(i)
            self._prepare_session(i)
            last_round = grown
            to_send = nbytes - grown

    def _move_outer_address(self, i: int, st: ClientState, target: RoamTarget) -> None:
        if target.version == 4:
            old = st.outer_v4
            st.outer_v4, st.outer_v4_via = str(target.address), str(target.via)
        elif st.outer_v6 is None:
            raise LabError("this lab has no IPv6", fix="build it with ipv6=True (`lab up --ipv6`)")
        else:
            old = st.outer_v6
            st.outer_v6, st.outer_v6_via = str(target.address), str(target.via)
        if old != str(target.address):  # staying put only re-sets the endpoint
            ns = self.spec.client(i).namespace
            if target.version == 4:
                # A new address in the old one's subnet is added as a secondary; without promotion,
                # deleting the primary would take the secondary (the client's new address) with it.
                run(netns_argv(ns, ["sysctl", "-qw", f"net.ipv4.conf.{CLIENT_VETH}.promote_secondaries=1"]))
            ip_batch(ns, roam_batch(old, target))
        self._save()

    def _log_hint(self, i: int) -> str:
        return f"see {self.log_path(self.gateway_interface)} and {self.log_path(self.client_interface(i))}"
