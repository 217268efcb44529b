"""The size policy at the coordinator's door: what a SubmitTask may carry (pure).

The gateway and the `whoosh` command check the same limits first, with the same
wording; this check is the one a program talking NATS directly cannot skip.
"""

from __future__ import annotations

from whoosh_shared.contract import commands as c
from whoosh_shared.contract.commands import RejectCode
from whoosh_shared.contract.limits import LimitSettings, too_large, utf8_size

from whoosh_coordinator.rejection import Rejected


def check_prompt_size(cmd: c.SubmitTask, limits: LimitSettings) -> None:
    """Refuse a prompt over limits.max_prompt_bytes, and an inline prompt over
    limits.inline_bytes: it would make every event, work item and reply that carries it
    too large for the bus, so it must come as a `prompt_ref` (the gateway and the CLI
    store it in the blob store themselves)."""
    size = cmd.prompt_ref.bytes if cmd.prompt_ref else utf8_size(cmd.prompt)
    if size > limits.max_prompt_bytes:
        raise Rejected(
            RejectCode.TOO_LARGE,
            too_large("the prompt", size, limits.max_prompt_bytes, "max_prompt_bytes"),
        )
    if cmd.prompt_ref is None and size > limits.inline_bytes:
        raise Rejected(
            RejectCode.TOO_LARGE,
            f"an inline prompt is {size} bytes, over limits.inline_bytes ({limits.inline_bytes}):"
            " store it in the blob store (whoosh_shared.runtime.blob_store) and send prompt_ref",
        )
