"""The only module that reads pytest's private attributes (pinned pytest 9.2.0; `tests/unit/test_pytest_private.py`
fails loudly when a pytest release changes them). A check that runs ahead is given its fixtures outside pytest's
set-up, so it needs, per check, what pytest resolved at collection:

- `Function._fixtureinfo.argnames` and `.name2fixturedefs`: the check's own arguments and its fixture closure;
- `FixtureDef.func`, `.argnames`, `.scope`: a fixture's own function, its arguments and its scope;
- `FixtureDef.cached_result`: a session fixture's value (or the error it raised) once resolved.
"""

from __future__ import annotations

from typing import Any
from collections.abc import Callable

import pytest


def argnames(item: pytest.Function) -> tuple[str, ...]:
    """The arguments of the check function itself (not its fixture closure)."""
    return tuple(item._fixtureinfo.argnames)


def fixturedef(item: pytest.Item, name: str) -> Any | None:
    """The definition of fixture `name` this check gets (the closest override), or None if it is not a fixture."""
    defs = item._fixtureinfo.name2fixturedefs.get(name)  # type: ignore[attr-defined]
    return defs[-1] if defs else None


def fixture_scope(fixturedef: Any) -> str:
    return str(fixturedef.scope)


def fixture_argnames(fixturedef: Any) -> tuple[str, ...]:
    return tuple(fixturedef.argnames)


def fixture_function(fixturedef: Any) -> Callable[..., Any]:
    """The fixture's own function (a plain function or a generator function), callable with its arguments."""
    return fixturedef.func


def cached(fixturedef: Any) -> tuple[bool, Any, BaseException | None]:
    """(resolved, value, error) of a fixture pytest has set up (its value is None and its error is set if it failed)."""
    result = fixturedef.cached_result
    if result is None:
        return False, None, None
    value, _key, error = result
    return True, value, (error[1] if isinstance(error, tuple) else error)
