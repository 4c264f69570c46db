"""enrich_identity against a real OpenLDAP ``slapd`` (Debian's ``slapd`` package), run as ``nobody`` on
127.0.0.1 with a throwaway config and database loaded from ``ldap.ldif``."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from wgsiem.enrich.base import TransformContext
from wgsiem.enrich.enrich_identity.config import EnrichIdentityConfig, LdapConfig
from wgsiem.enrich.enrich_identity.ldap_directory import LdapError, fetch_identities
from wgsiem.enrich.enrich_identity.transform import EnrichIdentity
from wgsiem.event import Envelope, EventMeta
from wgsiem.pipeline.telemetry import TelemetryRegistry
from wgsiem.sources.peer_directory import PeerDirectory

pytestmark = pytest.mark.component

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "enrich" / "identity"
ALICE = "K9gGyX8OAK8aH8Myj6djqSaXI8jbj6xPk69x2xhtbpA="
BOB = "gbY32PzSxtpjWeaWMROhFw3nleS3JbhNHgtM/Z7FjOk="
BOB_2 = "TCbZB0wn2J7eWScMCsFLceBxsVI5UZ91R0svO6Y0gfU="
DAVE = "YeoIA/iFNSO3d9QUrOMTDNTT+S3izX/4aVwzfXnC7u4="
ROOT_DN = "cn=admin,dc=corp,dc=example"
ROOT_PW = "s3cret-test-only-pw"
SLAPD_CONF = """\
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
pidfile {dir}/slapd.pid
modulepath /usr/lib/ldap
moduleload back_mdb
database mdb
suffix "dc=corp,dc=example"
rootdn "{root_dn}"
rootpw {root_pw}
directory {dir}/db
maxsize 10485760
access to * by * read
"""


@dataclass
class Slapd:
    url: str
    dir: Path

    def modify(self, ldif: str) -> None:
        subprocess.run(
            ["ldapmodify", "-x", "-H", self.url, "-D", ROOT_DN, "-w", ROOT_PW],
            input=ldif.encode(),
            check=True,
            capture_output=True,
            timeout=10,
        )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def slapd() -> Iterator[Slapd]:
    if not Path("/usr/sbin/slapd").exists() or shutil.which("ldapmodify") is None:
        pytest.skip("needs Debian's slapd and ldap-utils (apt-get install slapd ldap-utils)")
    # pytest's tmp_path sits under a 0700 root directory that slapd, as nobody, cannot enter
    d = Path(tempfile.mkdtemp(prefix="wgsiem-slapd-"))
    try:
        yield from _run_slapd(d)
    finally:
        shutil.rmtree(d, ignore_errors=True)


def _run_slapd(d: Path) -> Iterator[Slapd]:
    (d / "db").mkdir(parents=True)
    conf = d / "slapd.conf"
    conf.write_text(SLAPD_CONF.format(dir=d, root_dn=ROOT_DN, root_pw=ROOT_PW))
    subprocess.run(
        ["/usr/sbin/slapadd", "-f", str(conf), "-l", str(FIXTURES / "ldap.ldif")],
        check=True,
        capture_output=True,
        timeout=30,
    )
    shutil.chown(d, "nobody", "nogroup")
    for p in d.rglob("*"):
        shutil.chown(p, "nobody", "nogroup")
    port = _free_port()
    url = f"ldap://127.0.0.1:{port}"
    proc = subprocess.Popen(
        ["/usr/sbin/slapd", "-d", "256", "-h", f"{url}/", "-f", str(conf), "-u", "nobody", "-g", "nogroup"],
        stdout=subprocess.DEVNULL,
        stderr=(d / "slapd.log").open("wb"),
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            if proc.poll() is not None:
                pytest.fail(f"slapd exited: {(d / 'slapd.log').read_text(errors='replace')}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail("slapd did not start listening")
                time.sleep(0.05)
        yield Slapd(url, d)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def ldap_config(s: Slapd, tmp_path: Path, **kw: Any) -> LdapConfig:
    pw = tmp_path / "ldap.password"
    pw.write_text(kw.pop("password", ROOT_PW) + "\n")
    pw.chmod(0o600)
    return LdapConfig(
        url=s.url,
        base_dn="ou=people,dc=corp,dc=example",
        key_attribute="carLicense",
        bind_dn=ROOT_DN,
        bind_password_file=str(pw),
        **kw,
    )


def event(key: str) -> Envelope:
    return Envelope(
        {"event": {"action": "session-started"}, "wireguard": {"peer": {"public_key": key}}},
        EventMeta("t", 0),
    )


def test_identities_are_read_from_slapd_one_per_key_value(slapd: Slapd, tmp_path: Path) -> None:
    idents, problems = fetch_identities(ldap_config(slapd, tmp_path))
    by_key = {i.public_key: i for i in idents}
    assert set(by_key) == {ALICE, BOB, BOB_2}
    a = by_key[ALICE]
    assert (a.name, a.email, a.id, a.full_name, a.department, a.sources) == (
        "alice",
        "alice@corp.example",
        "emp-1001",
        "Alice Archer",
        "Finance",
        ("ldap",),
    )
    assert by_key[BOB_2].name == "bob"
    assert [str(p.location) for p in problems] == ["uid=mallory,ou=people,dc=corp,dc=example"]
    assert "not-a-wireguard-key" not in problems[0].render()


def test_the_transform_merges_ldap_under_the_inventory_and_sees_directory_changes(
    slapd: Slapd, tmp_path: Path
) -> None:
    inv = tmp_path / "identity.yaml"
    inv.write_text(
        f"peers:\n  - public_key: {ALICE}\n    name: alice\n    department: Audit\n    risk: high\n"
    )
    tel = TelemetryRegistry().register("identity", "transform", "enrich_identity")
    t = EnrichIdentity(
        "identity",
        EnrichIdentityConfig(inventory_path=str(inv), ldap=ldap_config(slapd, tmp_path)),
        TransformContext("gw", tmp_path, tel, PeerDirectory()),
    )
    try:
        a = t(event(ALICE))
        assert a is not None
        assert a.data["user"] == {
            "name": "alice",
            "email": "alice@corp.example",  # from LDAP
            "id": "emp-1001",
            "full_name": "Alice Archer",
            "risk": {"static_level": "high"},  # from the inventory
        }
        assert a.data["wireguard"]["user"] == {
            "department": "Audit",
            "risk": "high",
            "sources": ["inventory", "ldap"],
        }
        unknown = t(event(DAVE))
        assert unknown is not None and unknown.data["wireguard"]["peer"]["known"] is False
        slapd.modify(
            "dn: uid=mallory,ou=people,dc=corp,dc=example\nchangetype: modify\n"
            f"replace: carLicense\ncarLicense: {DAVE}\n"
        )
        assert t.directory.refresh_ldap()
        dave = t(event(DAVE))
        assert dave is not None and dave.data["user"]["name"] == "mallory"
        assert tel.errors == {"LdapEntryError@ldap": 1}  # mallory's bad value, at start only
    finally:
        t.close()


def test_a_wrong_password_is_a_clear_error_that_never_shows_the_password(
    slapd: Slapd, tmp_path: Path
) -> None:
    cfg = ldap_config(slapd, tmp_path, password="wrong-password-value")
    with pytest.raises(LdapError) as exc:
        fetch_identities(cfg)
    assert "invalidCredentials" in exc.value.render() or "LDAPInvalidCredentials" in exc.value.render()
    assert "wrong-password-value" not in exc.value.render()
    # in the transform: counted, the pipeline keeps running without LDAP identities
    tel = TelemetryRegistry().register("identity", "transform", "enrich_identity")
    t = EnrichIdentity(
        "identity", EnrichIdentityConfig(ldap=cfg), TransformContext("gw", tmp_path, tel, PeerDirectory())
    )
    try:
        out = t(event(ALICE))
        assert out is not None and out.data["wireguard"]["peer"]["known"] is False
        assert tel.errors == {"LdapError@ldap": 1}
        assert "wrong-password-value" not in (tel.last_error or "")
    finally:
        t.close()


def test_a_password_file_others_can_read_is_refused(slapd: Slapd, tmp_path: Path) -> None:
    cfg = ldap_config(slapd, tmp_path)
    assert cfg.bind_password_file is not None
    Path(cfg.bind_password_file).chmod(0o644)
    from wgsiem.errors import ConfigError

    with pytest.raises(ConfigError, match="chmod 600"):
        fetch_identities(cfg)
