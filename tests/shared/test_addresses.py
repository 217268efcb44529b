"""Semantic addresses: parsing, errors that name the position, round trips, resolution."""

from __future__ import annotations

import pytest
from whoosh_shared.contract.addresses import (
    Address,
    AddressError,
    format_address,
    parse_address,
    resolve,
)
from whoosh_shared.contract.agents import AgentSpec


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "whoosh://agent-7:reviewer@net:t1/src/a.py",
            Address(project="net", agent="agent-7", role="reviewer", task="t1", path="src/a.py"),
        ),
        (
            "bzzz://agent-7:reviewer@*",
            Address(project="*", agent="agent-7", role="reviewer", scheme="bzzz"),
        ),
        ("bzzz://architect@*", Address(project="*", agent="architect", scheme="bzzz")),
        ("whoosh://:architect@Proj", Address(project="Proj", role="architect")),
        ("whoosh://proj", Address(project="proj")),
        ("whoosh://proj:task-9", Address(project="proj", task="task-9")),
        ("whoosh://*@proj/**", Address(project="proj", path="**")),
        (
            "bzzz://agent-7:reviewer@net/*",
            Address(project="net", agent="agent-7", role="reviewer", path="*", scheme="bzzz"),
        ),
    ],
)
def test_parse(text: str, expected: Address) -> None:
    assert parse_address(text) == expected


@pytest.mark.parametrize(
    ("text", "position", "words"),
    [
        ("http://a@b", 1, "unknown scheme"),
        ("whoosh:/a@b", 1, "expected 'whoosh://'"),
        ("whoosh://a b@p", 11, "segment 'agent'"),
        ("whoosh://a:r!@p", 13, "segment 'role'"),
        ("whoosh://a@", 12, "segment 'project' is empty"),
        ("whoosh://a@p:", 14, "segment 'task' is empty"),
        ("whoosh://a@p:t$", 15, "segment 'task'"),
        ("whoosh://a@b@c", 11, "more than one '@'"),
        ("whoosh://a@p/x y", 15, "segment 'path'"),
    ],
)
def test_errors_name_the_position(text: str, position: int, words: str) -> None:
    with pytest.raises(AddressError) as caught:
        parse_address(text)
    assert caught.value.position == position
    assert words in str(caught.value)
    assert f"position {position}" in str(caught.value)


@pytest.mark.parametrize(
    "address",
    [
        Address(project="p"),
        Address(project="p", agent="a"),
        Address(project="p", role="r"),
        Address(project="p", agent="a", role="r", task="t", path="x/y"),
        Address(project="*", agent="a*", role="rev*", path="", scheme="bzzz"),
    ],
)
def test_round_trip(address: Address) -> None:
    assert parse_address(format_address(address)) == address
    assert format_address(parse_address(format_address(address))) == format_address(address)


def spec(name: str, **fields) -> AgentSpec:
    return AgentSpec(name=name, command=["cat"], **fields)


def test_resolve_by_role_project_and_glob_in_a_fixed_order() -> None:
    specs = [
        spec("zed", specialization="reviewer"),
        spec("amy", capabilities={"reviewer": 0.5}, projects=["net"]),
        spec("bob", capabilities={"reviewer": 0.9}, projects=["web"]),
        spec("cal", capabilities={"coding": 1.0}),
    ]
    assert resolve(parse_address("whoosh://:reviewer@net"), specs) == ["zed", "amy"]
    assert resolve(parse_address("whoosh://:reviewer@*"), specs) == ["zed", "bob", "amy"]
    assert resolve(parse_address("whoosh://*:reviewer@web"), specs, enabled={"bob"}) == [
        "bob",
        "zed",
    ]
    assert resolve(parse_address("whoosh://c*@x"), specs) == ["cal"]
    assert resolve(parse_address("whoosh://:architect@*"), specs) == []
