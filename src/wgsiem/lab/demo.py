"""A scripted day in the life of a VPN, played on the lab for the quick start.

Each round: every client connects and moves some traffic; one client roams to another network and back;
one goes quiet long enough for its session to end. It runs until stopped, so `wgsiem run --live` shows
sessions opening and closing, roaming and traffic.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable

from wgsiem.lab.runtime import Lab

__all__ = ["play"]


def play(
    lab: Lab, *, rounds: int | None = None, quiet_secs: float = 200.0, log: Callable[[str], None] = print
) -> None:
    rnd = random.Random(7)
    clients = lab.clients
    n = 0
    while rounds is None or n < rounds:
        n += 1
        for i in clients:
            lab.connect(i)
            moved = lab.send(i, rnd.randint(20_000, 400_000))
            log(f"round {n}: client {i} connected and sent {moved} bytes")
        if clients:
            roamer = clients[n % len(clients)]
            log(f"round {n}: client {roamer} roams to {lab.roam(roamer)}")
            quiet = clients[(n + 1) % len(clients)]
            lab.idle(quiet)
            log(f"round {n}: client {quiet} goes quiet for {quiet_secs:.0f}s (its session will end)")
        deadline = time.monotonic() + quiet_secs
        while time.monotonic() < deadline:
            for i in clients:
                if clients and i != clients[(n + 1) % len(clients)]:
                    lab.send(i, rnd.randint(1_000, 50_000))
            time.sleep(10)
