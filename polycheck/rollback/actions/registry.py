"""The rollback actions by name: what `rollback.actions` may list, and what the config validates against."""

from __future__ import annotations

import dataclasses
from contextlib import contextmanager
from collections.abc import Iterator

from polycheck.rollback.actions.protocol import RollbackAction


class ActionRegistry:
    """Actions by name; each `[rollback]` key belongs to one action (a second owner is refused at registration)."""

    def __init__(self, *actions: RollbackAction) -> None:
        self._actions: dict[str, RollbackAction] = {}
        for action in actions:
            self.register(action)

    def register(self, action: RollbackAction) -> None:
        if action.name in self._actions:
            raise ValueError(f"a rollback action named {action.name!r} is registered already")
        owners = self.setting_keys()
        for key in self.keys_of(action):
            if key in owners:
                raise ValueError(f"{action.name}: the [rollback] key {key!r} belongs to the {owners[key]} action")
        self._actions[action.name] = action

    def unregister(self, name: str) -> None:
        del self._actions[name]

    @contextmanager
    def registered(self, action: RollbackAction) -> Iterator[RollbackAction]:
        """`action` is registered inside the block (tests)."""
        self.register(action)
        try:
            yield action
        finally:
            self.unregister(action.name)

    def get(self, name: str) -> RollbackAction:
        try:
            return self._actions[name]
        except KeyError:
            raise LookupError(f"unknown rollback action {name!r}; registered: {', '.join(self.names())}") from None

    def names(self) -> list[str]:
        return list(self._actions)

    def __iter__(self) -> Iterator[RollbackAction]:
        return iter(list(self._actions.values()))

    @staticmethod
    def keys_of(action: RollbackAction) -> list[str]:
        return [f.name for f in dataclasses.fields(action.settings)]

    def setting_keys(self) -> dict[str, str]:
        """Every action's `[rollback]` key -> the action that reads it."""
        return {key: action.name for action in self._actions.values() for key in self.keys_of(action)}
