"""A private rsyslogd for the component tests: UDP, TCP and TLS inputs on free loopback ports, each
writing what rsyslog PARSED (header fields, structured data via ``mmpstrucdata``, the message) as one
JSON line per message into its own file.

It never touches a system rsyslog: own config, work directory, pid file; no ``imuxsock``/``imklog``.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

RSYSLOGD = shutil.which("rsyslogd") or "/usr/sbin/rsyslogd"
GTLS_DRIVER = next(
    iter(sorted(Path("/usr/lib").glob("**/rsyslog/lmnsd_gtls.so"))),
    Path("/usr/lib/x86_64-linux-gnu/rsyslog/lmnsd_gtls.so"),
)
"""rsyslog's GnuTLS netstream driver (Debian package ``rsyslog-gnutls``)."""

_TEMPLATE = """
template(name="parsed" type="list" option.jsonf="on") {
  property(outname="pri" name="pri" format="jsonf")
  property(outname="hostname" name="hostname" format="jsonf")
  property(outname="app_name" name="app-name" format="jsonf")
  property(outname="procid" name="procid" format="jsonf")
  property(outname="msgid" name="msgid" format="jsonf")
  property(outname="timestamp" name="timereported" dateFormat="rfc3339" format="jsonf")
  property(outname="structured_data" name="structured-data" format="jsonf")
  property(outname="sd" name="$!rfc5424-sd" format="jsonf")
  property(outname="msg" name="msg" format="jsonf")
}
"""


def free_port(kind: int) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(predicate: Callable[[], Any], timeout_secs: float, what: str) -> Any:
    """Poll ``predicate`` until truthy; fail naming ``what`` after ``timeout_secs``."""
    deadline = time.monotonic() + timeout_secs
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout_secs} s waiting for {what}")
        time.sleep(0.02)


@dataclass(frozen=True)
class TlsFiles:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    other_ca: Path
    """A CA that did not sign the server: verification against it must fail."""


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    path.chmod(0o600)


def _cert(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: x509.Certificate | None,
    issuer_key: ec.EllipticCurvePrivateKey,
    *,
    ca: bool = False,
    san: list[x509.GeneralName] | None = None,
) -> x509.Certificate:
    now = datetime.now(UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer.subject if issuer else name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        ).add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    else:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False
        )
    if san:
        builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def make_tls_files(directory: Path) -> TlsFiles:
    """A throw-away CA, a server certificate for ``localhost``/127.0.0.1 and a client certificate."""
    import ipaddress

    directory.mkdir(parents=True, exist_ok=True)
    ca_key, other_key, srv_key, cli_key = _key(), _key(), _key(), _key()
    ca = _cert("wgsiem test CA", ca_key, None, ca_key, ca=True)
    other = _cert("unrelated CA", other_key, None, other_key, ca=True)
    san: list[x509.GeneralName] = [
        x509.DNSName("localhost"),
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
    ]
    srv = _cert("localhost", srv_key, ca, ca_key, san=san)
    cli = _cert("wgsiem-client", cli_key, ca, ca_key)
    files = TlsFiles(
        ca=directory / "ca.pem",
        server_cert=directory / "server.pem",
        server_key=directory / "server.key",
        client_cert=directory / "client.pem",
        client_key=directory / "client.key",
        other_ca=directory / "other-ca.pem",
    )
    for path, cert in (
        (files.ca, ca),
        (files.server_cert, srv),
        (files.client_cert, cli),
        (files.other_ca, other),
    ):
        path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    _write_key(files.server_key, srv_key)
    _write_key(files.client_key, cli_key)
    return files


class Rsyslog:
    """``rsyslogd -n -f <conf> -i <pid>`` with ``udp``, ``tcp`` and ``tls`` inputs."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.tls = make_tls_files(workdir / "tls")
        self.ports = {
            "udp": free_port(socket.SOCK_DGRAM),
            "tcp": free_port(socket.SOCK_STREAM),
            "tls": free_port(socket.SOCK_STREAM),
        }
        self.proc: subprocess.Popen[bytes] | None = None

    def output(self, transport: str) -> Path:
        return self.workdir / f"{transport}.jsonl"

    def config(self) -> str:
        w = self.workdir
        tls = self.tls
        rulesets = "".join(
            f'ruleset(name="r_{t}") {{ action(type="mmpstrucdata" sd_name.lowercase="off") '
            f'action(type="omfile" file="{self.output(t)}" template="parsed") }}\n'
            for t in self.ports
        )
        return (
            f'global(workDirectory="{w}" maxMessageSize="64k" '
            # LEEF's TAB delimiter must reach the parser as a TAB, not rsyslog's "#011"
            'parser.escapeControlCharactersOnReceive="off")\n'
            'module(load="imudp")\nmodule(load="imtcp")\nmodule(load="mmpstrucdata")\n'
            + _TEMPLATE
            + rulesets
            + f'input(type="imudp" address="127.0.0.1" port="{self.ports["udp"]}" ruleset="r_udp")\n'
            + f'input(type="imtcp" address="127.0.0.1" port="{self.ports["tcp"]}" ruleset="r_tcp")\n'
            + f'input(type="imtcp" address="127.0.0.1" port="{self.ports["tls"]}" ruleset="r_tls" '
            'streamDriver.name="gtls" streamDriver.mode="1" streamDriver.authMode="x509/certvalid" '
            f'streamDriver.CAFile="{tls.ca}" streamDriver.CertFile="{tls.server_cert}" '
            f'streamDriver.KeyFile="{tls.server_key}")\n'
        )

    def start(self) -> None:
        conf = self.workdir / "rsyslog.conf"
        conf.write_text(self.config())
        log = (self.workdir / "rsyslogd.log").open("wb")
        self.proc = subprocess.Popen(
            [RSYSLOGD, "-n", "-f", str(conf), "-i", str(self.workdir / "rsyslogd.pid")],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        wait_until(lambda: self._listening("tcp") and self._listening("tls"), 15, "rsyslogd to listen")
        self._probe_udp()

    def _listening(self, transport: str) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(f"rsyslogd exited: {(self.workdir / 'rsyslogd.log').read_text()}")
        try:
            with socket.create_connection(("127.0.0.1", self.ports[transport]), timeout=0.5):
                return True
        except OSError:
            return False

    def _probe_udp(self) -> None:
        """imudp binds on its own schedule: send probes until one is written, then forget them."""
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:

            def seen() -> bool:
                sock.sendto(b"<14>1 - probe probe - probe - ready", ("127.0.0.1", self.ports["udp"]))
                return self.output("udp").exists() and "probe" in self.output("udp").read_text()

            wait_until(seen, 15, "rsyslogd's UDP input")

    def mark(self, transport: str) -> int:
        """The current length of an output file: :meth:`records` after it sees only newer lines."""
        path = self.output(transport)
        return path.stat().st_size if path.exists() else 0

    def records(
        self, transport: str, since: int, count: int, timeout_secs: float = 15
    ) -> list[dict[str, Any]]:
        """Wait for ``count`` parsed messages after offset ``since``; the structured data decoded."""
        path = self.output(transport)

        def lines() -> list[str] | None:
            if not path.exists():
                return None
            with path.open("rb") as fh:
                fh.seek(since)
                data = fh.read().decode()
            # late duplicates of the start-up probe are not the test's messages
            done = [line for line in data.split("\n")[:-1] if '"app_name":"probe"' not in line]
            return done if len(done) >= count else None

        out = []
        for line in wait_until(lines, timeout_secs, f"{count} messages in {path.name}"):
            record = json.loads(line)
            record["sd"] = json.loads(record["sd"]) if record["sd"] else {}
            out.append(record)
        return out

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
