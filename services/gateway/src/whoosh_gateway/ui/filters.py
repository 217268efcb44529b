"""The task list's filters, read from the URL the way people edit URLs: leniently.

Each filter maps 1:1 to a `/api/v1/tasks` parameter, so a dashboard URL and an API call
say the same thing. A value that does not parse is dropped with a notice naming it (the
page still shows, unfiltered by it) instead of failing the whole page. Pure.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

from pydantic import TypeAdapter, ValidationError
from whoosh_shared.contract.agents import AgentName, CapabilityName
from whoosh_shared.contract.enums import TaskStatus
from whoosh_shared.contract.queries import ListTasks

AGO = re.compile(r"^(\d{1,6})([smhd])$")
UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
PAGE_SIZE = 50
FILTER_NAMES = ("status", "agent", "capability", "since", "until")


@dataclass
class TaskFilters:
    status: TaskStatus | None = None
    agent: str | None = None
    capability: str | None = None
    since: str | None = None  # as typed (ISO time or 30m / 2h / 1d ago), kept for the form
    until: str | None = None
    cursor: str | None = None
    notices: list[str] = field(default_factory=list)
    _after: datetime | None = None
    _before: datetime | None = None

    def query(self) -> ListTasks:
        return ListTasks(
            status=self.status,
            agent=self.agent,
            capability=self.capability,
            submitted_after=self._after,
            submitted_before=self._before,
            limit=PAGE_SIZE,
            after=self.cursor,
        )

    def url_params(self, **override: str | None) -> str:
        """The query string of these filters (with some replaced), for links."""
        values = {
            "status": self.status.value if self.status else None,
            "agent": self.agent,
            "capability": self.capability,
            "since": self.since,
            "until": self.until,
            **override,
        }
        return urlencode({k: v for k, v in values.items() if v})

    @property
    def active(self) -> bool:
        return any((self.status, self.agent, self.capability, self.since, self.until))


def parse_filters(params: Mapping[str, str], now: datetime | None = None) -> TaskFilters:
    now = now or datetime.now(UTC)
    found = TaskFilters()
    status = _text(params, "status")
    if status:
        try:
            found.status = TaskStatus(status)
        except ValueError:
            choices = ", ".join(s.value for s in TaskStatus)
            found.notices.append(f"ignored status={status!r}: not one of {choices}")
    for name, adapter in (("agent", AgentName), ("capability", CapabilityName)):
        value = _text(params, name)
        if value:
            try:
                setattr(found, name, TypeAdapter(adapter).validate_python(value))
            except ValidationError:
                found.notices.append(f"ignored {name}={value!r}: not a valid {name} name")
    for name in ("since", "until"):
        value = _text(params, name)
        if value:
            moment = parse_when(value, now)
            if moment is None:
                found.notices.append(
                    f"ignored {name}={value!r}: use an ISO time or an age like 30m, 2h, 1d"
                )
            else:
                setattr(found, name, value)
                setattr(found, "_after" if name == "since" else "_before", moment)
    cursor = _text(params, "cursor")
    if cursor:
        if cursor.isdigit() and len(cursor) <= 40:
            found.cursor = cursor
        else:
            found.notices.append(f"ignored cursor={cursor!r}: not a page cursor")
    return found


def parse_when(text: str, now: datetime) -> datetime | None:
    """An ISO time (UTC when it names no zone), or an age: 30m, 2h, 1d ago."""
    match = AGO.match(text.strip())
    if match:
        return now - timedelta(**{UNITS[match.group(2)]: int(match.group(1))})
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _text(params: Mapping[str, str], name: str) -> str:
    return (params.get(name) or "").strip()[:200]
