"""Checking the parameters of a fault request, and saying which services a fault kind applies to."""

from __future__ import annotations

from typing import Any
from collections.abc import Callable

Scope = Callable[[str, dict[str, Any]], "str | None"]  # (service, params) -> None when it applies, else why not


class FaultError(ValueError):
    """A fault request the stack cannot honour (unknown kind, bad parameters)."""


def number(params: dict[str, Any], key: str, default: float, low: float, high: float) -> float:
    value = params.get(key, default)
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not low <= value <= high:
        raise FaultError(f"'{key}' must be a number in [{low}, {high}], got {value!r}")
    return float(value)


def integer(params: dict[str, Any], key: str, default: int, low: int, high: int) -> int:
    value = params.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise FaultError(f"'{key}' must be an integer in [{low}, {high}], got {value!r}")
    return value


def text(params: dict[str, Any], key: str, default: str | None = None, choices: tuple[str, ...] = ()) -> str:
    value = params.get(key, default)
    if not isinstance(value, str) or not value or (choices and value not in choices):
        allowed = f" (one of {', '.join(choices)})" if choices else ""
        raise FaultError(f"'{key}' must be a non-empty string{allowed}, got {value!r}")
    return value


def optional_text(params: dict[str, Any], key: str) -> str | None:
    return None if params.get(key) is None else text(params, key)


def no_params(params: dict[str, Any]) -> dict[str, Any]:
    return {}


def paths(params: dict[str, Any]) -> list[str]:
    value = params.get("paths", ["/"])
    if not isinstance(value, list) or not all(isinstance(p, str) and p.startswith("/") for p in value):
        raise FaultError(f"'paths' must be a list of path prefixes, got {value!r}")
    return value


def only(*services: str) -> Scope:
    def check(service: str, params: dict[str, Any]) -> str | None:
        return None if service in services else f"only {', '.join(services)} can show it"

    return check
