"""Parsing the asset inventory: YAML and CSV, typed assets, bad rows located with a fix."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wgsiem.enrich.enrich_assets.inventory import AssetTable, parse_inventory
from wgsiem.errors import ParseError

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "enrich"


def load(name: str) -> tuple[list, list[ParseError]]:
    path = FIXTURES / name
    return parse_inventory(path.read_text(), str(path))


@pytest.mark.parametrize("name", ["assets.yaml", "assets.csv"])
def test_good_inventory_parses_to_the_same_assets(name: str) -> None:
    assets, problems = load(name)
    assert problems == []
    docs = {a.name: a.document() for a in assets}
    assert docs["hr-db-01"] == {
        "name": "hr-db-01",
        "network": "10.20.5.10/32",
        "owner": "hr-it@corp.example",
        "department": "HR",
        "criticality": 5,
        "criticality_level": "critical",
        "environment": "production",
        "tags": ["database", "pii"],
    }
    assert docs["vpn-gateway"]["hostname"] == "gw-test"
    assert docs["vpn-gateway"]["criticality"] == 4
    assert docs["staging"]["criticality_level"] == "low" and "tags" not in docs["staging"]
    assert [a.location.line for a in assets][:2] == ([3, 10] if name.endswith("yaml") else [3, 4])


def test_yaml_and_csv_give_equal_documents() -> None:
    y, _ = load("assets.yaml")
    c, _ = load("assets.csv")
    assert [a.document() for a in y] == [a.document() for a in c]


def test_longest_prefix_wins() -> None:
    assets, _ = load("assets.yaml")
    table = AssetTable(assets)

    def name(ip: str) -> str | None:
        hit = table.match_ip(ipaddress.ip_address(ip))
        return hit.name if hit else None

    assert name("10.20.5.10") == "hr-db-01"
    assert name("10.20.5.11") == "hr-database-subnet"
    assert name("10.20.200.1") == "datacenter"
    assert name("10.20.9.2") == "dc-01"
    assert name("10.30.1.1") == "staging"
    assert name("fd00:20::99") == "datacenter-v6"
    assert name("10.40.0.1") is None and name("fd00:21::1") is None
    assert table.match_hostname("GW-TEST") is not None


def test_bad_yaml_rows_are_reported_with_line_and_fix_and_good_ones_kept() -> None:
    assets, problems = load("assets_bad.yaml")
    assert [a.name for a in assets] == ["datacenter", "fine-after-bad-ones"]
    where = [(str(p.location).rsplit("/", 1)[-1], p.what) for p in problems]
    assert where == [
        (
            "assets_bad.yaml:5",
            "bad inventory row: cidr '10.20.5.1/24' is not a network (10.20.5.1/24 has host bits set)",
        ),
        (
            "assets_bad.yaml:7",
            "bad inventory row: criticality 'extreme' is not 1–5 or one of "
            "low, medium, high, very_high, critical",
        ),
        ("assets_bad.yaml:10", "bad inventory row: needs exactly one of cidr or hostname"),
        ("assets_bad.yaml:13", "bad inventory row: needs exactly one of cidr or hostname"),
        ("assets_bad.yaml:14", "bad inventory row: 10.20.0.0/16 is already listed at line 2"),
        ("assets_bad.yaml:16", "bad inventory row: unknown column(s) enviroment"),
    ]
    assert all(p.fix for p in problems)
    assert "did you mean 10.20.5.0/24?" in (problems[0].fix or "")


def test_bad_csv_rows_are_reported_with_line_and_fix_and_good_ones_kept() -> None:
    assets, problems = load("assets_bad.csv")
    assert [a.name for a in assets] == ["datacenter", "fine-after-bad-ones"]
    assert [p.location.line for p in problems if p.location] == [3, 4, 5, 6]
    assert "'not-a-network' is not a network" in problems[0].what
    assert "criticality '9'" in problems[1].what
    assert "name is missing" in problems[2].what
    assert "10 values for 8 columns" in problems[3].what
    assert all(p.fix for p in problems)


def test_a_file_that_is_not_yaml_is_one_located_error() -> None:
    with pytest.raises(ParseError) as info:
        parse_inventory("assets:\n  - cidr: [10.0.0.0/8\n", "inv.yaml")
    assert str(info.value.location).startswith("inv.yaml:")


def test_a_csv_without_header_is_one_located_error() -> None:
    with pytest.raises(ParseError) as info:
        parse_inventory("10.0.0.0/8,x\n", "inv.csv")
    assert str(info.value.location) == "inv.csv:1"


def test_empty_inventories_are_empty() -> None:
    assert parse_inventory("", "a.yaml") == ([], [])
    assert parse_inventory("assets:\n", "a.yaml") == ([], [])
    assert parse_inventory("cidr,name\n", "a.csv") == ([], [])


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300), st.sampled_from(["x.yaml", "x.csv"]))
def test_arbitrary_text_only_ever_raises_parse_error(text: str, file: str) -> None:
    try:
        assets, problems = parse_inventory(text, file)
    except ParseError:
        return
    AssetTable(assets)
    assert all(isinstance(p, ParseError) and p.location is not None for p in problems)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.ip_addresses().map(str), min_size=1, max_size=10))
def test_good_rows_around_a_bad_one_are_kept(ips: list[str]) -> None:
    rows = ["cidr,name,criticality"]
    rows += [f"{ip},host{i},3" for i, ip in enumerate(dict.fromkeys(ips))]
    rows.insert(2, "bogus,broken,3")
    assets, problems = parse_inventory("\n".join(rows) + "\n", "x.csv")
    assert len(assets) == len(dict.fromkeys(ips)) and len(problems) == 1
    assert problems[0].location is not None and problems[0].location.line == 3
