"""core/v1 Events, recorded by the simulated controllers and kubelet the way `kubectl describe` shows them."""

from __future__ import annotations

import time

from .meta import Obj, rfc3339
from .runtime import Clock
from .store import Store

_KEEP = 400  # events kept per namespace (a real cluster expires them after an hour)


class Recorder:
    """Records Events; a repeat of the same reason and message on the same object bumps `count`."""

    def __init__(self, store: Store, clock: Clock) -> None:
        self.store, self.clock = store, clock
        self.enabled = True
        self._index: dict[tuple[str, str, str], str] = {}  # (uid, reason, message) -> event name
        self._order: list[tuple[str, str]] = []

    def record(self, obj: Obj, type_: str, reason: str, message: str, component: str,
               field_path: str | None = None, host: str | None = None) -> None:
        if not self.enabled:
            return
        meta = obj["metadata"]
        ns = meta.get("namespace", "default")
        now = rfc3339(self.clock.now())
        key = (meta["uid"], reason, message)
        existing = self.store.get("events", ns, self._index.get(key, ""))
        if existing is not None:
            existing["count"] = existing.get("count", 1) + 1
            existing["lastTimestamp"] = now
            self.store.replace("events", existing)
            return
        name = f"{meta['name']}.{time.time_ns():x}"
        involved: Obj = {
            "kind": obj["kind"],
            "namespace": ns,
            "name": meta["name"],
            "uid": meta["uid"],
            "apiVersion": obj["apiVersion"],
            "resourceVersion": meta.get("resourceVersion", ""),
        }
        if field_path:
            involved["fieldPath"] = field_path
        source: Obj = {"component": component}
        if host:
            source["host"] = host
        event = {
            "kind": "Event",
            "apiVersion": "v1",
            "metadata": {"name": name, "namespace": ns},
            "involvedObject": involved,
            "reason": reason,
            "message": message,
            "source": source,
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
            "type": type_,
            "eventTime": None,
            "reportingComponent": component,
            "reportingInstance": host or "",
        }
        event["metadata"]["creationTimestamp"] = now
        del event["eventTime"]
        self.store.create("events", event, timestamp=self.clock.now())
        self._index[key] = name
        self._order.append((ns, name))
        while len(self._order) > _KEEP:
            old_ns, old_name = self._order.pop(0)
            if self.store.get("events", old_ns, old_name) is not None:
                self.store.delete("events", old_ns, old_name)
            self._index = {k: v for k, v in self._index.items() if v != old_name}

    def forget(self) -> None:
        self._index.clear()
        self._order.clear()
