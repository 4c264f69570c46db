"""The SOAR API on loopback: bearer auth (401 without or with a bad token) and the flows a SOAR
platform uses — propose, list, approve, deny, read an action."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from wgsiem.respond.api import RespondApi
from wgsiem.respond.config import RespondApiConfig

from . import fakes
from .harness import audit_records, fake_state, make_engine

KEY = "UV0ZLZMjrlNYkdmY/4KSw6terGfy0VACCBJ8fYPrMGw="
TOKEN = "s3cr3t-token-for-soar-0123456789"


@pytest.fixture(autouse=True)
def _fakes() -> Iterator[None]:
    fakes.install()
    yield
    fakes.uninstall()


async def _with_api(tmp: Path, scenario: Any) -> Any:
    eng = make_engine(tmp)
    api = RespondApi(eng, RespondApiConfig(listen="127.0.0.1", port=0, tokens={"soar": TOKEN}))
    await api.start()
    try:
        async with aiohttp.ClientSession(base_url=api.url) as http:
            return await scenario(http, eng)
    finally:
        await api.stop()
        eng.close()


def auth(token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_no_or_bad_token_is_401(tmp_path: Path) -> None:
    async def scenario(http: aiohttp.ClientSession, eng: Any) -> list[int]:
        codes = []
        for headers in ({}, auth("wrong"), {"Authorization": f"Basic {TOKEN}"}, auth("")):
            async with http.get("/api/v1/proposals", headers=headers) as r:
                codes.append(r.status)
                assert r.headers.get("WWW-Authenticate", "").startswith("Bearer")
        async with http.post("/api/v1/proposals", json={"playbook": "contain", "alert": fakes.alert()}) as r:
            codes.append(r.status)
        assert eng.store.proposals() == []
        return codes

    assert asyncio.run(_with_api(tmp_path, scenario)) == [401, 401, 401, 401, 401]


def test_propose_tier1_runs_and_action_is_readable(tmp_path: Path) -> None:
    async def scenario(http: aiohttp.ClientSession, eng: Any) -> None:
        body = {"playbook": "contain", "alert": {"source": {"ip": "198.51.100.9"}}, "reason": "SOAR case 42"}
        async with http.post("/api/v1/proposals", json=body, headers=auth()) as r:
            assert r.status == 202
            out = await r.json()
        pid = out["id"]
        for _ in range(200):
            if eng.store.proposal(pid)["status"] == "done":
                break
            await asyncio.sleep(0.01)
        async with http.get(f"/api/v1/actions/{pid}.1", headers=auth()) as r:
            action = await r.json()
        assert (action["status"], action["undoable"], action["result"]["summary"]) == (
            "ok",
            True,
            "blocked 198.51.100.9",
        )
        async with http.post("/api/v1/proposals", json=body, headers=auth()) as r:
            again = await r.json()
        assert again["proposals"][0]["duplicate"] is True and again["id"] == pid
        async with http.get("/api/v1/actions/nope", headers=auth()) as r:
            assert r.status == 404

    asyncio.run(_with_api(tmp_path, scenario))
    assert fake_state(tmp_path)["blocked"] == ["198.51.100.9"]
    rec = audit_records(tmp_path / "state" / "audit.jsonl")[0]
    assert (rec["actor"], rec["origin"], rec["reason"]) == ("api:soar", "api", "SOAR case 42")
    assert TOKEN not in (tmp_path / "state" / "audit.jsonl").read_text()


def test_tier2_approve_and_deny_through_the_api(tmp_path: Path) -> None:
    async def scenario(http: aiohttp.ClientSession, eng: Any) -> None:
        a1 = fakes.alert(rule="wireguard_unallowed_source_ip", playbook="x", peer=KEY, alert_id="a1")
        a2 = fakes.alert(rule="wireguard_unallowed_source_ip", playbook="x", peer=KEY, alert_id="a2")
        ids = []
        for a in (a1, a2):
            async with http.post(
                "/api/v1/proposals", json={"playbook": None, "alert": a}, headers=auth()
            ) as r:
                assert r.status == 202
                body = await r.json()
                assert body["status"] == "pending"
                ids.append(body["id"])
        async with http.get("/api/v1/proposals?status=pending", headers=auth()) as r:
            assert sorted(p["id"] for p in (await r.json())["proposals"]) == sorted(ids)
        assert fake_state(tmp_path)["revoked"] == []
        async with http.post(
            f"/api/v1/proposals/{ids[0]}/approve", json={"reason": "owner confirmed"}, headers=auth()
        ) as r:
            assert r.status == 200 and (await r.json())["status"] == "approved"
        async with http.post(
            f"/api/v1/proposals/{ids[1]}/deny", json={"reason": "duplicate of case 7"}, headers=auth()
        ) as r:
            assert (await r.json())["status"] == "denied"
        async with http.post(
            f"/api/v1/proposals/{ids[1]}/approve", json={"reason": "x"}, headers=auth()
        ) as r:
            assert r.status == 409
        async with http.post(f"/api/v1/proposals/{ids[0]}/deny", json={}, headers=auth()) as r:
            assert r.status in (400, 409)
        for _ in range(200):
            if eng.store.proposal(ids[0])["status"] == "done":
                break
            await asyncio.sleep(0.01)
        async with http.get(f"/api/v1/proposals/{ids[1]}", headers=auth()) as r:
            p = await r.json()
        assert (
            p["decisions"][0]["reason"] == "duplicate of case 7" and p["decisions"][0]["actor"] == "api:soar"
        )

    asyncio.run(_with_api(tmp_path, scenario))
    assert fake_state(tmp_path)["revoked"] == [KEY]


def test_bad_requests(tmp_path: Path) -> None:
    async def scenario(http: aiohttp.ClientSession, eng: Any) -> list[int]:
        codes = []
        for body in ({"playbook": "nope", "alert": {}}, {"alert": "x"}, {"playbook": None, "alert": {}}):
            async with http.post("/api/v1/proposals", json=body, headers=auth()) as r:
                codes.append(r.status)
        async with http.post("/api/v1/proposals", data=b"{not json", headers=auth()) as r:
            codes.append(r.status)
        async with http.post("/api/v1/proposals/p-x/approve", json={"reason": "r"}, headers=auth()) as r:
            codes.append(r.status)
        return codes

    assert asyncio.run(_with_api(tmp_path, scenario)) == [404, 400, 422, 400, 404]
