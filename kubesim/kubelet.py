"""The kubelet (with the scheduler and the container runtime, as far as pod status shows them): it moves pods
through Pending → ContainerCreating → Running/Ready, or into CrashLoopBackOff, ErrImagePull/ImagePullBackOff or
Unschedulable, by what their image tag and resource requests say, and serves their logs.

An image whose tag contains `crashloop` starts and exits with code 1 over and over; one whose tag contains
`nonexistent` cannot be pulled; a container requesting more CPU or memory than a node has never schedules.
"""

from __future__ import annotations

import copy
import hashlib
from dataclasses import dataclass, field

from .cluster import Cluster
from .meta import ApiError, Obj, owner_ref, rfc3339

KUBELET = "kubelet"
SCHEDULER = "default-scheduler"


def image_behaviour(image: str) -> str:
    """'crashloop', 'pull' (cannot be pulled) or 'ok', from the image's tag."""
    tag = image.rsplit("/", 1)[-1].partition(":")[2].lower()
    if "nonexistent" in tag:
        return "pull"
    if "crashloop" in tag:
        return "crashloop"
    return "ok"


def _cpu(text: object) -> float:
    s = str(text)
    return float(s[:-1]) / 1000 if s.endswith("m") else float(s)


_MEM = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}


def _memory_gi(text: object) -> float:
    s = str(text)
    for suffix, factor in sorted(_MEM.items(), key=lambda kv: -len(kv[0])):
        if s.endswith(suffix):
            return float(s[: -len(suffix)]) * factor / 2**30
    return float(s) / 2**30


def _requests(pod_spec: Obj) -> tuple[float, float]:
    cpu = mem = 0.0
    for c in pod_spec.get("containers") or []:
        req = (c.get("resources") or {}).get("requests") or (c.get("resources") or {}).get("limits") or {}
        cpu += _cpu(req["cpu"]) if "cpu" in req else 0.0
        mem += _memory_gi(req["memory"]) if "memory" in req else 0.0
    return cpu, mem


def _qos_class(pod_spec: Obj) -> str:
    resources = [c.get("resources") or {} for c in pod_spec.get("containers") or []]
    if not any(r.get("requests") or r.get("limits") for r in resources):
        return "BestEffort"
    if all(r.get("limits") and r.get("requests", r.get("limits")) == r.get("limits") for r in resources):
        return "Guaranteed"
    return "Burstable"


def image_id(image: str) -> str:
    repo = image.rsplit(":", 1)[0] if ":" in image.rsplit("/", 1)[-1] else image
    return f"{repo}@sha256:{hashlib.sha256(image.encode()).hexdigest()}"


@dataclass
class ContainerRun:
    """What the kubelet knows of one container."""

    behaviour: str
    state: str = "creating"  # creating | running | backoff | pull-error | pull-backoff
    ready: bool = False
    restarts: int = 0
    started_at: float | None = None
    container_id: str = ""
    last_terminated: Obj | None = None


@dataclass
class PodRun:
    containers: dict[str, ContainerRun] = field(default_factory=dict)
    scheduled: bool = False
    unschedulable: str | None = None
    backoff_step: int = 0
    ready_since: float | None = None
    scheduled_at: float | None = None
    pod_ip: str = ""


class Kubelet:
    """Scheduler + kubelet + container runtime, as far as pod status shows them."""

    def __init__(self, cluster: Cluster) -> None:
        self.c = cluster
        self.runs: dict[str, PodRun] = {}
        self._ips = 0
        self._next_node = 0

    # -- creation and deletion -----------------------------------------------------------------

    def create_pod(self, rs: Obj) -> Obj:
        template = copy.deepcopy(rs["spec"]["template"])
        spec = template.get("spec") or {}
        spec.setdefault("serviceAccountName", "default")
        spec.setdefault("serviceAccount", spec["serviceAccountName"])
        spec.setdefault("enableServiceLinks", True)
        spec.setdefault("priority", 0)
        spec.setdefault("preemptionPolicy", "PreemptLowerPriority")
        spec.setdefault("tolerations", [
            {"key": f"node.kubernetes.io/{t}", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}
            for t in ("not-ready", "unreachable")
        ])
        meta = template.get("metadata") or {}
        rs_name = rs["metadata"]["name"]
        pod: Obj = {
            "kind": "Pod",
            "apiVersion": "v1",
            "metadata": {
                "name": f"{rs_name}-{self.c.names.suffix()}",
                "generateName": f"{rs_name}-",
                "namespace": rs["metadata"]["namespace"],
                "labels": dict(meta.get("labels") or {}),
                "ownerReferences": [owner_ref(rs) | {"apiVersion": "apps/v1", "kind": "ReplicaSet"}],
            },
            "spec": spec,
            "status": {"phase": "Pending", "qosClass": _qos_class(spec)},
        }
        if meta.get("annotations"):
            pod["metadata"]["annotations"] = dict(meta["annotations"])
        cpu, mem = _requests(spec)
        run = PodRun({c["name"]: ContainerRun(image_behaviour(c.get("image", ""))) for c in spec.get("containers", [])})
        if cpu > self.c.settings.node_cpu or mem > self.c.settings.node_memory_gi:
            n = len(self.c.settings.nodes)
            short = [f"{n} Insufficient cpu"] if cpu > self.c.settings.node_cpu else []
            short += [f"{n} Insufficient memory"] if mem > self.c.settings.node_memory_gi else []
            run.unschedulable = (
                f"0/{n} nodes are available: {', '.join(short)}. preemption: 0/{n} nodes are available: "
                f"{n} No preemption victims found for incoming pod."
            )
        created = self.c.store.create("pods", pod, timestamp=self.c.clock.now())
        self.runs[created["metadata"]["uid"]] = run
        self._later(created, 0.02, self._schedule)
        return created

    def terminate(self, pod: Obj) -> None:
        """Graceful deletion: the pod shows deletionTimestamp (Terminating) for a moment, then is gone."""
        current = self.c.store.get("pods", pod["metadata"]["namespace"], pod["metadata"]["name"])
        if current is None or current["metadata"].get("deletionTimestamp"):
            return
        grace = current["spec"].get("terminationGracePeriodSeconds", 30)
        current["metadata"]["deletionTimestamp"] = rfc3339(self.c.clock.now() + grace)
        current["metadata"]["deletionGracePeriodSeconds"] = grace
        self.c.store.replace("pods", current)
        uid = current["metadata"]["uid"]
        self.c.scheduler.later(self.c.settings.terminate_delay, ("pod", uid), self._remove,
                               current["metadata"]["namespace"], current["metadata"]["name"], uid, replace=True)

    def _remove(self, ns: str, name: str, uid: str) -> None:
        pod = self.c.store.get("pods", ns, name)
        if pod is not None and pod["metadata"]["uid"] == uid:
            self.c.store.delete("pods", ns, name)
        self.runs.pop(uid, None)

    def forget(self) -> None:
        self.runs.clear()

    # -- the pod's timeline --------------------------------------------------------------------

    def _later(self, pod: Obj, delay: float, step: object) -> None:
        uid = pod["metadata"]["uid"]
        self.c.scheduler.later(delay, ("pod", uid), self._step, pod["metadata"]["namespace"],
                               pod["metadata"]["name"], uid, step, replace=True)

    def _step(self, ns: str, name: str, uid: str, step: object) -> None:
        pod = self.c.store.get("pods", ns, name)
        run = self.runs.get(uid)
        if pod is None or run is None or pod["metadata"]["uid"] != uid or pod["metadata"].get("deletionTimestamp"):
            return
        step(pod, run)  # type: ignore[operator]

    def _schedule(self, pod: Obj, run: PodRun) -> None:
        now = self.c.clock.now()
        if run.unschedulable:
            self._write(pod, run)
            self.c.recorder.record(pod, "Warning", "FailedScheduling", run.unschedulable, SCHEDULER)
            return
        nodes = self.c.settings.nodes
        node = nodes[self._next_node % len(nodes)]
        self._next_node += 1
        self._ips += 1
        pod["spec"]["nodeName"] = node
        run.pod_ip = f"10.244.{nodes.index(node)}.{10 + self._ips % 240}"
        pod["status"]["hostIP"] = f"10.0.0.{nodes.index(node) + 10}"
        pod["status"]["hostIPs"] = [{"ip": pod["status"]["hostIP"]}]
        run.scheduled, run.scheduled_at = True, now
        self._write(pod, run)
        self.c.recorder.record(pod, "Normal", "Scheduled", f"Successfully assigned {ns_name(pod)} to {node}", SCHEDULER)
        self._later(pod, self.c.settings.pod_ready_delay * 0.5, self._start_containers)

    def _start_containers(self, pod: Obj, run: PodRun) -> None:
        pod["status"]["podIP"] = run.pod_ip
        pod["status"]["podIPs"] = [{"ip": pod["status"]["podIP"]}]
        pod["status"]["startTime"] = pod["status"].get("startTime") or rfc3339(self.c.clock.now())
        node = pod["spec"].get("nodeName")
        needs_probe = False
        for c in pod["spec"]["containers"]:
            cr = run.containers[c["name"]]
            path = f"spec.containers{{{c['name']}}}"
            if cr.behaviour == "pull":
                self._pull_failed(pod, c, cr)
                continue
            self.c.recorder.record(pod, "Normal", "Pulled",
                                   f'Container image "{c["image"]}" already present on machine', KUBELET, path, node)
            self._run_container(pod, c, cr)
            needs_probe = needs_probe or cr.behaviour == "ok" and bool(c.get("readinessProbe"))
            cr.ready = cr.behaviour == "ok" and not c.get("readinessProbe")
        self._write(pod, run)
        if needs_probe:
            self._later(pod, self.c.settings.pod_ready_delay * 0.5, self._probe_ready)
        else:
            self._next_failure_step(pod, run)

    def _run_container(self, pod: Obj, c: Obj, cr: ContainerRun) -> None:
        node = pod["spec"].get("nodeName")
        path = f"spec.containers{{{c['name']}}}"
        cr.state, cr.started_at = "running", self.c.clock.now()
        cr.container_id = f"containerd://{self.c.names.hex(64)}"
        self.c.recorder.record(pod, "Normal", "Created", f"Created container: {c['name']}", KUBELET, path, node)
        self.c.recorder.record(pod, "Normal", "Started", f"Started container {c['name']}", KUBELET, path, node)

    def _pull_failed(self, pod: Obj, c: Obj, cr: ContainerRun) -> None:
        node = pod["spec"].get("nodeName")
        path = f"spec.containers{{{c['name']}}}"
        cr.state = "pull-error"
        self.c.recorder.record(pod, "Normal", "Pulling", f'Pulling image "{c["image"]}"', KUBELET, path, node)
        self.c.recorder.record(pod, "Warning", "Failed", f"Failed to pull image \"{c['image']}\": {_pull_error(c['image'])}",
                               KUBELET, path, node)
        self.c.recorder.record(pod, "Warning", "Failed", "Error: ErrImagePull", KUBELET, path, node)

    def _probe_ready(self, pod: Obj, run: PodRun) -> None:
        for c in pod["spec"]["containers"]:
            cr = run.containers[c["name"]]
            if cr.behaviour == "ok" and cr.state == "running":
                cr.ready = True
        self._write(pod, run)
        self._next_failure_step(pod, run)

    def _backoff(self, run: PodRun) -> float:
        simulated = min(10 * 2 ** run.backoff_step, 300)
        run.backoff_step += 1
        return max(self.c.settings.min_backoff, self.c.settings.scaled(simulated))

    def _next_failure_step(self, pod: Obj, run: PodRun) -> None:
        states = {cr.state for cr in run.containers.values() if cr.behaviour != "ok"}
        if "running" in states:
            self._later(pod, max(0.1, self.c.settings.scaled(2)), self._crash)
        elif "pull-error" in states:
            self._later(pod, max(self.c.settings.min_backoff, self.c.settings.scaled(10)), self._pull_backoff)
        elif states & {"backoff", "pull-backoff"}:
            self._later(pod, self._backoff(run), self._retry)

    def _crash(self, pod: Obj, run: PodRun) -> None:
        now = rfc3339(self.c.clock.now())
        node = pod["spec"].get("nodeName")
        for c in pod["spec"]["containers"]:
            cr = run.containers[c["name"]]
            if cr.behaviour == "crashloop" and cr.state == "running":
                cr.last_terminated = {"terminated": {
                    "exitCode": 1, "reason": "Error", "startedAt": rfc3339(cr.started_at), "finishedAt": now,
                    "containerID": cr.container_id}}
                cr.state, cr.ready = "backoff", False
                cr.restarts += 1
                self.c.recorder.record(pod, "Warning", "BackOff",
                                       f"Back-off restarting failed container {c['name']} in pod {ns_name(pod, '_')}",
                                       KUBELET, f"spec.containers{{{c['name']}}}", node)
        self._write(pod, run)
        self._next_failure_step(pod, run)

    def _pull_backoff(self, pod: Obj, run: PodRun) -> None:
        node = pod["spec"].get("nodeName")
        for c in pod["spec"]["containers"]:
            cr = run.containers[c["name"]]
            if cr.state == "pull-error":
                cr.state = "pull-backoff"
                path = f"spec.containers{{{c['name']}}}"
                self.c.recorder.record(pod, "Normal", "BackOff", f'Back-off pulling image "{c["image"]}"', KUBELET,
                                       path, node)
                self.c.recorder.record(pod, "Warning", "Failed", "Error: ImagePullBackOff", KUBELET, path, node)
        self._write(pod, run)
        self._next_failure_step(pod, run)

    def _retry(self, pod: Obj, run: PodRun) -> None:
        for c in pod["spec"]["containers"]:
            cr = run.containers[c["name"]]
            if cr.state == "backoff":
                self.c.recorder.record(pod, "Normal", "Pulled", f'Container image "{c["image"]}" already present on '
                                       "machine", KUBELET, f"spec.containers{{{c['name']}}}", pod["spec"].get("nodeName"))
                self._run_container(pod, c, cr)
            elif cr.state == "pull-backoff":
                self._pull_failed(pod, c, cr)
        self._write(pod, run)
        self._next_failure_step(pod, run)

    # -- rendering the status ------------------------------------------------------------------

    def _write(self, pod: Obj, run: PodRun) -> None:
        pod["status"] = self.render_status(pod, run)
        self.c.store.replace("pods", pod)

    def render_status(self, pod: Obj, run: PodRun) -> Obj:
        now = rfc3339(self.c.clock.now())
        old = pod.get("status") or {}
        status: Obj = {k: v for k, v in old.items() if k in ("hostIP", "hostIPs", "podIP", "podIPs", "startTime")}
        status["qosClass"] = old.get("qosClass", "BestEffort")
        old_conditions = {c["type"]: c for c in old.get("conditions") or []}

        def cond(type_: str, ok: bool, reason: str | None = None, message: str | None = None) -> Obj:
            prev = old_conditions.get(type_)
            value = "True" if ok else "False"
            c: Obj = {"type": type_, "status": value, "lastProbeTime": None,
                      "lastTransitionTime": prev["lastTransitionTime"] if prev and prev["status"] == value else now}
            if reason:
                c["reason"] = reason
            if message:
                c["message"] = message
            c.pop("lastProbeTime")
            return c

        if not run.scheduled:
            status["phase"] = "Pending"
            status["conditions"] = [cond("PodScheduled", False, "Unschedulable", run.unschedulable)]
            return status
        containers = pod["spec"]["containers"]
        ident = ns_name(pod, "_")
        statuses = [self._container_status(c, run.containers[c["name"]], ident) for c in containers]
        started = any(cr.state in ("running", "backoff") or cr.restarts for cr in run.containers.values())
        all_ready = all(s["ready"] for s in statuses)
        unready = [s["name"] for s in statuses if not s["ready"]]
        not_ready_msg = f"containers with unready status: [{' '.join(unready)}]"
        sandbox = any(cr.state != "creating" for cr in run.containers.values())
        status["phase"] = "Running" if started else "Pending"
        status["conditions"] = [
            cond("PodReadyToStartContainers", sandbox),
            cond("Initialized", True),
            cond("Ready", all_ready, None if all_ready else "ContainersNotReady", None if all_ready else not_ready_msg),
            cond("ContainersReady", all_ready, None if all_ready else "ContainersNotReady",
                 None if all_ready else not_ready_msg),
            cond("PodScheduled", True),
        ]
        status["containerStatuses"] = statuses
        if all_ready and run.ready_since is None:
            run.ready_since = self.c.clock.now()
        elif not all_ready:
            run.ready_since = None
        return status

    def _container_status(self, c: Obj, cr: ContainerRun, pod_ident: str) -> Obj:
        s: Obj = {"name": c["name"], "image": c["image"], "imageID": "", "ready": cr.ready,
                  "restartCount": cr.restarts, "started": False, "lastState": cr.last_terminated or {}}
        if cr.state == "creating":
            s["state"] = {"waiting": {"reason": "ContainerCreating"}}
        elif cr.state == "running":
            s["state"] = {"running": {"startedAt": rfc3339(cr.started_at)}}
            s["started"] = True
        elif cr.state == "backoff":
            delay = min(10 * 2 ** max(cr.restarts - 1, 0), 300)
            s["state"] = {"waiting": {"reason": "CrashLoopBackOff", "message": (
                f"back-off {_go_duration(delay)} restarting failed container={c['name']} pod={pod_ident}")}}
        elif cr.state == "pull-error":
            s["state"] = {"waiting": {"reason": "ErrImagePull", "message": _pull_error(c["image"])}}
        else:
            s["state"] = {"waiting": {"reason": "ImagePullBackOff", "message": f'Back-off pulling image "{c["image"]}": '
                                      f"ErrImagePull: {_pull_error(c['image'])}"}}
        if cr.behaviour != "pull" and cr.state != "creating":
            s["imageID"] = image_id(c["image"])
            s["containerID"] = cr.container_id
        return s


def ns_name(pod: Obj, sep: str = "/") -> str:
    meta = pod["metadata"]
    if sep == "_":
        return f"{meta['name']}_{meta['namespace']}({meta['uid']})"
    return f"{meta['namespace']}/{meta['name']}"


def _go_duration(seconds: int) -> str:
    return f"{seconds // 60}m{seconds % 60}s" if seconds >= 60 else f"{seconds}s"


def _pull_error(image: str) -> str:
    ref = image if "/" in image else f"docker.io/library/{image}"
    return (f'rpc error: code = NotFound desc = failed to pull and unpack image "{ref}": '
            f'failed to resolve reference "{ref}": {ref}: not found')


def pod_is_ready(pod: Obj) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in (pod.get("status") or {}).get("conditions") or [])


def container_log(pod: Obj, run: PodRun | None, container: str | None, previous: bool) -> str:
    """What `kubectl logs` prints; raises ApiError 400 the way the kubelet refuses, for a container not running."""
    names = [c["name"] for c in pod["spec"].get("containers") or []]
    name = container or (names[0] if len(names) == 1 else None)
    pod_name = pod["metadata"]["name"]
    if name is None:
        raise ApiError.bad_request(f"a container name must be specified for pod {pod_name}, choose one of: "
                                   f"[{' '.join(names)}]")
    if name not in names:
        raise ApiError.bad_request(f"container {name} is not valid for pod {pod_name}")
    cr = run.containers.get(name) if run else None
    if cr is None or not pod["spec"].get("nodeName"):
        raise ApiError.bad_request(f'container "{name}" in pod "{pod_name}" is waiting to start: ContainerCreating')
    image = next(c["image"] for c in pod["spec"]["containers"] if c["name"] == name)
    if previous:
        if not cr.last_terminated:
            raise ApiError.bad_request(f'previous terminated container "{name}" in pod "{pod_name}" not found')
        return _crash_log(name, image)
    if cr.state in ("pull-error", "pull-backoff"):
        raise ApiError.bad_request(f'container "{name}" in pod "{pod_name}" is waiting to start: trying and failing '
                                   "to pull image")
    if cr.state == "creating":
        raise ApiError.bad_request(f'container "{name}" in pod "{pod_name}" is waiting to start: ContainerCreating')
    if cr.behaviour == "crashloop":
        return _crash_log(name, image)
    version = image.rsplit(":", 1)[-1]
    return (f'{{"level":"info","msg":"starting {name}","version":"{version}"}}\n'
            "INFO:     Started server process [1]\n"
            "INFO:     Waiting for application startup.\n"
            "INFO:     Application startup complete.\n"
            "INFO:     Uvicorn running on http://0.0.0.0:8080 (Press CTRL+C to quit)\n")


def _crash_log(name: str, image: str) -> str:
    version = image.rsplit(":", 1)[-1]
    return (f'{{"level":"info","msg":"starting {name}","version":"{version}"}}\n'
            "Traceback (most recent call last):\n"
            '  File "/app/main.py", line 42, in <module>\n'
            "    app = create_app(settings)\n"
            '  File "/app/app.py", line 17, in create_app\n'
            "    pool = connect(settings.database_url)\n"
            f"RuntimeError: {name} {version}: refusing to start: migration 0042 not applied\n")
