"""W3C trace context for checks: one trace per check, one span per request, so Jaeger finds the run."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field

TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}$")


def parse_traceparent(value: str | None) -> tuple[str, str] | None:
    """(trace id, span id) of a valid traceparent header, else None."""
    match = TRACEPARENT.match((value or "").strip())
    return (match.group(1), match.group(2)) if match else None


@dataclass(frozen=True)
class CheckTrace:
    """The trace a check's requests belong to."""

    trace_id: str = field(default_factory=lambda: secrets.token_hex(16))

    def new_span(self) -> tuple[str, str]:
        """(traceparent, request id) for one request of the check."""
        return f"00-{self.trace_id}-{secrets.token_hex(8)}-01", secrets.token_hex(16)
