"""The HTTP face of the simulator: a Starlette app speaking the Kubernetes REST API (JSON only).

Served: discovery, get/list/watch of namespaces, pods (and pods/log, DELETE), events, replicasets, deployments
(create, update, patch, /status, /scale), argoproj.io Rollouts (create, update, patch, /status, /scale) and
coordination.k8s.io Leases (create, update, patch, DELETE);
label and field selectors; limit/continue; Tables for `kubectl get`; watches with resourceVersion, timeoutSeconds,
bookmarks and sendInitialEvents; Status objects for every error.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import json
import threading
import time
from collections import deque
from typing import TYPE_CHECKING, Any
from collections.abc import AsyncIterator

import yaml
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from . import discovery
from .meta import INITIAL_EVENTS_END, RESOURCES, ApiError, Obj, ResourceType, rfc3339, selector_string
from .patches import APPLY_PATCH, apply_patch
from .selectors import field_selector, label_selector
from .store import Watcher, filtered_event
from .tables import partial_metadata, to_table
from .world import World

if TYPE_CHECKING:
    from . import KubeSimulator

_ANONYMOUS = {"/version", "/healthz", "/livez", "/readyz"}
_TRUE = {"true", "1", "yes"}
_FALSE = {"false", "0", "no"}


def _flag(query: Any, name: str) -> bool | None:
    value = query.get(name)
    if value is None:
        return None
    if value.lower() in _TRUE:
        return True
    if value.lower() in _FALSE:
        return False
    raise ApiError.bad_request(f"invalid boolean value for {name}: {value!r}")


def _json(body: Obj, code: int = 200) -> JSONResponse:
    return JSONResponse(body, status_code=code)


def _negotiate(accept: str | None) -> str:
    """'object', 'table' or 'partial' by the first Accept entry this server can produce; 406 if none."""
    if not accept:
        return "object"
    for entry in accept.split(","):
        media, *params = [p.strip() for p in entry.split(";")]
        args = dict(p.split("=", 1) for p in params if "=" in p)
        if media not in ("application/json", "application/*", "*/*", "application/json-seq"):
            continue
        kind = args.get("as")
        if kind is None:
            return "object"
        if kind == "Table" and args.get("g") == "meta.k8s.io":
            return "table"
        if kind in ("PartialObjectMetadata", "PartialObjectMetadataList") and args.get("g") == "meta.k8s.io":
            return "partial"
    raise ApiError(406, "NotAcceptable", "only the following media types are accepted: application/json")


class _Target:
    """A parsed resource URL."""

    def __init__(self, rt: ResourceType, namespace: str | None, name: str | None, sub: str | None) -> None:
        self.rt, self.namespace, self.name, self.sub = rt, namespace, name, sub


def _parse(path: str) -> _Target | None:
    parts = [p for p in path.strip("/").split("/") if p]
    if len(parts) >= 2 and parts[0] == "api" and parts[1] == "v1":
        group, version, rest = "", "v1", parts[2:]
    elif len(parts) >= 3 and parts[0] == "apis":
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        return None
    namespace = None
    if len(rest) >= 3 and rest[0] == "namespaces":
        namespace, rest = rest[1], rest[2:]
    if not rest or len(rest) > 3:
        return None
    rt = RESOURCES.get(rest[0])
    if rt is None or rt.group != group or rt.version != version:
        return None
    name = rest[1] if len(rest) >= 2 else None
    sub = rest[2] if len(rest) == 3 else None
    if rt.namespaced and name is not None and namespace is None:
        return None
    if sub is not None and sub not in rt.subresources:
        return None
    return _Target(rt, namespace, name, sub)


def _not_found_path() -> ApiError:
    return ApiError(404, "NotFound", "the server could not find the requested resource",
                    {"causes": [{"reason": "UnexpectedServerResponse", "message": "404 page not found"}]})


def _method_not_allowed(method: str, rt: ResourceType) -> ApiError:
    return ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource",
                    {"kind": rt.plural, **({"group": rt.group} if rt.group else {})})


def _strip_kind(obj: Obj) -> Obj:
    return {k: v for k, v in obj.items() if k not in ("kind", "apiVersion")}


class KubeApi:
    """Routes requests to the simulator's store and controllers."""

    def __init__(self, sim: KubeSimulator) -> None:
        self.sim = sim
        self.requests: deque[tuple[str, str, str]] = deque(maxlen=1000)  # (method, path?query, content-type)
        self._received = 0  # every request so far (the deque keeps the last 1000): see mark and requests_since
        self._counting = threading.Lock()  # a request is kept and counted at once, as a test thread reads both
        self.writes: deque[tuple[float, str, str]] = deque(maxlen=1000)  # (epoch received, method, path): every change asked
        self.app = Starlette(routes=[Route("/{path:path}", self.dispatch,
                                           methods=["GET", "POST", "PUT", "PATCH", "DELETE"])])

    def mark(self) -> int:
        """How many requests came so far: give it to requests_since later."""
        with self._counting:
            return self._received

    def requests_since(self, mark: int) -> list[tuple[str, str, str]]:
        """The requests that came after `mark` (from `mark()`), as far as the last 1000 reach."""
        with self._counting:
            kept = list(self.requests)
            newer = min(self._received - mark, len(kept))
        return kept[len(kept) - newer:] if newer > 0 else []

    # -- entry ---------------------------------------------------------------------------------

    async def dispatch(self, request: Request) -> Response:
        self.sim._bind_loop()
        path = "/" + request.path_params["path"].rstrip("/")
        query = f"?{request.url.query}" if request.url.query else ""
        with self._counting:
            self.requests.append((request.method, path + query, request.headers.get("content-type", "")))
            self._received += 1
        if request.method != "GET":
            self.writes.append((time.time(), request.method, path))
        try:
            # kubectl (clientcmd) sends no credentials to a plain-HTTP server, so anonymous requests are served;
            # a request that does present a bearer token must present the right one
            auth = request.headers.get("authorization")
            if self.sim.token and auth is not None and path not in _ANONYMOUS and auth != f"Bearer {self.sim.token}":
                raise ApiError(401, "Unauthorized", "Unauthorized")
            return await self._route(request, path)
        except ApiError as exc:
            return _json(exc.status(), exc.code)

    async def _route(self, request: Request, path: str) -> Response:
        method = request.method
        if method == "GET":
            doc = self._discovery(request, path)
            if doc is not None:
                return doc
        target = _parse(path)
        if target is None:
            raise _not_found_path()
        rt = target.rt
        if target.sub == "log":
            return self._log(request, target)
        if target.sub == "scale":
            return await self._scale(request, target)
        if method == "GET" and target.name is None:
            return self._collection(request, target)
        if method == "GET":
            obj = self._get(target)
            return _json(partial_metadata(obj) if _negotiate(request.headers.get("accept")) == "partial" else obj)
        verb = {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}[method]
        allowed = rt.subresources.get(target.sub, ()) if target.sub else rt.verbs
        if verb not in allowed or (verb == "create") != (target.name is None):
            raise _method_not_allowed(method, rt)
        body = await request.body()
        if verb == "delete":
            return _json(self._delete(target))
        data = self._body(body, request.headers.get("content-type", "application/json"), verb)
        dry_run = "All" in request.query_params.getlist("dryRun")
        if verb == "create":
            return _json(self._create(target, data, dry_run), 201)
        if verb == "update":
            return _json(self._update(target, data, dry_run))
        return _json(self._patch(target, request.headers.get("content-type", ""), data, dry_run))

    # -- discovery -----------------------------------------------------------------------------

    def _discovery(self, request: Request, path: str) -> Response | None:
        if path in ("/healthz", "/livez", "/readyz"):
            return PlainTextResponse("ok")
        if path == "/version":
            return _json(discovery.version_info(self.sim.server_version))
        if path == "/api":
            return _json(discovery.api_versions(f"{request.url.hostname}:{request.url.port}"))
        if path == "/apis":
            return _json(discovery.api_group_list())
        parts = path.strip("/").split("/")
        if parts[0] == "apis" and len(parts) == 2:
            group = discovery.api_group(parts[1])
            if group is None:
                raise _not_found_path()
            return _json(group)
        if (parts[0] == "api" and len(parts) == 2) or (parts[0] == "apis" and len(parts) == 3):
            doc = discovery.resource_list("" if parts[0] == "api" else parts[1], parts[-1])
            if doc is None:
                raise _not_found_path()
            return _json(doc)
        return None

    # -- reads ---------------------------------------------------------------------------------

    def _get(self, target: _Target) -> Obj:
        assert target.name is not None
        return self.sim.store.must_get(target.rt.plural, target.namespace or "", target.name)

    def _predicate(self, target: _Target, query: Any) -> Any:
        labels = label_selector(query.get("labelSelector"))
        fields = field_selector(query.get("fieldSelector"), target.rt)
        return lambda obj: labels(obj.get("metadata", {}).get("labels") or {}) and fields(obj)

    def _collection(self, request: Request, target: _Target) -> Response:
        query = request.query_params
        rt = target.rt
        if "list" not in rt.verbs:
            raise _method_not_allowed("GET", rt)
        mode = _negotiate(request.headers.get("accept"))
        predicate = self._predicate(target, query)
        if _flag(query, "watch"):
            return self._watch(target, query, predicate, mode)
        objs = self.sim.store.list(rt.plural, target.namespace, predicate)
        rv = self.sim.store.resource_version
        list_meta: Obj = {"resourceVersion": str(rv)}
        limit = int(query.get("limit") or 0)
        start = 0
        if query.get("continue"):
            try:
                start = int(base64.urlsafe_b64decode(query["continue"]).decode().split(":")[1])
            except (ValueError, IndexError):
                raise ApiError(410, "Expired", "The provided continue parameter is too old to display a consistent list "
                               "result. You can start a new list without the continue parameter.") from None
        end = start + limit if limit > 0 else len(objs)
        if end < len(objs):
            list_meta["continue"] = base64.urlsafe_b64encode(f"{rv}:{end}".encode()).decode()
            list_meta["remainingItemCount"] = len(objs) - end
        objs = objs[start:end]
        if mode == "table":
            return _json(to_table(rt, objs, list_meta, query.get("includeObject", "PartialObjectMetadata")))
        if mode == "partial":
            return _json({"kind": "PartialObjectMetadataList", "apiVersion": "meta.k8s.io/v1", "metadata": list_meta,
                          "items": [partial_metadata(o) for o in objs]})
        items = objs if rt.custom else [_strip_kind(o) for o in objs]
        return _json({"kind": f"{rt.kind}List", "apiVersion": rt.api_version, "metadata": list_meta, "items": items})

    def _watch(self, target: _Target, query: Any, predicate: Any, mode: str) -> Response:
        rt, store = target.rt, self.sim.store
        rv_param = query.get("resourceVersion")
        send_initial = _flag(query, "sendInitialEvents")
        bookmarks = bool(_flag(query, "allowWatchBookmarks"))
        timeout = float(query.get("timeoutSeconds") or 1800)
        if send_initial is not None:
            if query.get("resourceVersionMatch") != "NotOlderThan":
                raise ApiError.invalid(rt, "", [("resourceVersionMatch", "FieldValueForbidden", "Forbidden: "
                                                 "sendInitialEvents requires setting resourceVersionMatch to "
                                                 "NotOlderThan")])
            if send_initial and not bookmarks:
                raise ApiError.invalid(rt, "", [("allowWatchBookmarks", "FieldValueForbidden", "Forbidden: "
                                                 "sendInitialEvents requires setting allowWatchBookmarks to true")])
        elif query.get("resourceVersionMatch"):
            raise ApiError.invalid(rt, "", [("resourceVersionMatch", "FieldValueForbidden",
                                             "Forbidden: resourceVersionMatch is forbidden for watch unless "
                                             "sendInitialEvents is provided")])
        initial: list[tuple[str, Obj]] = []
        if send_initial or (send_initial is None and rv_param in (None, "", "0")):
            initial = [("ADDED", o) for o in store.list(rt.plural, target.namespace, predicate)]
            if send_initial:
                bookmark = {"kind": rt.kind, "apiVersion": rt.api_version, "metadata": {
                    "resourceVersion": str(store.resource_version),
                    "annotations": {INITIAL_EVENTS_END: "true"}}}
                initial.append(("BOOKMARK", bookmark))
        elif rv_param not in (None, "", "0"):
            try:
                since = int(rv_param)
            except ValueError:
                raise ApiError.bad_request(f'invalid resource version: "{rv_param}"') from None
            try:
                changes = store.changes_since(since)
            except ApiError as exc:
                if exc.code != 410:
                    raise
                return StreamingResponse(iter([json.dumps({"type": "ERROR", "object": exc.status()}) + "\n"]),
                                         media_type="application/json")
            for change in changes:
                if change.resource == rt.plural and (target.namespace is None or change.namespace == target.namespace):
                    event = filtered_event(change, predicate)
                    if event is not None:
                        initial.append(event)
        watcher = Watcher(rt.plural, target.namespace, predicate)
        store.subscribe(watcher)
        return StreamingResponse(self._stream(rt, watcher, initial, timeout, mode, query),
                                 media_type="application/json")

    async def _stream(self, rt: ResourceType, watcher: Watcher, initial: list[tuple[str, Obj]], timeout: float,
                      mode: str, query: Any) -> AsyncIterator[bytes]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        first = [True]

        def render(type_: str, obj: Obj) -> bytes:
            if type_ != "BOOKMARK" and mode == "table":
                obj = to_table(rt, [obj], {"resourceVersion": obj["metadata"].get("resourceVersion", "")},
                               query.get("includeObject", "PartialObjectMetadata"), with_columns=first[0])
                first[0] = False
            elif type_ != "BOOKMARK" and mode == "partial":
                obj = partial_metadata(obj)
            return (json.dumps({"type": type_, "object": obj}) + "\n").encode()

        try:
            for type_, obj in initial:
                yield render(type_, obj)
            while True:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    return
                try:
                    item = await asyncio.wait_for(watcher.queue.get(), remaining)
                except TimeoutError:
                    return
                if item is None:
                    return
                yield render(*item)
        finally:
            self.sim.store.unsubscribe(watcher)

    def _log(self, request: Request, target: _Target) -> Response:
        if request.method != "GET":
            raise _method_not_allowed(request.method, target.rt)
        pod = self._get(target)
        container = request.query_params.get("container")
        previous = bool(_flag(request.query_params, "previous"))
        text = self.sim.pod_log(pod, container, previous)
        tail = request.query_params.get("tailLines")
        if tail is not None:
            lines = text.splitlines(keepends=True)
            text = "".join(lines[-int(tail):]) if int(tail) > 0 else ""
        return PlainTextResponse(text)

    # -- writes --------------------------------------------------------------------------------

    @staticmethod
    def _body(body: bytes, content_type: str = "application/json", verb: str = "patch") -> Any:
        """A JSON (or YAML) request body; protobuf and CBOR are refused with 415 as by a JSON-only server."""
        media = content_type.split(";")[0].strip().lower()
        if verb in ("create", "update") and media in ("application/yaml", "application/x-yaml", "text/yaml"):
            try:
                return yaml.safe_load(body.decode()) if body else None
            except (yaml.YAMLError, UnicodeDecodeError) as exc:
                raise ApiError.bad_request(f"couldn't get version/kind; yaml parse error: {exc}") from None
        if verb in ("create", "update") and media not in ("application/json", ""):
            raise ApiError(415, "UnsupportedMediaType", "the body of the request was in an unknown format - "
                           "accepted media types include: application/json, application/yaml")
        try:
            return json.loads(body or b"null")
        except ValueError as exc:
            raise ApiError.bad_request(f"couldn't get version/kind; json parse error: {exc}") from None

    def _prepare(self, rt: ResourceType, obj: Obj, old: Obj | None) -> Obj:
        """Defaulting and validation for a new state of a workload."""
        return World.prepare(rt.plural, obj, old) if rt.plural in ("deployments", "rollouts") else obj

    def _create(self, target: _Target, data: Any, dry_run: bool) -> Obj:
        rt = target.rt
        if not isinstance(data, dict):
            raise ApiError.bad_request("the body of the request must be an object")
        if data.get("apiVersion") not in (None, rt.api_version) or data.get("kind") not in (None, rt.kind):
            raise ApiError.bad_request(f"the API version in the data ({data.get('apiVersion')}) does not match the "
                                       f"expected API version ({rt.api_version})")
        meta = data.setdefault("metadata", {})
        if meta.get("namespace") not in (None, "", target.namespace):
            raise ApiError.bad_request("the namespace of the provided object does not match the namespace sent on "
                                       "the request")
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + self.sim.cluster.names.suffix()
        meta["namespace"] = target.namespace
        for key in ("uid", "resourceVersion", "creationTimestamp", "generation", "deletionTimestamp"):
            meta.pop(key, None)
        data.update(kind=rt.kind, apiVersion=rt.api_version)
        data.pop("status", None)
        obj = self._prepare(rt, data, None)
        if self.sim.store.get(rt.plural, target.namespace or "", meta.get("name", "")) is not None:
            raise ApiError.already_exists(rt, meta["name"])
        if dry_run:
            return obj | {"metadata": meta | {"uid": self.sim.cluster.names.uid(), "creationTimestamp": rfc3339()}}
        return self.sim.store.create(rt.plural, obj, timestamp=self.sim.cluster.clock.now())

    def _merge_state(self, target: _Target, old: Obj, new: Obj) -> Obj:
        """What a write may change: the main resource keeps the old status; /status keeps the old spec and
        metadata; identity and system fields always stay."""
        if not isinstance(new, dict) or not isinstance(new.get("metadata", {}), dict):
            raise ApiError.bad_request("the body of the request must be an object")
        rt = target.rt
        result = copy.deepcopy(old)
        if target.sub == "status":
            if "status" in new:
                result["status"] = new["status"]
            else:
                result.pop("status", None)
            return result
        meta = new.get("metadata") or {}
        for key in ("labels", "annotations", "finalizers", "ownerReferences"):
            if key in meta:
                result["metadata"][key] = meta[key]
            else:
                result["metadata"].pop(key, None)
        for key, value in new.items():
            if key not in ("metadata", "status", "kind", "apiVersion"):
                result[key] = value
        for key in list(result):
            if key not in new and key not in ("metadata", "status", "kind", "apiVersion"):
                del result[key]
        if rt.plural in ("deployments", "rollouts"):
            prepared = self._prepare(rt, result, old)
            return prepared
        return result

    def _check_rv(self, target: _Target, old: Obj, new: Obj) -> None:
        rv = (new.get("metadata") or {}).get("resourceVersion")
        if rv and rv != old["metadata"]["resourceVersion"]:
            raise ApiError.conflict(target.rt, old["metadata"]["name"])

    def _update(self, target: _Target, data: Any, dry_run: bool) -> Obj:
        old = self._get(target)
        if not isinstance(data, dict):
            raise ApiError.bad_request("the body of the request must be an object")
        if (data.get("metadata") or {}).get("name") not in (None, old["metadata"]["name"]):
            raise ApiError.bad_request("the name of the object does not match the name on the URL")
        self._check_rv(target, old, data)
        new = self._merge_state(target, old, data)
        return new if dry_run else self.sim.store.replace(target.rt.plural, new)

    def _patch(self, target: _Target, content_type: str, data: Any, dry_run: bool) -> Obj:
        old = self._get(target)
        if content_type.split(";")[0].strip() == APPLY_PATCH:
            raise ApiError(415, "UnsupportedMediaType", "server-side apply is not supported by this API server")
        patched = apply_patch(content_type, old, data, custom=target.rt.custom)
        self._check_rv(target, old, patched)
        new = self._merge_state(target, old, patched)
        return new if dry_run else self.sim.store.replace(target.rt.plural, new)

    def _delete(self, target: _Target) -> Obj:
        obj = self._get(target)
        if target.rt.plural == "leases":  # no finaliser, no grace period: gone at once (polycheck's SKU leases)
            gone = self.sim.store.delete("leases", target.namespace or "", target.name or "")
            return {"kind": "Status", "apiVersion": "v1", "status": "Success", "details": {
                "name": gone["metadata"]["name"], "kind": "leases", "uid": gone["metadata"].get("uid")}}
        if target.rt.plural != "pods":
            raise _method_not_allowed("DELETE", target.rt)
        self.sim.kubelet.terminate(obj)
        return self._get(target)

    # -- /scale ----------------------------------------------------------------------------------

    def _scale_of(self, obj: Obj) -> Obj:
        meta = obj["metadata"]
        return {
            "kind": "Scale",
            "apiVersion": "autoscaling/v1",
            "metadata": {k: meta[k] for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")},
            "spec": {"replicas": obj["spec"].get("replicas", 1)},
            "status": {"replicas": (obj.get("status") or {}).get("replicas", 0),
                       "selector": selector_string(obj["spec"].get("selector") or {})},
        }

    async def _scale(self, request: Request, target: _Target) -> Response:
        obj = self._get(target)
        if request.method == "GET":
            return _json(self._scale_of(obj))
        data = self._body(await request.body())
        if request.method == "PATCH":
            scale = apply_patch(request.headers.get("content-type", ""), self._scale_of(obj), data, custom=False)
        elif request.method == "PUT":
            scale = data
        else:
            raise _method_not_allowed(request.method, target.rt)
        if not isinstance(scale, dict):
            raise ApiError.bad_request("the body of the request must be an object")
        self._check_rv(target, obj, scale)
        replicas = (scale.get("spec") or {}).get("replicas")
        if not isinstance(replicas, int) or replicas < 0:
            raise ApiError.invalid(target.rt, obj["metadata"]["name"], [
                ("spec.replicas", "FieldValueInvalid", f"Invalid value: {replicas!r}: must be greater than or equal "
                 "to 0")])
        obj["spec"]["replicas"] = replicas
        stored = self.sim.store.replace(target.rt.plural, obj)
        return _json(self._scale_of(stored))
