"""UDP traffic from inside a namespace, so packets really cross the tunnel.

Why a child interpreter: a socket belongs to the namespace it was created in, and Python 3.11 has no
``os.setns``; ``ip netns exec NS python -c ...`` is the plain way to create it there. Datagrams go to
the discard port (9) of the gateway's tunnel address: nothing listens, so the gateway answers with
(rate-limited) ICMP port-unreachable through the tunnel, which gives realistic traffic both ways.
"""

from __future__ import annotations

import sys

from wgsiem.lab.netns import netns_argv, run

__all__ = ["DATAGRAM_BYTES", "DISCARD_PORT", "send_udp"]

DISCARD_PORT = 9
DATAGRAM_BYTES = 1200
"""Below the tunnel MTU (1420 - 28 bytes of IPv4+UDP), so no datagram is fragmented."""

# argv: host port total_bytes datagram_bytes pause_every pause_secs. Prints the bytes sent.
# At least one datagram is sent (an empty one for total 0), which is enough to start a handshake.
# ENOBUFS/EAGAIN (the TUN queue is full) are retried after a short pause instead of losing the datagram.
_SENDER = r"""
import errno, socket, sys, time
host = sys.argv[1]
port, total, size, every = (int(a) for a in sys.argv[2:6])
pause = float(sys.argv[6])
payload = b"\x00" * size
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sent = n = 0
while sent < total or n == 0:
    chunk = min(size, total - sent)
    try:
        s.sendto(payload[:chunk], (host, port))
    except OSError as e:
        if e.errno in (errno.ENOBUFS, errno.EAGAIN):
            time.sleep(0.002)
            continue
        raise
    sent += chunk
    n += 1
    if every and n % every == 0:
        time.sleep(pause)
print(sent)
"""


def send_udp(
    namespace: str,
    host: str,
    nbytes: int,
    *,
    port: int = DISCARD_PORT,
    datagram_bytes: int = DATAGRAM_BYTES,
    pace: bool = True,
    timeout: float = 300.0,
) -> int:
    """Send ``nbytes`` of UDP payload from ``namespace`` to ``host``; returns the bytes handed to the kernel.

    ``pace`` pauses 1 ms every 32 datagrams (about 38 MB/s) so wireguard-go's queues do not overflow;
    without it the datagrams go as fast as the sender can write them (a burst; some may be dropped).
    A zero-byte send still sends one empty datagram, which is enough to start a handshake.
    """
    every, pause = (32, 0.001) if pace else (0, 0.0)
    total = max(nbytes, 0)
    out = run(
        netns_argv(
            namespace,
            [
                sys.executable,
                "-c",
                _SENDER,
                host,
                str(port),
                str(total),
                str(datagram_bytes),
                str(every),
                str(pause),
            ],
        ),
        timeout=timeout,
    )
    return int(out.strip() or 0)
