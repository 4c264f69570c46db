"""Fixtures shared by every test tier.

``make_lab`` builds real WireGuard labs (wireguard-go in network namespaces, see ``wgsiem.lab``) and
always tears them down, even when the test fails, so a red test never leaves namespaces, processes
or sockets behind for the next one.

A failing test's report never shows key material: the private and preshared keys of every lab built
in this process, and the value of any ``PrivateKey``/``PresharedKey``/``private_key``/``preshared_key``
line, are redacted from the report and its captured output (pytest truncates long values, so a key's
first 16 characters are redacted too).
"""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

from wgsiem.lab.runtime import Lab
from wgsiem.lab.topology import LabSpec

_lab_counter = itertools.count()
_LAB_SECRETS: set[str] = set()
_KEY_VALUE = re.compile(
    r"((?:PrivateKey|PresharedKey|private[_-]key|preshared[_-]key)['\"]?\s*[=:]\s*['\"]?)[A-Za-z0-9+/]{8,}=?"
)


def redact_secrets(text: str) -> str:
    """``text`` with every known lab key (and any value after a private/preshared key name) replaced."""
    text = _KEY_VALUE.sub(r"\1[REDACTED]", text)
    for secret in _LAB_SECRETS:
        if secret[:16] in text:
            text = text.replace(secret, "[REDACTED]").replace(secret[:16], "[REDACTED]")
    return text


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, None]:
    outcome = yield
    report = outcome.get_result()
    if report.failed and report.longrepr is not None:
        text = str(report.longrepr)
        clean = redact_secrets(text)
        if clean != text:
            report.longrepr = clean
    if report.sections:
        report.sections = [(title, redact_secrets(body)) for title, body in report.sections]


_B36 = "0123456789abcdefghijklmnopqrstuvwxyz"


def _base36(n: int, width: int) -> str:
    out = ""
    for _ in range(width):
        n, digit = divmod(n, 36)
        out = _B36[digit] + out
    return out


def unique_lab_name() -> str:
    """A 6-character lab name unique to this test: 't' + 3 chars of the pid + a 2-char counter.

    The pid part keeps concurrent pytest processes (other engineers, CI) from building the same
    namespaces and interface names; the counter separates labs within one process.
    """
    return "t" + _base36(os.getpid(), 3) + _base36(next(_lab_counter), 2)


@pytest.fixture
def lab_name() -> str:
    """A fresh lab name, for tests that build a lab by hand (they must call ``down()`` themselves)."""
    if os.geteuid() != 0:
        pytest.skip("the WireGuard lab needs root (network namespaces, TUN devices); run the tests as root")
    return unique_lab_name()


@pytest.fixture
def make_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., Lab]]:
    """``make_lab(clients=2, ipv6=False, name=None) -> Lab``: an up lab, torn down after the test."""
    if os.geteuid() != 0:
        pytest.skip("the WireGuard lab needs root (network namespaces, TUN devices); run the tests as root")
    labs: list[Lab] = []

    def factory(clients: int = 2, ipv6: bool = False, name: str | None = None) -> Lab:
        spec = LabSpec(name=name or unique_lab_name(), clients=clients, ipv6=ipv6)
        state_dir: Path = tmp_path_factory.mktemp(f"lab-{spec.name}")
        lab = Lab(spec, state_dir)
        labs.append(lab)  # registered before up(), so a half-built lab is torn down too
        lab.up()
        _LAB_SECRETS.update(lab.secrets())
        return lab

    yield factory
    failures: list[BaseException] = []
    for lab in reversed(labs):
        try:
            lab.down()
        except Exception as exc:  # tear every lab down even if one fails, then report
            failures.append(exc)
    if failures:
        raise failures[0]
