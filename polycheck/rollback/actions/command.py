"""`command`: run `rollback.command` (an argv list, no shell) with the service's placeholders filled."""

from __future__ import annotations

import string
import subprocess
from dataclasses import dataclass

from polycheck.rollback.actions.protocol import Plan, RollbackActionError, Target

PLACEHOLDERS = ("service", "deployment", "release", "run_id", "env")


@dataclass(frozen=True)
class CommandSettings:
    command: list[str]

    def __post_init__(self) -> None:
        if not self.command:
            raise ValueError("needs rollback.command (an argv list)")
        for part in self.command:
            for _, name, _, _ in string.Formatter().parse(part):
                if name is not None and name not in PLACEHOLDERS:
                    raise ValueError(f"has an unknown placeholder {{{name}}} in rollback.command; known: {', '.join(PLACEHOLDERS)}")


class Command:
    """The argv, run once with `rollback.timeout_seconds`; a non-zero exit is a failed action."""

    name = "command"
    settings = CommandSettings

    def plan(self, target: Target, settings: CommandSettings) -> Plan:
        payload = target.payload
        values = {"service": target.service, "deployment": target.deployment, "release": payload.get("release") or "",
                  "run_id": payload.get("run_id", ""), "env": payload.get("env", "")}
        try:
            argv = [part.format(**values) for part in settings.command]
        except (KeyError, IndexError) as exc:
            raise RollbackActionError(f"rollback.command has an unknown placeholder {exc}; known: {', '.join(values)}") from None

        def apply() -> str:
            try:
                done = subprocess.run(argv, capture_output=True, text=True, timeout=target.timeout, check=False)
            except (OSError, subprocess.TimeoutExpired) as exc:
                raise RollbackActionError(f"command {argv}: {exc}") from None
            if done.returncode != 0:
                raise RollbackActionError(f"command {argv} exited {done.returncode}: {(done.stderr or done.stdout)[-300:]}")
            return f"command {argv} exited 0"

        return Plan(self.name, f"run {argv} (no shell)", apply)
