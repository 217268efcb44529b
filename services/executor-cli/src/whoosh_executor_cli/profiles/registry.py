"""Which profile reads which CLI: one shared, stateless instance per `CliKind`."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from whoosh_shared.contract.enums import CliKind

from whoosh_executor_cli.profiles.base import Profile
from whoosh_executor_cli.profiles.claude import ClaudeProfile
from whoosh_executor_cli.profiles.codex import CodexProfile
from whoosh_executor_cli.profiles.gemini import GeminiProfile
from whoosh_executor_cli.profiles.generic import GenericProfile

PROFILES: Mapping[CliKind, Profile] = MappingProxyType(
    {
        CliKind.GENERIC: GenericProfile(),
        CliKind.GEMINI: GeminiProfile(),
        CliKind.CLAUDE: ClaudeProfile(),
        CliKind.CODEX: CodexProfile(),
    }
)


def profile_for(kind: CliKind | str) -> Profile:
    """The profile for an agent's `cli` setting (a `CliKind` or its string value)."""
    return PROFILES[CliKind(kind)]
