"""Prometheus durations (`90s`, `5m`, `1h30m`, `500ms`): how the config, the gates and the queries write a time span."""

from __future__ import annotations

import re

_DURATION = re.compile(r"^(?:(\d+)y)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?(?:(\d+)ms)?$")
_UNIT_SECONDS = (365 * 86400, 7 * 86400, 86400, 3600, 60, 1, 0.001)


def parse_duration(text: str) -> float:
    """Seconds in a Prometheus duration (`90s`, `5m`, `1h30m`, `500ms`); ValueError for anything else."""
    match = _DURATION.match(text.strip()) if isinstance(text, str) else None
    if not match or not text.strip():
        raise ValueError(f"{text!r} is not a Prometheus duration (e.g. 30s, 5m, 1h30m)")
    return sum(int(part) * unit for part, unit in zip(match.groups(), _UNIT_SECONDS) if part)
