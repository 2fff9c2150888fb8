"""Label and field selectors, parsed as the API server parses `?labelSelector=` and `?fieldSelector=`."""

from __future__ import annotations

import re
from typing import Any
from collections.abc import Callable

from .meta import ApiError, Obj, ResourceType

Predicate = Callable[[Obj], bool]

_KEY = r"[A-Za-z0-9][-A-Za-z0-9_./]*"
_SET_EXPR = re.compile(rf"^\s*(?P<key>{_KEY})\s+(?P<op>in|notin)\s+\((?P<values>[^)]*)\)\s*$")
_EQ_EXPR = re.compile(rf"^\s*(?P<key>{_KEY})\s*(?P<op>==|=|!=)\s*(?P<value>[-A-Za-z0-9_.]*)\s*$")
_EXISTS = re.compile(rf"^\s*(?P<neg>!?)\s*(?P<key>{_KEY})\s*$")


def _split_terms(text: str) -> list[str]:
    """Split on commas that are not inside parentheses."""
    terms, depth, current = [], 0, ""
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            terms.append(current)
            current = ""
        else:
            current += ch
    terms.append(current)
    return [t for t in terms if t.strip()]


def label_selector(text: str | None) -> Callable[[dict[str, str]], bool]:
    """Parse a label selector; the result tests a label map. Raises ApiError 400 when malformed."""
    if not text or not text.strip():
        return lambda labels: True
    tests: list[Callable[[dict[str, str]], bool]] = []
    for term in _split_terms(text):
        if m := _SET_EXPR.match(term):
            key, values = m["key"], {v.strip() for v in m["values"].split(",") if v.strip()}
            if m["op"] == "in":
                tests.append(lambda l, k=key, vs=values: l.get(k) in vs)
            else:
                tests.append(lambda l, k=key, vs=values: l.get(k) not in vs)
        elif m := _EQ_EXPR.match(term):
            key, value = m["key"], m["value"]
            if m["op"] == "!=":
                tests.append(lambda l, k=key, v=value: l.get(k) != v)
            else:
                tests.append(lambda l, k=key, v=value: k in l and l[k] == v)
        elif m := _EXISTS.match(term):
            key = m["key"]
            if m["neg"]:
                tests.append(lambda l, k=key: k not in l)
            else:
                tests.append(lambda l, k=key: k in l)
        else:
            raise ApiError.bad_request(f"unable to parse requirement: found '{term.strip()}', expected: identifier")
    return lambda labels: all(t(labels) for t in tests)


def _path(obj: Obj, dotted: str) -> Any:
    value: Any = obj
    for part in dotted.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


# resource -> the field labels it supports (besides metadata.name and metadata.namespace)
_FIELDS: dict[str, tuple[str, ...]] = {
    "pods": ("spec.nodeName", "spec.restartPolicy", "spec.schedulerName", "spec.serviceAccountName", "status.phase",
             "status.podIP", "status.nominatedNodeName"),
    "events": ("involvedObject.kind", "involvedObject.namespace", "involvedObject.name", "involvedObject.uid",
               "involvedObject.apiVersion", "involvedObject.resourceVersion", "involvedObject.fieldPath", "reason",
               "reportingComponent", "source", "type"),
    "replicasets": ("status.replicas",),
    "namespaces": ("status.phase",),
}


def field_selector(text: str | None, rt: ResourceType) -> Predicate:
    """Parse a field selector for one resource; unsupported field labels are a 400, as on a real server."""
    if not text or not text.strip():
        return lambda obj: True
    allowed = ("metadata.name", "metadata.namespace") + _FIELDS.get(rt.plural, ())
    tests: list[Predicate] = []
    for term in _split_terms(text):
        m = re.match(r"^\s*(?P<key>[A-Za-z0-9_.]+)\s*(?P<op>==|=|!=)\s*(?P<value>.*?)\s*$", term)
        if not m:
            raise ApiError.bad_request(f"invalid selector: '{text}'; can't understand '{term}'")
        key, op, value = m["key"], m["op"], m["value"]
        if key not in allowed:
            if rt.custom:
                known = '", "'.join(allowed)
                raise ApiError.bad_request(f'"{key}" is not a known field selector: only "{known}"')
            raise ApiError.bad_request(f"field label not supported: {key}")
        path = "source.component" if key == "source" else key

        def test(obj: Obj, p: str = path, v: str = value, neg: bool = op == "!=") -> bool:
            actual = _path(obj, p)
            matched = ("" if actual is None else str(actual)) == v
            return not matched if neg else matched

        tests.append(test)
    return lambda obj: all(t(obj) for t in tests)
