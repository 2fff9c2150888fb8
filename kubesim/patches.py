"""The three PATCH flavours the API server accepts: JSON patch (RFC 6902), JSON merge patch (RFC 7386) and
strategic merge patch (lists merged by their patch merge key, with the `$patch`, `$setElementOrder/...`,
`$retainKeys` and `$deleteFromPrimitiveList/...` directives kubectl sends).
"""

from __future__ import annotations

import copy
from typing import Any

from .meta import ApiError

JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"

# field name -> patch merge key, for the lists that the built-in types merge (patchStrategy=merge)
MERGE_KEYS: dict[str, str] = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "env": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "volumeDevices": "devicePath",
    "imagePullSecrets": "name",
    "ports": "containerPort",
    "hostAliases": "ip",
    "conditions": "type",
    "ownerReferences": "uid",
    "topologySpreadConstraints": "topologyKey",
    "resourceClaims": "name",
}
# primitive lists with patchStrategy=merge
MERGE_PRIMITIVE_LISTS = {"finalizers"}


class PatchError(ApiError):
    pass


# -- JSON patch ------------------------------------------------------------------------------------


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise ApiError(422, "Invalid", f"JSON pointer must start with '/': {path!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _walk(doc: Any, parts: list[str], path: str) -> Any:
    node = doc
    for part in parts:
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            raise ApiError(422, "Invalid", f"doc is missing path: \"{path}\": missing value")
    return node


def _parent(doc: Any, parts: list[str], path: str) -> tuple[Any, str]:
    return _walk(doc, parts[:-1], path), parts[-1]


def _index(container: list, key: str, path: str, *, insert: bool) -> int:
    if key == "-" and insert:
        return len(container)
    if not key.isdigit():
        raise ApiError(422, "Invalid", f"invalid array index {key!r} in \"{path}\"")
    i = int(key)
    if i > len(container) or (not insert and i == len(container)):
        raise ApiError(422, "Invalid", f"Unable to access invalid index: {i}: invalid index referenced")
    return i


def _get(doc: Any, path: str) -> Any:
    return _walk(doc, _pointer(path), path)


def _add(doc: Any, path: str, value: Any) -> Any:
    parts = _pointer(path)
    if not parts:
        return value
    parent, key = _parent(doc, parts, path)
    if isinstance(parent, dict):
        parent[key] = value
    elif isinstance(parent, list):
        parent.insert(_index(parent, key, path, insert=True), value)
    else:
        raise ApiError(422, "Invalid", f"doc is missing path: \"{path}\": missing value")
    return doc


def _remove(doc: Any, path: str) -> Any:
    parts = _pointer(path)
    parent, key = _parent(doc, parts, path)
    if isinstance(parent, dict) and key in parent:
        del parent[key]
    elif isinstance(parent, list):
        del parent[_index(parent, key, path, insert=False)]
    else:
        raise ApiError(422, "Invalid", f"Unable to remove nonexistent key: {key}: missing value")
    return doc


def apply_json_patch(doc: Any, ops: Any) -> Any:
    if not isinstance(ops, list):
        raise ApiError.bad_request("json: cannot unmarshal object into Go value of type jsonpatch.Patch")
    doc = copy.deepcopy(doc)
    for op in ops:
        if not isinstance(op, dict) or "op" not in op or "path" not in op:
            raise ApiError.bad_request(f"invalid JSON patch operation: {op!r}")
        kind, path = op["op"], op["path"]
        if kind == "add":
            doc = _add(doc, path, copy.deepcopy(op.get("value")))
        elif kind == "remove":
            doc = _remove(doc, path)
        elif kind == "replace":
            _get(doc, path)  # must exist
            parts = _pointer(path)
            if not parts:
                doc = copy.deepcopy(op.get("value"))
            else:
                parent, key = _parent(doc, parts, path)
                if isinstance(parent, list):
                    parent[_index(parent, key, path, insert=False)] = copy.deepcopy(op.get("value"))
                else:
                    parent[key] = copy.deepcopy(op.get("value"))
        elif kind in ("move", "copy"):
            value = copy.deepcopy(_get(doc, op.get("from", "")))
            if kind == "move":
                doc = _remove(doc, op["from"])
            doc = _add(doc, path, value)
        elif kind == "test":
            if _get(doc, path) != op.get("value"):
                raise ApiError(422, "Invalid", f"testing value {path} failed: test failed")
        else:
            raise ApiError.bad_request(f"Unexpected kind: {kind}")
    return doc


# -- JSON merge patch ------------------------------------------------------------------------------


def apply_merge_patch(doc: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = copy.deepcopy(doc) if isinstance(doc, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = apply_merge_patch(out.get(key), value)
    return out


# -- strategic merge patch -------------------------------------------------------------------------


def apply_strategic_merge_patch(doc: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        raise ApiError.bad_request("strategic merge patch must be a JSON object")
    return _merge_map(copy.deepcopy(doc) if isinstance(doc, dict) else {}, patch)


def _merge_map(original: dict, patch: dict) -> dict:
    directive = patch.get("$patch")
    if directive == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
    if directive == "delete":
        return {}
    retain = patch.get("$retainKeys")
    orders = {k[len("$setElementOrder/"):]: v for k, v in patch.items() if k.startswith("$setElementOrder/")}
    deletions = {k[len("$deleteFromPrimitiveList/"):]: v for k, v in patch.items()
                 if k.startswith("$deleteFromPrimitiveList/")}
    for key, value in patch.items():
        if key.startswith("$"):
            continue
        if value is None:
            original.pop(key, None)
        elif isinstance(value, dict):
            current = original.get(key)
            original[key] = _merge_map(current if isinstance(current, dict) else {}, value)
        elif isinstance(value, list):
            original[key] = _merge_list(key, original.get(key), value)
        else:
            original[key] = copy.deepcopy(value)
    for key, values in deletions.items():
        if isinstance(original.get(key), list):
            original[key] = [v for v in original[key] if v not in values]
    for key, order in orders.items():
        if isinstance(original.get(key), list):
            original[key] = _reorder(key, original[key], order)
    if isinstance(retain, list):
        for key in list(original):
            if key not in retain:
                del original[key]
    return original


def _merge_list(field: str, original: Any, patch: list) -> list:
    original = original if isinstance(original, list) else []
    merge_key = MERGE_KEYS.get(field)
    if merge_key is None:
        if field in MERGE_PRIMITIVE_LISTS:
            return original + [v for v in patch if v not in original]
        replace = [v for v in patch if not (isinstance(v, dict) and v.get("$patch") == "replace")]
        return copy.deepcopy(replace)
    if any(isinstance(item, dict) and item.get("$patch") == "replace" for item in patch):
        return [copy.deepcopy({k: v for k, v in item.items() if k != "$patch"})
                for item in patch if not (isinstance(item, dict) and item.get("$patch") == "replace")]
    out = copy.deepcopy(original)
    for item in patch:
        if not isinstance(item, dict):
            continue
        key = item.get(merge_key)
        found = next((i for i, o in enumerate(out) if isinstance(o, dict) and o.get(merge_key) == key), None)
        if item.get("$patch") == "delete":
            if found is not None:
                del out[found]
            continue
        if found is None:
            out.append(_merge_map({}, item))
        else:
            out[found] = _merge_map(out[found], item)
    return out


def _reorder(field: str, items: list, order: list) -> list:
    """Sort a merged list by `$setElementOrder`; elements not named keep their place after the named ones."""
    merge_key = MERGE_KEYS.get(field)

    def ident(value: Any) -> Any:
        return value.get(merge_key) if merge_key and isinstance(value, dict) else value

    wanted = [ident(o) for o in order]
    named = sorted((i for i in items if ident(i) in wanted), key=lambda i: wanted.index(ident(i)))
    rest = [i for i in items if ident(i) not in wanted]
    return named + rest


def apply_patch(content_type: str, doc: Any, patch: Any, *, custom: bool) -> Any:
    """Apply a PATCH body of the given media type; custom resources refuse strategic merge, as CRDs do."""
    media = content_type.split(";")[0].strip().lower()
    if media == JSON_PATCH:
        return apply_json_patch(doc, patch)
    if media == MERGE_PATCH:
        return apply_merge_patch(doc, patch)
    if media == STRATEGIC_MERGE_PATCH and not custom:
        return apply_strategic_merge_patch(doc, patch)
    accepted = [JSON_PATCH, MERGE_PATCH] + ([] if custom else [STRATEGIC_MERGE_PATCH])
    raise ApiError(
        415, "UnsupportedMediaType",
        f"the body of the request was in an unknown format - accepted media types include: {', '.join(accepted)}",
    )
