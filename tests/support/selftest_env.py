"""The environment files the self-tests run the product with: envs/*.toml, with local.toml's timing budgets sized for
a loaded machine.

envs/local.toml's budgets (an answer within 1 s, a read timeout of 2 s, an order confirmed and its mail sent within
5 s) are what `make smoke` promises on the shipped stack of a quiet machine. The self-tests judge the checker's logic,
not the stack's speed, and run many smoke runs against one stack, several at once; `make test-beside` runs two make
tests on the 2 cores. Measured there (2026-12-03, on c1d11a2), healthy checks failed those budgets: answers of
1.00-1.06 s against the 1 s budget, POST /api/orders with no answer within the 2 s read timeout, outbox mails later
than 5 s. So the self-tests' runs get the budgets below, and their slow and hanging faults are sized from these values
(a slow answer takes longer than the health budget, whatever the load, so it still fails).

`with_env_dir` gives a run's arguments `--env-dir` of these files unless they name an env dir of their own; a test writing its own
env file starts from `local_env_text()`.
"""

from __future__ import annotations

import atexit
import functools
import re
import shutil
import tempfile
import tomllib
from pathlib import Path

SHIPPED = Path(__file__).resolve().parents[2] / "envs"

# (table, key) -> the self-tests' value; envs/local.toml's own value in the comment
LOADED_BUDGETS: dict[tuple[str, str], float] = {
    ("http", "connect_timeout_seconds"): 2.0,  # 1 s
    # 2 s; under the local gateway's 5 s upstream timeout, so a hanging service is still the checker's own timeout
    # through the gateway (stack/gateway.py), not the gateway's 504
    ("http", "read_timeout_seconds"): 4.0,
    ("thresholds", "health_latency_seconds"): 2.5,  # 1 s
    ("thresholds", "order_confirmation_seconds"): 10.0,  # 5 s
    ("thresholds", "notification_delivery_seconds"): 10.0,  # 5 s
    ("browser", "timeout_seconds"): 15.0,  # 5 s
}

READ_TIMEOUT = LOADED_BUDGETS[("http", "read_timeout_seconds")]
HEALTH_BUDGET = LOADED_BUDGETS[("thresholds", "health_latency_seconds")]
CONFIRMATION_BUDGET = LOADED_BUDGETS[("thresholds", "order_confirmation_seconds")]
DELIVERY_BUDGET = LOADED_BUDGETS[("thresholds", "notification_delivery_seconds")]
SLOW_ANSWER = HEALTH_BUDGET + 0.3  # a `slow` fault's delay that fails the health budget


def with_budgets(text: str, budgets: dict[tuple[str, str], float]) -> str:
    """`text` (an env file) with each `key = value` line of `budgets` replaced inside its own [table]; every key must
    be there exactly once, so a renamed key in envs/local.toml fails here rather than silently keeping its value."""
    lines, table, replaced = text.splitlines(keepends=True), "", set()
    for index, line in enumerate(lines):
        header = re.match(r"\s*\[([^\]]+)\]\s*$", line)
        if header:
            table = header.group(1).strip()
            continue
        assignment = re.match(r"(\s*)([A-Za-z0-9_]+)(\s*=\s*)([^#\n]*?)(\s*(#.*)?)(\n?)$", line)
        if assignment and (table, assignment.group(2)) in budgets:
            key = (table, assignment.group(2))
            if key in replaced:
                raise ValueError(f"{table}.{key[1]} is set twice")
            replaced.add(key)
            indent, name, equals, _, comment, _, newline = assignment.groups()
            lines[index] = f"{indent}{name}{equals}{budgets[key]!r}{comment}{newline}"
    missing = sorted(f"{t}.{k}" for t, k in set(budgets) - replaced)
    if missing:
        raise ValueError(f"not in the env file: {', '.join(missing)}")
    return "".join(lines)


def local_env_text() -> str:
    """envs/local.toml with the self-tests' budgets."""
    text = with_budgets((SHIPPED / "local.toml").read_text(), LOADED_BUDGETS)
    parsed = tomllib.loads(text)
    assert all(parsed[table][key] == value for (table, key), value in LOADED_BUDGETS.items()), parsed
    return text


@functools.cache
def env_dir() -> Path:
    """A folder of this process with every shipped env file, local.toml with the self-tests' budgets."""
    folder = Path(tempfile.mkdtemp(prefix="selftest-envs-"))
    atexit.register(shutil.rmtree, folder, True)  # the process's runs are over when it exits
    for path in SHIPPED.glob("*.toml"):
        (folder / path.name).write_text(local_env_text() if path.name == "local.toml" else path.read_text())
    return folder


def with_env_dir(args: tuple[str, ...] | list[str]) -> list[str]:
    """A product run's pytest arguments, given the self-tests' env files unless they name an env dir of their own."""
    named = any(arg == "--env-dir" or arg.startswith("--env-dir=") for arg in args)
    return list(args) if named else [*args, f"--env-dir={env_dir()}"]
