"""Real exporters and the reference decoder for the netflow tests: softflowd, nfcapd/nfdump, tcpdump.

Why softflowd reads a capture (``-r``) instead of the live tunnel interface: softflowd 1.1.0 opens the
interface without libpcap's immediate mode, and on Linux (TPACKET_V3) a ring block reaches it only
once full, so a lab's few hundred packets sit there indefinitely (observed: "Packets received by
libpcap: 26, processed: 0" after 20 s). ``tcpdump --immediate-mode`` on the WireGuard interface sees
every packet at once; softflowd then turns that real tunnel traffic into real export packets.

``nfcapd -R`` repeats every datagram it receives, unchanged, to our collector, so nfdump and wgsiem
decode the very same export stream.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from wgsiem.lab.netns import netns_argv, run, wait_for
from wgsiem.lab.runtime import Lab

TUNNEL_V6_PREFIX = "fd00:222::"  # unique local addresses inside the lab's tunnel only

_TCP_SERVER = r"""
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2]))); s.listen(1)
print("ready", flush=True)
c, _ = s.accept(); n = 0
while True:
    b = c.recv(65536)
    if not b: break
    n += len(b)
c.sendall(b"ok %d" % n); c.close()
"""
_TCP_CLIENT = r"""
import socket, sys
c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=20)
c.sendall(b"x" * int(sys.argv[3])); c.shutdown(socket.SHUT_WR)
print(c.recv(100).decode())
"""
_UDP6_SENDER = r"""
import socket, sys
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
for _ in range(int(sys.argv[3])):
    s.sendto(b"\0" * 600, (sys.argv[1], int(sys.argv[2])))
"""


def udp_socket_in_namespace(namespace: str, host: str = "127.0.0.1") -> socket.socket:
    """A UDP socket bound inside ``namespace`` (a socket keeps the namespace it was created in).

    Python 3.11 has no ``os.setns``: a short-lived thread calls ``setns(2)`` through libc (it changes
    only that thread's namespace), creates and binds the socket, and ends.
    """
    result: dict[str, Any] = {}

    def inside() -> None:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            fd = os.open(f"/run/netns/{namespace}", os.O_RDONLY)
            try:
                if libc.setns(fd, 0x40000000) != 0:  # CLONE_NEWNET
                    raise OSError(ctypes.get_errno(), "setns failed")
            finally:
                os.close(fd)
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
            s.bind((host, 0))
            result["sock"] = s
        except Exception as exc:
            result["error"] = exc

    t = threading.Thread(target=inside)
    t.start()
    t.join()
    if "error" in result:
        raise result["error"]
    sock: socket.socket = result["sock"]
    return sock


def require_tools(*tools: str) -> list[str]:
    return [t for t in tools if shutil.which(t) is None]


@contextlib.contextmanager
def tcpdump(path: Path, interface: str, bpf: str = "", namespace: str | None = None) -> Iterator[None]:
    """Capture with immediate mode; yields once tcpdump listens, stops (and flushes) on exit."""
    argv = ["tcpdump", "--immediate-mode", "-U", "-n", "-i", interface, "-w", str(path)]
    argv += bpf.split() if bpf else []
    if namespace:
        argv = netns_argv(namespace, argv)
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline().decode()
        if "listening" not in line:
            raise RuntimeError(f"tcpdump did not start: {line}")
        yield
        time.sleep(0.2)  # the last packets handed to the kernel are written before tcpdump stops
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def tcp_exchange(lab: Lab, i: int, nbytes: int, port: int = 5001) -> None:
    """A TCP connection from client ``i`` to the gateway's tunnel address carrying ``nbytes``."""
    gw_ip = str(lab.spec.gateway().tunnel_address.ip)
    server = subprocess.Popen(
        netns_argv(lab.gateway_namespace, [sys.executable, "-c", _TCP_SERVER, gw_ip, str(port)]),
        stdout=subprocess.PIPE,
    )
    try:
        assert server.stdout is not None
        assert server.stdout.readline().strip() == b"ready"
        run(
            netns_argv(
                lab.client_namespace(i), [sys.executable, "-c", _TCP_CLIENT, gw_ip, str(port), str(nbytes)]
            )
        )
        server.wait(timeout=20)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()


def add_tunnel_ipv6(lab: Lab, i: int) -> tuple[str, str]:
    """Give the gateway and client ``i`` IPv6 tunnel addresses (ULA) and allow them; returns both."""
    gw_if, c_if = lab.gateway_interface, lab.client_interface(i)
    gw6, c6 = f"{TUNNEL_V6_PREFIX}1", f"{TUNNEL_V6_PREFIX}{10 + i}"
    plan = lab.spec.client(i)
    allowed = ",".join([*(str(n) for n in plan.allowed_ips), f"{c6}/128"])
    run(netns_argv(lab.gateway_namespace, ["ip", "-6", "addr", "add", f"{gw6}/64", "dev", gw_if, "nodad"]))
    run(
        netns_argv(
            lab.gateway_namespace,
            ["wg", "set", gw_if, "peer", lab.client_public_key(i), "allowed-ips", allowed],
        )
    )
    gw_allowed = ",".join([*(str(n) for n in plan.gateway_allowed_ips), f"{TUNNEL_V6_PREFIX}/64"])
    ns = lab.client_namespace(i)
    run(netns_argv(ns, ["ip", "-6", "addr", "add", f"{c6}/128", "dev", c_if, "nodad"]))
    run(netns_argv(ns, ["wg", "set", c_if, "peer", lab.gateway_public_key, "allowed-ips", gw_allowed]))
    run(netns_argv(ns, ["ip", "-6", "route", "add", f"{TUNNEL_V6_PREFIX}/64", "dev", c_if]))
    return gw6, c6


def send_udp6(lab: Lab, i: int, host: str, datagrams: int, port: int = 9) -> None:
    run(
        netns_argv(
            lab.client_namespace(i), [sys.executable, "-c", _UDP6_SENDER, host, str(port), str(datagrams)]
        )
    )


def lab_tunnel_traffic(lab: Lab, path: Path, *, ipv6: bool = True) -> None:
    """Real tunnel traffic of the lab, captured on the gateway's WireGuard interface into ``path``.

    IPv6 is added after the IPv4 traffic: the lab re-creates a client's gateway peer (with only its
    IPv4 allowed IPs) when it first connects it.
    """
    with tcpdump(path, lab.gateway_interface, namespace=lab.gateway_namespace):
        lab.send(1, 24_000)  # UDP to the discard port; the gateway answers ICMP port unreachable
        lab.send(2, 12_000)
        tcp_exchange(lab, 2, 50_000)
        if ipv6:
            gw6, _ = add_tunnel_ipv6(lab, 1)
            send_udp6(lab, 1, gw6, 5)


class UdpSink:
    """A UDP socket on loopback keeping every datagram it receives (exporters need someone listening:
    an ICMP port-unreachable would make softflowd's next send fail)."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 * 1024 * 1024)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port: int = self.sock.getsockname()[1]
        self.datagrams: list[bytes] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                data, _ = self.sock.recvfrom(65535)
            except TimeoutError:
                continue
            except OSError:
                return
            self.datagrams.append(data)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.sock.close()


def softflowd_replay(pcap: Path, port: int, version: str, work: Path, *extra: str) -> None:
    """softflowd reads ``pcap`` (real tunnel traffic) and exports every flow to 127.0.0.1:``port``.

    softflowd 1.1.0 in ``-r`` mode advances only when its poll loop wakes up, which on an idle box is
    when its control socket is spoken to: so it is poked with ``softflowctl statistics`` until it has
    read the whole file, expired (exported) every flow and exited by itself. ``-a`` places flow times
    at the capture's own timestamps.
    """
    work.mkdir(parents=True, exist_ok=True)
    ctl = work / "softflowd.ctl"
    argv = [
        "softflowd",
        "-r",
        str(pcap),
        "-n",
        f"127.0.0.1:{port}",
        "-v",
        version,
        "-d",
        "-a",
        "-6",
        "-p",
        str(work / "softflowd.pid"),
        "-c",
        str(ctl),
        *extra,
    ]
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:

        def done() -> bool | None:
            if proc.poll() is not None:
                return True
            if ctl.exists():
                subprocess.run(["softflowctl", "-c", str(ctl), "statistics"], capture_output=True, timeout=10)
            return None

        wait_for(done, timeout=60, what="softflowd to export the capture and exit", fix="", interval=0.1)
        if proc.returncode != 0:
            raise RuntimeError(f"softflowd failed: {proc.stderr.read().decode() if proc.stderr else ''}")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


class Nfcapd:
    """nfcapd on 127.0.0.1:``port`` writing into ``directory``; ``repeat_to`` gets every datagram too."""

    def __init__(self, directory: Path, repeat_to: int | None = None) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        probe.bind(("127.0.0.1", 0))
        self.port = probe.getsockname()[1]
        probe.close()
        argv = ["nfcapd", "-w", str(directory), "-b", "127.0.0.1", "-p", str(self.port), "-t", "3600"]
        if repeat_to is not None:
            argv += ["-R", f"127.0.0.1/{repeat_to}"]
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        wait_for(self._bound, timeout=10, what="nfcapd to listen", fix="is nfdump installed?")

    def _bound(self) -> bool | None:
        if self.proc.poll() is not None:
            raise RuntimeError(f"nfcapd exited with {self.proc.returncode}")
        out = subprocess.run(["ss", "-Hlun", f"sport = :{self.port}"], capture_output=True, text=True).stdout
        return True if out.strip() else None

    def stop(self) -> Path:
        """Stop (nfcapd flushes and closes its file on SIGTERM); returns the file it wrote."""
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=20)
        files = sorted(p for p in self.directory.iterdir() if p.name.startswith("nfcapd.") and p.is_file())
        if not files:
            raise RuntimeError("nfcapd wrote no file")
        return files[-1]


def nfdump_records(path: Path) -> list[dict[str, Any]]:
    """``TZ=UTC nfdump -r FILE -o json``: one dict per flow record (times with milliseconds)."""
    out = subprocess.run(
        ["nfdump", "-N", "-r", str(path), "-o", "json"],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "TZ": "UTC"},
    ).stdout
    return [r for r in json.loads(out or "[]") if r.get("type") == "FLOW"]


def replay_to(port: int, datagrams: list[bytes]) -> None:
    """Send ``datagrams`` in order to 127.0.0.1:``port`` from one socket."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        for d in datagrams:
            s.sendto(d, ("127.0.0.1", port))
            time.sleep(0.001)
    finally:
        s.close()


def wait_until(pred: Callable[[], Any], timeout: float, what: str) -> Any:
    return wait_for(lambda: pred() or None, timeout=timeout, what=what, fix="", interval=0.05)


def env_ok() -> bool:
    return os.geteuid() == 0
