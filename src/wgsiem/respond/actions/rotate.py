"""Tier 2: rotate a peer's keys — a new X25519 pair, the server switched to it, the client's new config
handed to a provisioning hook and to nothing else.

Apply, in order (each step read back; a later failure rolls the earlier ones back, ``ok=False``):

1. read the live peer and the config file; private backups as ``revoke_peer`` keeps them;
2. generate the pair with ``cryptography`` (and a new PSK when ``new_preshared_key: true``; otherwise
   the peer keeps its PSK policy: its current PSK, or none);
3. config file: the ``PublicKey`` value swapped in place (PSK too when renewed), nothing else touched;
4. live: one ``wg set <if> peer <old> remove peer <new> [preshared-key /dev/stdin] allowed-ips …``;
5. the new client config (wg-quick syntax, holding the private key) goes to the provisioning hook
   (``ctx.settings["provisioning"]``): ``command`` (config on stdin), ``webhook`` (JSON POST, auth
   headers are secrets), or ``ansible`` (``ansible-playbook -e @<0600 temp file>``, deleted after).
   If the hook fails, the server is switched back to the old key: a client must never be left
   without a working config.

The private key lives only in local variables and in the hook's input: it is in no plan, result,
undo record, backup, log line or exception. Undo puts the old key back (from the backups) and
removes the new one — for a rotation done in error; after a compromise, do not undo.
"""

from __future__ import annotations

import asyncio
import base64
import os
import shlex
from typing import Annotated, Any, ClassVar, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, SecretStr, TypeAdapter, ValidationError

from wgsiem.errors import ConfigError, WgsiemError
from wgsiem.private_file import write_private
from wgsiem.respond.actions.base import ActionContext, ActionPlan, ActionResult, Target
from wgsiem.respond.actions.common import (
    ActionError,
    config_path,
    file_mode,
    find_peer_spans,
    live_interface,
    load_private_json,
    replace_peer_key,
    require_key,
    sha256,
)
from wgsiem.respond.actions.revoke import add_peer_argv, prepare, restored_file
from wgsiem.respond.executors import safe_stderr

__all__ = ["AnsibleHook", "CommandHook", "ProvisioningHook", "RotatePeerKeys", "WebhookHook", "client_config"]


class CommandHook(BaseModel):
    """Run ``argv`` on the wgsiem host with the client config on stdin (env: ``WGSIEM_INTERFACE``,
    ``WGSIEM_OLD_PUBLIC_KEY``, ``WGSIEM_NEW_PUBLIC_KEY``); exit 0 = delivered."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    type: Literal["command"]
    argv: list[str] = Field(min_length=1, description="Program and arguments (no shell).")
    timeout_secs: float = Field(30.0, gt=0, description="Killed after this long; counts as a failure.")


class WebhookHook(BaseModel):
    """POST ``{interface, old_public_key, new_public_key, client_config, hostname}`` as JSON;
    a 2xx answer = delivered."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    type: Literal["webhook"]
    url: str = Field(description="https:// URL of the provisioning service.")
    headers: dict[str, SecretStr] = Field(default_factory=dict, description="e.g. Authorization (secret).")
    timeout_secs: float = Field(15.0, gt=0, description="Whole request timeout.")
    verify_tls: bool = Field(True, description="Verify the server certificate.")


class AnsibleHook(BaseModel):
    """``ansible-playbook [-i inventory] playbook -e @vars.json`` with extra-vars ``wgsiem_client_config``,
    ``wgsiem_interface``, ``wgsiem_old_public_key``, ``wgsiem_new_public_key`` from a 0600 temp file."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    type: Literal["ansible"]
    playbook: str = Field(description="Playbook path.")
    inventory: str | None = Field(None, description="Inventory path (-i).")
    ansible_playbook: str = Field("ansible-playbook", description="The ansible-playbook program.")
    extra_args: list[str] = Field(default_factory=list, description="More arguments, e.g. --limit host.")
    timeout_secs: float = Field(300.0, gt=0, description="Killed after this long; counts as a failure.")


ProvisioningHook = Annotated[CommandHook | WebhookHook | AnsibleHook, Field(discriminator="type")]
_HOOK = TypeAdapter(ProvisioningHook)


def _hook(ctx: ActionContext) -> CommandHook | WebhookHook | AnsibleHook:
    raw = ctx.settings.get("provisioning")
    if isinstance(raw, CommandHook | WebhookHook | AnsibleHook):
        return raw
    if raw is None:
        raise ConfigError(
            "rotate_peer_keys needs a provisioning hook",
            fix="set provisioning: {type: command|webhook|ansible, ...}",
        )
    try:
        return _HOOK.validate_python(raw)
    except ValidationError as exc:
        raise ConfigError(
            f"provisioning hook: {exc.errors()[0]['msg']}", fix="see docs/respond/actions.md"
        ) from None


def _keypair() -> tuple[str, str]:
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
    from cryptography.hazmat.primitives.serialization import (
        Encoding,
        NoEncryption,
        PrivateFormat,
        PublicFormat,
    )

    k = X25519PrivateKey.generate()
    priv = k.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    pub = k.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return base64.b64encode(priv).decode(), base64.b64encode(pub).decode()


def client_config(
    *,
    private_key: str,
    addresses: list[str],
    server_public_key: str,
    endpoint: str | None,
    allowed_ips: list[str],
    preshared_key: str | None,
    keepalive: int | None,
    dns: list[str] | None = None,
) -> str:
    """The client's new config in wg-quick syntax."""
    lines = ["[Interface]", f"PrivateKey = {private_key}"]
    if addresses:
        lines.append(f"Address = {', '.join(addresses)}")
    if dns:
        lines.append(f"DNS = {', '.join(dns)}")
    lines += ["", "[Peer]", f"PublicKey = {server_public_key}"]
    if preshared_key:
        lines.append(f"PresharedKey = {preshared_key}")
    if endpoint:
        lines.append(f"Endpoint = {endpoint}")
    lines.append(f"AllowedIPs = {', '.join(allowed_ips)}")
    if keepalive:
        lines.append(f"PersistentKeepalive = {keepalive}")
    return "\n".join(lines) + "\n"


def _redacted(text: str, *secrets: str | None) -> str:
    for s in secrets:
        if s:
            text = text.replace(s, "<secret>")
    return text


async def _run_hook(
    hook: CommandHook | WebhookHook | AnsibleHook,
    ctx: ActionContext,
    config: str,
    meta: dict[str, str],
    secrets: list[str],
) -> str:
    """Deliver ``config``; returns a one-line description, raises ActionError (secret-free) on failure."""
    if isinstance(hook, WebhookHook):
        import aiohttp

        body = orjson.dumps({**meta, "client_config": config, "hostname": ctx.hostname})
        headers = {
            "Content-Type": "application/json",
            **{k: v.get_secret_value() for k, v in hook.headers.items()},
        }
        try:
            async with (
                aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=hook.timeout_secs)) as session,
                session.post(hook.url, data=body, headers=headers, ssl=hook.verify_tls) as resp,
            ):
                text = (await resp.text(errors="replace"))[:200]
                if resp.status // 100 != 2:
                    raise ActionError(
                        f"provisioning webhook answered {resp.status}: {_redacted(text, *secrets)}",
                        fix="check the webhook's URL and credentials",
                    )
                return f"webhook {hook.url} answered {resp.status}"
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise ActionError(
                f"provisioning webhook {hook.url} failed: {type(exc).__name__}",
                fix="is the service reachable?",
            ) from None
    env = {**os.environ, **{f"WGSIEM_{k.upper()}": v for k, v in meta.items()}}
    tmp = None
    if isinstance(hook, AnsibleHook):
        tmp = ctx.state_dir / "tmp" / f"rotate-{os.getpid()}-{os.urandom(4).hex()}.json"
        write_private(
            tmp, orjson.dumps({**{f"wgsiem_{k}": v for k, v in meta.items()}, "wgsiem_client_config": config})
        )
        argv = [hook.ansible_playbook, *(["-i", hook.inventory] if hook.inventory else []), hook.playbook]
        argv += [*hook.extra_args, "-e", f"@{tmp}"]
        stdin = None
    else:
        argv, stdin = list(hook.argv), config.encode()
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
            env=env,
            start_new_session=True,
        )
        try:
            _, err = await asyncio.wait_for(proc.communicate(stdin), hook.timeout_secs)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise ActionError(
                f"provisioning hook `{shlex.join(argv)}` did not finish in {hook.timeout_secs:g} s",
                fix="check the hook",
            ) from None
        if proc.returncode != 0:
            raise ActionError(
                f"provisioning hook `{shlex.join(argv)}` exited with {proc.returncode}: "
                f"{_redacted(safe_stderr(err, argv), *secrets)}",
                fix="check the hook",
            )
        return f"hook `{shlex.join(argv)}` exited 0"
    except FileNotFoundError:
        raise ActionError(
            f"provisioning hook program {argv[0]} not found", fix="install it or fix the path"
        ) from None
    finally:
        if tmp is not None:
            tmp.unlink(missing_ok=True)


def _host_routes(allowed: list[str]) -> list[str]:
    hosts = [a for a in allowed if a.endswith("/32") or a.endswith("/128")]
    return hosts or allowed[:1]


class RotatePeerKeys:
    """``rotate_peer_keys``. Params: ``new_preshared_key`` (default false), ``live_only`` (default false).

    Settings used: ``provisioning`` (the hook), ``config_files``, ``public_endpoints[<if>]`` (the
    client's ``Endpoint``), ``client_allowed_ips[<if>]`` (default ``0.0.0.0/0, ::/0``), ``client_dns``.
    """

    name: ClassVar[str] = "rotate_peer_keys"
    tier: ClassVar[int] = 2
    reversible: ClassVar[bool] = True

    def validate_params(self, params: dict[str, Any]) -> dict[str, Any]:
        unknown = set(params) - {"new_preshared_key", "live_only"}
        if unknown:
            raise ConfigError(
                f"rotate_peer_keys: unknown params {sorted(unknown)}", fix="use new_preshared_key, live_only"
            )
        out = {
            "new_preshared_key": params.get("new_preshared_key", False),
            "live_only": params.get("live_only", False),
        }
        if not all(isinstance(v, bool) for v in out.values()):
            raise ConfigError(
                "new_preshared_key and live_only are true or false", fix="e.g. new_preshared_key: true"
            )
        return out

    async def plan(self, target: Target, params: dict[str, Any], ctx: ActionContext) -> ActionPlan:
        params = self.validate_params(params)
        key = require_key(target.peer_public_key)
        if not target.interface:
            raise ConfigError(
                "rotate_peer_keys needs the peer's interface", fix="the alert must carry the interface"
            )
        hook = _hook(ctx)
        path = config_path(ctx, target.interface)
        return ActionPlan(
            action=self.name,
            target=target,
            params=params,
            summary=(
                f"rotate the keys of peer {key} on {target.interface}"
                + (" (new preshared key)" if params["new_preshared_key"] else "")
                + f"; new client config to the {hook.type} hook"
            ),
            affected_peers=(key,),
            reversible=True,
            details={"interface": target.interface, "config_file": path, "hook": hook.type},
        )

    async def apply(self, plan: ActionPlan, ctx: ActionContext) -> ActionResult:
        if ctx.dry_run:
            return ActionResult(ok=True, summary=f"dry run: would {plan.summary}", details=dict(plan.details))
        iface = plan.details["interface"]
        old = require_key(plan.target.peer_public_key)
        ex = ctx.executor
        try:
            hook = _hook(ctx)
            prep = await prepare(ctx, iface, [old], live_only=plan.params["live_only"])
            if old not in prep.live.peers:
                raise ActionError(f"peer {old} is not on {iface}", fix="was it already rotated or revoked?")
            if prep.original is not None and not find_peer_spans(prep.original, old):
                raise ActionError(f"peer {old} has no section in {prep.path}", fix="is config_files right?")
        except WgsiemError as exc:
            return ActionResult(ok=False, summary=f"nothing changed on {iface}", error=exc.render())
        peer = prep.live.peers[old]
        private, public = _keypair()
        old_psk = prep.live.psks.get(old)
        psk = base64.b64encode(os.urandom(32)).decode() if plan.params["new_preshared_key"] else old_psk
        secrets = [private, psk, old_psk]
        undo = prep.undo_base(
            [
                {
                    "public_key": old,
                    "allowed_ips": list(peer.allowed_ips),
                    "endpoint": peer.endpoint,
                    "persistent_keepalive": peer.persistent_keepalive,
                    "has_psk": peer.has_psk,
                }
            ]
        )
        undo.update(old_public_key=old, new_public_key=public)
        try:
            if prep.path is not None and prep.original is not None:
                new_file = replace_peer_key(prep.original, old, public, psk if psk != old_psk else None)
                await ex.write_file(prep.path, new_file, mode=await file_mode(ex, prep.path))
                undo["written_sha256"] = sha256(new_file)
        except WgsiemError as exc:
            return ActionResult(
                ok=False, summary=f"nothing changed: could not rewrite {prep.path}", error=exc.render()
            )
        rec = {"allowed_ips": list(peer.allowed_ips), "persistent_keepalive": peer.persistent_keepalive}
        argv = [
            "wg",
            "set",
            iface,
            "peer",
            old,
            "remove",
            *add_peer_argv(iface, public, rec, with_psk=bool(psk))[3:],
        ]
        try:
            await ex.run(argv, input=(psk + "\n").encode() if psk else None)
            live = await live_interface(ex, iface)
            data = await ex.read_file(prep.path) if prep.path else None
            if old in live.peers or public not in live.peers:
                raise ActionError(
                    "the interface does not show the new key in place of the old", fix="see wg show"
                )
            if sorted(live.peers[public].allowed_ips) != sorted(peer.allowed_ips):
                raise ActionError("the new peer's allowed-ips differ from the old one's", fix="see wg show")
            if data is not None and (find_peer_spans(data, old) or not find_peer_spans(data, public)):
                raise ActionError(
                    f"{prep.path} does not show the new key in place of the old", fix="check the file"
                )
            cfg = client_config(
                private_key=private,
                addresses=_host_routes(list(peer.allowed_ips)),
                server_public_key=prep.live.public_key,
                endpoint=(ctx.settings.get("public_endpoints") or {}).get(iface),
                allowed_ips=list(
                    (ctx.settings.get("client_allowed_ips") or {}).get(iface, ["0.0.0.0/0", "::/0"])
                ),
                preshared_key=psk,
                keepalive=peer.persistent_keepalive,
                dns=ctx.settings.get("client_dns"),
            )
            meta = {"interface": iface, "old_public_key": old, "new_public_key": public}
            delivered = await _run_hook(hook, ctx, cfg, meta, [s for s in secrets if s])

        except WgsiemError as exc:
            rolled = await self._rollback(ctx, undo)
            return ActionResult(
                ok=False,
                summary=f"rotation of {old} on {iface} failed; {rolled}",
                error=_redacted(exc.render(), *secrets),
            )
        return ActionResult(
            ok=True,
            verified=True,
            summary=f"rotated {old} → {public} on {iface}; {delivered}",
            undo=undo,
            details={
                "interface": iface,
                "old_public_key": old,
                "new_public_key": public,
                "config_file": prep.path,
                "new_preshared_key": psk != old_psk,
            },
        )

    async def _rollback(self, ctx: ActionContext, undo: dict[str, Any]) -> str:
        res = await self.undo(undo, ctx)
        return "rolled back to the old key" if res.ok else f"ROLLBACK INCOMPLETE: {res.summary}"

    async def undo(self, undo: dict[str, Any], ctx: ActionContext) -> ActionResult:
        iface, old, new = undo["interface"], undo["old_public_key"], undo["new_public_key"]
        if ctx.dry_run:
            return ActionResult(
                ok=True, summary=f"dry run: would put {old} back in place of {new} on {iface}"
            )
        ex = ctx.executor
        try:
            snap = load_private_json(undo["live_backup"])
            rec = snap["peers"][old]
            path = undo.get("config_file")
            if path and undo.get("config_backup"):
                from pathlib import Path

                backup = Path(undo["config_backup"]).read_bytes()
                current = await ex.read_file(path)
                if not find_peer_spans(current, old):
                    if undo.get("written_sha256") and sha256(current) == undo["written_sha256"]:
                        restored = backup
                    elif find_peer_spans(current, new):
                        old_psk = rec.get("preshared_key")
                        restored = replace_peer_key(current, new, old, old_psk)
                    else:
                        restored = restored_file(current, backup, [old], None)
                    await ex.write_file(path, restored, mode=await file_mode(ex, path))
            live = await live_interface(ex, iface)
            argv = ["wg", "set", iface]
            if new in live.peers:
                argv += ["peer", new, "remove"]
            psk = rec.get("preshared_key")
            if old not in live.peers:
                argv += add_peer_argv(iface, old, rec, with_psk=bool(psk))[3:]
            if len(argv) > 3:
                await ex.run(argv, input=(psk + "\n").encode() if psk and old not in live.peers else None)
            live = await live_interface(ex, iface)
            data = await ex.read_file(path) if path else None
        except (WgsiemError, KeyError, OSError) as exc:
            what = exc.render() if isinstance(exc, WgsiemError) else type(exc).__name__
            return ActionResult(ok=False, summary=f"could not put {old} back on {iface}", error=what)
        ok = (
            old in live.peers and new not in live.peers and (data is None or bool(find_peer_spans(data, old)))
        )
        return ActionResult(
            ok=ok,
            verified=ok,
            summary=f"{old} is back in place of {new} on {iface}" if ok else "old key not fully restored",
            error=None if ok else "restore not complete when read back",
        )
