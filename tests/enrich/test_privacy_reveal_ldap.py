"""``wgsiem privacy reveal`` over the LDAP directory ``enrich_identity`` reads, against a real Debian
``slapd`` (the fixture of ``test_identity_ldap.py``): a pseudonym the pipeline made for a user only
the directory knows maps back; under the wrong key it maps to nothing; no key secret and no bind
password is ever printed."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from tests.enrich.test_identity_ldap import ALICE, DAVE, ROOT_PW, Slapd, event, ldap_config, slapd
from wgsiem.cli.privacy import privacy
from wgsiem.config.loader import load_config
from wgsiem.enrich.apply_privacy.config import ApplyPrivacyConfig
from wgsiem.enrich.apply_privacy.keys import load_keys, parse_keys
from wgsiem.enrich.apply_privacy.reveal import IdentitySources, gather, matches, sources_from_config
from wgsiem.enrich.apply_privacy.transform import ApplyPrivacy
from wgsiem.enrich.base import TransformContext
from wgsiem.enrich.enrich_identity.config import EnrichIdentityConfig
from wgsiem.enrich.enrich_identity.transform import EnrichIdentity
from wgsiem.pipeline.telemetry import TelemetryRegistry
from wgsiem.sources.peer_directory import PeerDirectory

pytestmark = pytest.mark.component

__all__ = ["slapd"]  # the fixture, imported so pytest finds it here

DAVE_LDIF = f"""\
dn: uid=dave,ou=people,dc=corp,dc=example
changetype: add
objectClass: inetOrgPerson
uid: dave
cn: Dave Dunn
sn: Dunn
mail: dave@corp.example
employeeNumber: emp-1004
departmentNumber: Legal
carLicense: {DAVE}
"""
INVENTORY = f"""\
peers:
  - public_key: {ALICE}
    name: alice
    email: alice@corp.example
"""


def _key_file(path: Path, key_id: str, fill: int) -> Path:
    path.write_text(f"{key_id} {base64.b64encode(bytes([fill]) * 32).decode()}\n")
    path.chmod(0o600)
    return path


def _secrets(*key_files: Path) -> list[str]:
    """Every way a key could leak into output: the base64 line value and its raw bytes in hex."""
    out = [ROOT_PW]
    for kf in key_files:
        for key in parse_keys(kf.read_text(), str(kf)):
            secret = key.secret.get_secret_value()
            out += [secret, base64.b64decode(secret).hex()]
    return out


def _config(tmp_path: Path, s: Slapd, key_file: Path) -> Path:
    """A wgsiem configuration as an operator writes it: inventory + LDAP, then apply_privacy."""
    directory = ldap_config(s, tmp_path).model_dump(exclude_none=True)
    inventory = tmp_path / "identity.yaml"
    inventory.write_text(INVENTORY)
    cfg = {
        "sources": {"wg": {"type": "wg_state"}},
        "transforms": {
            "identity": {"type": "enrich_identity", "inventory_path": str(inventory), "ldap": directory},
            "privacy": {
                "type": "apply_privacy",
                "key_file": str(key_file),
                "fields": {"user.name": "pseudonymize", "user.email": "pseudonymize"},
            },
        },
    }
    path = tmp_path / "wgsiem.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _pipeline(cfg_path: Path, tmp_path: Path) -> tuple[EnrichIdentity, ApplyPrivacy]:
    """The configured transforms, built as the service builds them."""
    cfg = load_config(cfg_path)
    ident_cfg, privacy_cfg = cfg.transforms["identity"], cfg.transforms["privacy"]
    assert isinstance(ident_cfg, EnrichIdentityConfig) and isinstance(privacy_cfg, ApplyPrivacyConfig)

    def ctx(name: str) -> TransformContext:
        tel = TelemetryRegistry().register(name, "transform", name)
        return TransformContext("gw-test", tmp_path, tel, PeerDirectory())

    return EnrichIdentity("identity", ident_cfg, ctx("identity")), ApplyPrivacy(
        "privacy", privacy_cfg, ctx("privacy")
    )


def _pseudonymized(cfg_path: Path, tmp_path: Path, key: str) -> dict[str, Any]:
    identity, privacy_transform = _pipeline(cfg_path, tmp_path)
    try:
        env = identity(event(key))
        assert env is not None
        out = privacy_transform(env)
        assert out is not None
        return out.data
    finally:
        for t in (identity, privacy_transform):
            close = getattr(t, "close", None)
            if close is not None:
                close()


def test_a_pseudonym_of_an_ldap_only_user_maps_back(slapd: Slapd, tmp_path: Path) -> None:
    slapd.modify(DAVE_LDIF)  # dave is in the directory only, not in the inventory
    kf = _key_file(tmp_path / "privacy.keys", "2026a", 7)
    cfg = _config(tmp_path, slapd, kf)
    doc = _pseudonymized(cfg, tmp_path, DAVE)
    email = doc["user"]["email"]
    assert email.startswith("ps:2026a:") and "dave" not in str(doc)

    res = CliRunner().invoke(privacy, ["reveal", email, "--config", str(cfg)])

    assert res.exit_code == 0, res.output
    assert res.stdout == f"email\tdave@corp.example\t(peer {DAVE}, key 2026a)\tldap\n"
    assert not [s for s in _secrets(kf) if s in res.output]


def test_the_user_name_of_an_ldap_only_user_maps_back_with_an_explicit_key_file(
    slapd: Slapd, tmp_path: Path
) -> None:
    slapd.modify(DAVE_LDIF)
    kf = _key_file(tmp_path / "privacy.keys", "2026a", 7)
    cfg = _config(tmp_path, slapd, kf)
    name = _pseudonymized(cfg, tmp_path, DAVE)["user"]["name"]
    res = CliRunner().invoke(privacy, ["reveal", name, "--config", str(cfg), "--key-file", str(kf)])
    assert res.exit_code == 0, res.output
    assert res.stdout == f"name\tdave\t(peer {DAVE}, key 2026a)\tldap\n"


def test_a_value_both_inventory_and_directory_list_is_one_match_naming_both(
    slapd: Slapd, tmp_path: Path
) -> None:
    kf = _key_file(tmp_path / "privacy.keys", "2026a", 7)
    cfg = _config(tmp_path, slapd, kf)
    email = _pseudonymized(cfg, tmp_path, ALICE)["user"]["email"]
    res = CliRunner().invoke(privacy, ["reveal", email, "--config", str(cfg)])
    assert res.exit_code == 0, res.output
    assert res.stdout == f"email\talice@corp.example\t(peer {ALICE}, key 2026a)\tinventory+ldap\n"


def test_under_a_wrong_key_the_pseudonym_maps_to_nothing(slapd: Slapd, tmp_path: Path) -> None:
    slapd.modify(DAVE_LDIF)
    right = _key_file(tmp_path / "privacy.keys", "2026a", 7)
    wrong = _key_file(tmp_path / "other.keys", "2026a", 9)  # same id, another secret
    cfg = _config(tmp_path, slapd, right)
    email = _pseudonymized(cfg, tmp_path, DAVE)["user"]["email"]

    res = CliRunner().invoke(privacy, ["reveal", email, "--config", str(cfg), "--key-file", str(wrong)])

    assert res.exit_code != 0
    assert "dave" not in res.output
    assert "no known identity value has this pseudonym" in str(res.exception)
    assert not [s for s in _secrets(right, wrong) if s in res.output + str(res.exception)]


def test_gather_reads_the_directory_the_config_names(slapd: Slapd, tmp_path: Path) -> None:
    """The library path the CLI uses: config → sources → identities (inventory and LDAP) → matches."""
    slapd.modify(DAVE_LDIF)
    kf = _key_file(tmp_path / "privacy.keys", "2026a", 7)
    sources = sources_from_config(load_config(_config(tmp_path, slapd, kf)))
    assert sources.key_file == str(kf) and len(sources.ldap) == 1 and len(sources.inventories) == 1
    warnings: list[str] = []
    identities = gather(sources, warnings.append)
    assert {i.public_key for i in identities if "ldap" in i.sources} >= {ALICE, DAVE}
    assert warnings and all(ROOT_PW not in w for w in warnings)  # mallory's bad key is reported
    key = load_keys(kf).active
    wanted = key.digest("emp-1004")[:32]
    assert [(m.field, m.value, m.sources) for m in matches(wanted, [key], identities)] == [
        ("id", "emp-1004", ("ldap",))
    ]


def test_a_directory_that_refuses_the_bind_is_a_clear_error_without_the_password(
    slapd: Slapd, tmp_path: Path
) -> None:
    kf = _key_file(tmp_path / "privacy.keys", "2026a", 7)
    cfg = ldap_config(slapd, tmp_path, password="wrong-password-value")
    sources = IdentitySources(ldap=(cfg,), key_file=str(kf))
    with pytest.raises(Exception) as err:
        gather(sources, lambda _: None)
    assert "LDAP search failed" in str(err.value)
    assert "wrong-password-value" not in str(err.value)
