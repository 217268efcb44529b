"""Semantic addresses: `whoosh://[agent][:role]@project[:task][/path]` (`bzzz://` too).

Parsed by hand, not by a URL library: `urllib.parse` reads `:role` as a password and
`:task` as a port (and lowercases the project), so every address with a role or a task
would be misread. Errors name the 1-based character position and the segment, so a
person can fix the address without reading the grammar.

    address = scheme "://" [ [agent] [":" role] "@" ] project [":" task] ["/" path]
    name    = 1*64( ALPHA / DIGIT / "." / "_" / "-" )  or  a glob using "*"

An empty agent or role means "*"; with no "@" the address names only a project.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fnmatch import fnmatchcase

from whoosh_shared.contract.agents import AgentSpec

SCHEMES = ("whoosh", "bzzz")
NAME_CHARS = re.compile(r"[A-Za-z0-9._*-]")
MAX_NAME = 64


class AddressError(ValueError):
    """A malformed address; `position` is 1-based, into the whole address text."""

    def __init__(self, position: int, message: str) -> None:
        super().__init__(f"address: {message} at position {position}")
        self.position = position


@dataclass(frozen=True)
class Address:
    project: str = "*"
    agent: str = "*"
    role: str = "*"
    task: str | None = None
    path: str | None = None
    scheme: str = "whoosh"

    def __str__(self) -> str:
        return format_address(self)


def format_address(address: Address) -> str:
    """The canonical text; `parse_address(format_address(a)) == a` for every address."""
    head = f"{address.scheme}://"
    if (address.agent, address.role) != ("*", "*"):
        agent = "" if address.agent == "*" and address.role != "*" else address.agent
        role = "" if address.role == "*" else f":{address.role}"
        head += f"{agent}{role}@"
    text = head + address.project
    if address.task is not None:
        text += f":{address.task}"
    if address.path is not None:
        text += f"/{address.path}"
    return text


def parse_address(text: str) -> Address:
    scheme, sep, rest = text.partition("://")
    if not sep:
        raise AddressError(1, "expected 'whoosh://' or 'bzzz://' at the start")
    if scheme not in SCHEMES:
        raise AddressError(1, f"unknown scheme '{scheme}' (expected whoosh or bzzz)")
    offset = len(scheme) + 3  # characters before `rest`
    body, slash, path = rest.partition("/")
    agent, role = "*", "*"
    if "@" in body:
        who, _, where = body.rpartition("@")
        if "@" in who:
            raise AddressError(offset + who.index("@") + 1, "more than one '@'")
        agent_text, colon, role_text = who.partition(":")
        agent = _name(agent_text, "agent", offset, allow_empty=True) or "*"
        if colon:
            role = _name(role_text, "role", offset + len(agent_text) + 1, allow_empty=True) or "*"
        offset += len(who) + 1
    else:
        where = body
    project_text, colon, task_text = where.partition(":")
    project = _name(project_text, "project", offset, allow_empty=False)
    task = _name(task_text, "task", offset + len(project_text) + 1, False) if colon else None
    return Address(
        project=project,
        agent=agent,
        role=role,
        task=task,
        path=_path(path, len(text) - len(path)) if slash else None,
        scheme=scheme,
    )


def _name(text: str, segment: str, offset: int, allow_empty: bool) -> str:
    """`offset`: characters before `text` in the whole address (its position is offset+1)."""
    if not text:
        if allow_empty:
            return ""
        raise AddressError(offset + 1, f"segment '{segment}' is empty")
    for index, char in enumerate(text):
        if not NAME_CHARS.fullmatch(char):
            raise AddressError(
                offset + index + 1,
                f"segment '{segment}' has {char!r} (allowed: A-Z a-z 0-9 . _ - *)",
            )
    if len(text) > MAX_NAME:
        raise AddressError(offset + 1, f"segment '{segment}' is longer than {MAX_NAME} characters")
    return text


def _path(text: str, offset: int) -> str:
    for index, char in enumerate(text):
        if char.isspace() or ord(char) < 32:
            raise AddressError(offset + index + 1, "segment 'path' has whitespace or a control")
    return text


# -- resolution -----------------------------------------------------------------------


def serves(spec: AgentSpec, address: Address) -> bool:
    """Whether an agent matches: its name (glob), a role that is its specialization or one
    of its capabilities (glob), and a project it serves (no `projects` = every project)."""
    if not fnmatchcase(spec.name, address.agent):
        return False
    if address.role != "*":
        roles = [spec.specialization or "", *spec.capabilities]
        if not any(fnmatchcase(role, address.role) for role in roles if role):
            return False
    projects = getattr(spec, "projects", None) or []
    if address.project == "*" or not projects:
        return True
    return any(fnmatchcase(project, address.project) for project in projects)


def resolve(address: Address, specs: list[AgentSpec], enabled: set[str] | None = None) -> list[str]:
    """Names of the matching agents, deterministic: enabled first, then the proficiency of
    the role (when the role names a capability) descending, then the name."""

    def order(spec: AgentSpec) -> tuple[int, float, str]:
        on = enabled is None or spec.name in enabled
        proficiency = spec.capabilities.get(address.role, 1.0) if address.role != "*" else 1.0
        return (0 if on else 1, -proficiency, spec.name)

    return [spec.name for spec in sorted((s for s in specs if serves(s, address)), key=order)]
