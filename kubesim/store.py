"""The object store: every object by (resource, namespace, name), one resourceVersion counter, watch fan-out.

Everything here runs on the simulator's event loop thread (or before the loop exists), so there is no locking.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass, field
from typing import Any
from collections.abc import Callable, Iterable

from .meta import RESOURCES, ApiError, Names, Obj, rfc3339

Key = tuple[str, str, str]  # (resource plural, namespace, name)


def clone(value: Any) -> Any:
    """A deep copy of JSON-like data (dicts, lists, scalars), several times faster than copy.deepcopy."""
    if isinstance(value, dict):
        return {k: clone(v) for k, v in value.items()}
    if isinstance(value, list):
        return [clone(v) for v in value]
    return value

# resources whose spec changes bump metadata.generation (they have a status subresource)
_GENERATION = {"deployments", "replicasets", "rollouts"}


@dataclass(frozen=True)
class Change:
    """One stored change; `old` is the previous state (None for ADDED)."""

    type: str  # ADDED | MODIFIED | DELETED
    resource: str
    namespace: str
    obj: Obj
    old: Obj | None
    rv: int


@dataclass(eq=False)
class Watcher:
    """One open watch: its filter and the queue its HTTP stream drains."""

    resource: str
    namespace: str | None
    predicate: Callable[[Obj], bool]
    queue: asyncio.Queue = field(default_factory=asyncio.Queue)

    def offer(self, change: Change) -> None:
        if change.resource != self.resource:
            return
        if self.namespace is not None and change.namespace != self.namespace:
            return
        event = filtered_event(change, self.predicate)
        if event is not None:
            self.queue.put_nowait(event)

    def close(self) -> None:
        self.queue.put_nowait(None)


def filtered_event(change: Change, predicate: Callable[[Obj], bool]) -> tuple[str, Obj] | None:
    """What a watcher with this filter sees of a change: objects entering or leaving the filter are ADDED/DELETED."""
    new_match = predicate(change.obj)
    old_match = change.old is not None and predicate(change.old)
    if change.type == "DELETED":
        return ("DELETED", change.obj) if new_match or old_match else None
    if change.type == "ADDED":
        return ("ADDED", change.obj) if new_match else None
    if new_match and old_match:
        return ("MODIFIED", change.obj)
    if new_match:
        return ("ADDED", change.obj)
    if old_match:
        return ("DELETED", change.obj)
    return None


class Store:
    """Objects, the global resourceVersion and the recent change log that watches resume from."""

    def __init__(self, names: Names, *, first_rv: int = 1000, history: int = 20000) -> None:
        self.names = names
        self._rv = first_rv
        self._objects: dict[Key, Obj] = {}
        self._log: deque[Change] = deque(maxlen=history)
        self._watchers: set[Watcher] = set()
        self._listeners: list[Callable[[Change], None]] = []

    # -- reading ---------------------------------------------------------------------------------

    @property
    def resource_version(self) -> int:
        return self._rv

    def get(self, resource: str, namespace: str, name: str) -> Obj | None:
        obj = self._objects.get((resource, namespace, name))
        return clone(obj) if obj is not None else None

    def must_get(self, resource: str, namespace: str, name: str) -> Obj:
        obj = self.get(resource, namespace, name)
        if obj is None:
            raise ApiError.not_found(RESOURCES[resource], name)
        return obj

    def list(self, resource: str, namespace: str | None = None,
             predicate: Callable[[Obj], bool] | None = None) -> list[Obj]:
        keys = sorted(k for k in self._objects if k[0] == resource and (namespace is None or k[1] == namespace))
        objs = (self._objects[k] for k in keys)
        return [clone(o) for o in objs if predicate is None or predicate(o)]

    def owned_by(self, resource: str, owner: Obj) -> list[Obj]:
        """Objects whose controller ownerReference is `owner`, oldest first."""
        uid = owner["metadata"]["uid"]
        ns = owner["metadata"].get("namespace", "")
        found = self.list(resource, ns, lambda o: any(
            r.get("uid") == uid and r.get("controller") for r in o["metadata"].get("ownerReferences") or []))
        return sorted(found, key=lambda o: (o["metadata"]["creationTimestamp"], o["metadata"]["name"]))

    def changes_since(self, rv: int) -> list[Change]:
        """Changes after `rv`; 410 Expired when the log no longer reaches back that far."""
        if rv > self._rv:
            raise ApiError(504, "Timeout", f"Too large resource version: {rv}, current: {self._rv}",
                           {"causes": [{"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}],
                            "retryAfterSeconds": 1})
        if self._log and len(self._log) == self._log.maxlen and self._log[0].rv > rv + 1:
            raise ApiError(410, "Expired", f"too old resource version: {rv} ({self._log[0].rv - 1})")
        return [c for c in self._log if c.rv > rv]

    # -- writing ---------------------------------------------------------------------------------

    def next_rv(self) -> int:
        self._rv += 1
        return self._rv

    def create(self, resource: str, obj: Obj, *, timestamp: float | None = None) -> Obj:
        """Store a new object: uid, creationTimestamp, generation and resourceVersion are set here."""
        meta = obj.setdefault("metadata", {})
        key = (resource, meta.get("namespace", ""), meta["name"])
        if key in self._objects:
            raise ApiError.already_exists(RESOURCES[resource], meta["name"])
        meta.setdefault("uid", self.names.uid())
        meta.setdefault("creationTimestamp", rfc3339(timestamp))
        if resource in _GENERATION:
            meta.setdefault("generation", 1)
        if resource in ("deployments", "replicasets"):
            obj.setdefault("status", {})  # typed objects always carry a status, empty at first
        return self._commit("ADDED", key, obj, None)

    def replace(self, resource: str, obj: Obj) -> Obj:
        """Store a new state of an existing object; a spec change bumps metadata.generation. No-op writes are free."""
        meta = obj["metadata"]
        key = (resource, meta.get("namespace", ""), meta["name"])
        old = self._objects.get(key)
        if old is None:
            raise ApiError.not_found(RESOURCES[resource], meta["name"])
        meta["uid"] = old["metadata"]["uid"]
        meta["creationTimestamp"] = old["metadata"]["creationTimestamp"]
        if resource in _GENERATION:
            generation = old["metadata"].get("generation", 1)
            meta["generation"] = generation + 1 if obj.get("spec") != old.get("spec") else generation
        meta["resourceVersion"] = old["metadata"]["resourceVersion"]
        if obj == old:
            return clone(old)
        return self._commit("MODIFIED", key, obj, old)

    def delete(self, resource: str, namespace: str, name: str) -> Obj:
        key = (resource, namespace, name)
        old = self._objects.get(key)
        if old is None:
            raise ApiError.not_found(RESOURCES[resource], name)
        gone = clone(old)
        gone["metadata"]["resourceVersion"] = str(self.next_rv())
        del self._objects[key]
        change = Change("DELETED", resource, namespace, gone, old, self._rv)
        self._publish(change)
        return clone(gone)

    def _commit(self, type_: str, key: Key, obj: Obj, old: Obj | None) -> Obj:
        stored = clone(obj)
        stored["metadata"]["resourceVersion"] = str(self.next_rv())
        self._objects[key] = stored
        self._publish(Change(type_, key[0], key[1], stored, old, self._rv))
        return clone(stored)

    def _publish(self, change: Change) -> None:
        self._log.append(change)
        for watcher in list(self._watchers):
            watcher.offer(change)
        for listener in self._listeners:
            listener(change)

    # -- watching --------------------------------------------------------------------------------

    def subscribe(self, watcher: Watcher) -> None:
        self._watchers.add(watcher)

    def unsubscribe(self, watcher: Watcher) -> None:
        self._watchers.discard(watcher)

    def close_watchers(self) -> None:
        for watcher in list(self._watchers):
            watcher.close()
        self._watchers.clear()

    def on_change(self, listener: Callable[[Change], None]) -> None:
        self._listeners.append(listener)

    def keys(self, resource: str | None = None) -> Iterable[Key]:
        return [k for k in self._objects if resource is None or k[0] == resource]
