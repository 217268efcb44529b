"""The one exception the domain raises: a command that must be refused, with its reason."""

from whoosh_shared.contract.commands import RejectCode


class Rejected(Exception):
    """Raised before any event is triggered, so a refused command leaves nothing behind."""

    def __init__(self, code: RejectCode, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason
