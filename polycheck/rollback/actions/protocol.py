"""The one protocol every rollback action keeps, and the values that cross it (the shape of xdist's `scheduler/protocol.py`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol
from collections.abc import Callable

if TYPE_CHECKING:
    from polycheck.clients.kube import Kube


class RollbackActionError(RuntimeError):
    """An action could not be planned or applied."""


class RollbackActionSkipped(Exception):
    """There is nothing for the action to do (e.g. the Rollout is already aborted): not a failure."""


@dataclass
class Plan:
    """What an action would do, in words (the dry-run and the audit log), and how to do it."""

    action: str
    description: str
    apply: Callable[[], str] = field(repr=False)


@dataclass(frozen=True)
class Target:
    """What every action is told about the failure it answers: the service, its workload, the rollback request."""

    service: str
    deployment: str
    workload: str  # deployment | rollout
    payload: dict[str, Any]  # the rollback request: check, reason (redacted), release, run_id, env, mode, time
    kube: Callable[[], Kube]  # the cluster client, connected on first use
    timeout: float  # rollback.timeout_seconds


@dataclass(frozen=True)
class NoSettings:
    """An action that reads nothing from `[rollback]`."""


class RollbackAction(Protocol):
    """A rollback action: a name for `rollback.actions`, the `[rollback]` keys it reads, and a read-only plan.

    `settings` is a frozen dataclass; each field is a key of the env's `[rollback]` table (typed and
    validated by the config loader; a field without a default is required when the action is listed;
    `__post_init__` may raise `ValueError` to refuse a value). `plan` only reads; the side effect is
    `Plan.apply`, run only when the mode is `auto`, so a dry-run prints `Plan.description` and changes nothing.
    """

    @property
    def name(self) -> str: ...

    @property
    def settings(self) -> type[Any]: ...

    def plan(self, target: Target, settings: Any) -> Plan: ...
