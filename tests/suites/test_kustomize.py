"""deploy/ as a Kustomize base with staging and prod overlays: rendered with the real `kubectl kustomize`, every
run pointed at its environment, checked by checkov's Kubernetes checks (deploy/checkov.yaml: what is skipped, and
why) and by kubernetes-validate against the Kubernetes 1.37 schemas, and the whole rendered overlay applied to the
local Kubernetes simulator."""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

import kubernetes_validate

from polycheck.checks.browser import in_ci
from polycheck.core.polling import poll
from tests.support import selftest_env
from tests.support.stack_control import StackControl
from tests.support.suite_runner import REPO, as_checker, parse_junit, suite_env

KUBECTL = shutil.which("kubectl")
pytestmark = pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed (it renders the overlays: kubectl kustomize)")
CHECKOV_CONFIG = REPO / "deploy" / "checkov.yaml"
KUBERNETES_VERSION = "1.37.0"  # kubernetes-validate's schemas (pinned with it in pyproject.toml)
NO_SCHEMA = {  # kinds kubernetes-validate has no schema for, and why they are not validated (README: "In the cluster")
    "AnalysisTemplate": "an Argo Rollouts CRD (argoproj.io/v1alpha1): its Job is validated as a batch/v1 Job instead",
    "PrometheusRule": "a prometheus-operator CRD (monitoring.coreos.com/v1): its rules are checked by promtool and a real Prometheus",
}
KINDS = {"ServiceAccount", "Role", "RoleBinding", "CronJob", "PersistentVolumeClaim", "Deployment", "Service",
         "AnalysisTemplate", "PrometheusRule", "NetworkPolicy"}


def render(overlay: str) -> list[dict[str, Any]]:
    done = subprocess.run([KUBECTL or "kubectl", "kustomize", str(REPO / "deploy" / "overlays" / overlay)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return [d for d in yaml.safe_load_all(done.stdout) if d]


def env_args(docs: list[dict[str, Any]]) -> dict[str, str]:
    """kind/name -> the --env every container of it runs with."""
    found: dict[str, str] = {}
    for doc in docs:
        text = json.dumps(doc)
        pods = []
        if doc["kind"] == "CronJob":
            pods.append(doc["spec"]["jobTemplate"]["spec"]["template"]["spec"])
        elif doc["kind"] == "Deployment":
            pods.append(doc["spec"]["template"]["spec"])
        elif doc["kind"] == "AnalysisTemplate" and "job" in doc["spec"]["metrics"][0]["provider"]:
            pods.append(doc["spec"]["metrics"][0]["provider"]["job"]["spec"]["template"]["spec"])
        for pod in pods:
            for container in pod.get("initContainers", []) + pod["containers"]:
                words = " ".join(container.get("args", [])).split()
                found[f"{doc['kind']}/{doc['metadata']['name']}/{container['name']}"] = words[words.index("--env") + 1]
        assert "--env" not in text or pods, doc["kind"]
    return found


@pytest.mark.parametrize("overlay", ["prod", "staging"])
def test_each_overlay_renders_every_resource_for_its_environment(overlay: str) -> None:
    docs = render(overlay)
    assert {d["kind"] for d in docs} == KINDS
    assert all(d["metadata"]["labels"]["polyshop.io/environment"] == overlay for d in docs)
    envs = env_args(docs)
    assert len(envs) == 4 and set(envs.values()) == {overlay}, envs  # cronjob + its sweep, serve, the analysis Job
    cron = next(d for d in docs if d["kind"] == "CronJob")
    pod = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    ledger = f"/var/lib/polycheck/leftovers-{overlay}.jsonl"
    args = pod["containers"][0]["args"]
    assert f"--ledger={ledger}" in args and ledger in pod["initContainers"][0]["args"][0]
    assert args[args.index("--push-metrics") + 1].startswith("http"), args  # the overlay's patch left the push URL alone
    images = {c["image"] for d in docs for c in _containers(d)}
    assert images == {"ghcr.io/polyshop/polycheck:0.1.0"}


def _containers(doc: dict[str, Any]) -> list[dict[str, Any]]:
    if doc["kind"] == "CronJob":
        pod = doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    elif doc["kind"] == "Deployment":
        pod = doc["spec"]["template"]["spec"]
    elif doc["kind"] == "AnalysisTemplate" and "job" in doc["spec"]["metrics"][0]["provider"]:
        pod = doc["spec"]["metrics"][0]["provider"]["job"]["spec"]["template"]["spec"]
    else:
        return []
    return list(pod.get("initContainers", [])) + list(pod["containers"])


def as_linted(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rendered documents as the linters see them, plus each AnalysisTemplate's Job as a batch/v1 Job of its
    own (neither checkov nor kubernetes-validate looks inside a CRD)."""
    jobs = []
    for doc in docs:
        for metric in doc["spec"].get("metrics", []) if doc["kind"] == "AnalysisTemplate" else []:
            if "job" in metric["provider"]:
                meta = {"name": f"{doc['metadata']['name']}-{metric['name']}", "namespace": doc["metadata"]["namespace"],
                        "labels": doc["metadata"].get("labels", {})}
                jobs.append({"apiVersion": "batch/v1", "kind": "Job", "metadata": meta,
                             "spec": copy.deepcopy(metric["provider"]["job"]["spec"])})
    return docs + jobs


def unhardened(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The control: the CronJob as it was before the hardening (no security context, no resources), renamed."""
    cron = copy.deepcopy(next(d for d in docs if d["kind"] == "CronJob"))
    cron["metadata"]["name"] = "polycheck-unhardened"
    pod = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    pod.pop("securityContext")
    for container in pod["initContainers"] + pod["containers"]:
        container.pop("securityContext")
        container.pop("resources")
    return [cron]


def checkov_binary() -> str:
    """checkov lives in its own venv (make .venv-checkov/bin/checkov: its pins clash with pytest's and kubernetes'),
    or $POLYCHECK_CHECKOV, or on PATH. Absent: skipped here, a failure in CI."""
    for candidate in (os.environ.get("POLYCHECK_CHECKOV"), str(REPO / ".venv-checkov" / "bin" / "checkov"), shutil.which("checkov")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    reason = "checkov is not installed (make .venv-checkov/bin/checkov; pinned in pyproject.toml [tool.polycheck.lint])"
    if in_ci():
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def checkov(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[dict[str, Any]]]:
    """One checkov run over both rendered overlays (and the unhardened control): file name -> its failed checks."""
    binary = checkov_binary()
    folder = tmp_path_factory.mktemp("rendered")
    for overlay in ("prod", "staging"):
        (folder / f"{overlay}.yaml").write_text(yaml.safe_dump_all(as_linted(render(overlay))))
    (folder / "unhardened.yaml").write_text(yaml.safe_dump_all(unhardened(render("prod"))))
    done = subprocess.run([binary, "--config-file", str(CHECKOV_CONFIG), "-d", str(folder), "-o", "json"],
                          capture_output=True, text=True, timeout=300, cwd=folder)
    assert done.returncode in (0, 1), done.stdout[-2000:] + done.stderr[-2000:]
    report = json.loads(done.stdout)
    assert report["summary"]["parsing_errors"] == 0, report["summary"]
    failed: dict[str, list[dict[str, Any]]] = {"prod.yaml": [], "staging.yaml": [], "unhardened.yaml": []}
    for check in report["results"]["failed_checks"]:
        failed[Path(check["file_path"]).name].append(check)
    scanned = {Path(c["file_path"]).name + ":" + c["resource"] for c in report["results"]["passed_checks"] + report["results"]["failed_checks"]}
    assert {f"{o}.yaml:Job.polyshop.polycheck-canary-step-polycheck" for o in ("prod", "staging")} <= scanned, "the analysis Job was linted"
    return failed


@pytest.mark.parametrize("overlay", ["prod", "staging"])
def test_each_overlay_passes_checkovs_kubernetes_checks(checkov: dict[str, list[dict[str, Any]]], overlay: str) -> None:
    failed = [(c["check_id"], c["resource"], c["check_name"]) for c in checkov[f"{overlay}.yaml"]]
    assert failed == [], failed


def test_checkov_fails_an_unhardened_container(checkov: dict[str, list[dict[str, Any]]]) -> None:
    """The other way round: the same CronJob without its security contexts and resources fails the same checks."""
    ids = {c["check_id"] for c in checkov["unhardened.yaml"]}
    expected = {"CKV_K8S_20": "allowPrivilegeEscalation", "CKV_K8S_22": "readOnlyRootFilesystem", "CKV_K8S_23": "runAsNonRoot",
                "CKV_K8S_28": "NET_RAW", "CKV_K8S_37": "capabilities", "CKV_K8S_31": "seccomp", "CKV_K8S_40": "high UID",
                "CKV_K8S_10": "CPU requests", "CKV_K8S_11": "CPU limits", "CKV_K8S_12": "memory requests", "CKV_K8S_13": "memory limits"}
    assert set(expected) <= ids, {k: v for k, v in expected.items() if k not in ids}


def test_every_skipped_check_says_why_in_the_config_and_the_readme() -> None:
    text = CHECKOV_CONFIG.read_text()
    skipped = yaml.safe_load(text)["skip-check"]
    reasons = dict(re.findall(r"^  - (CKV2?_K8S_\d+)  # (.+)$", text, re.M))
    assert skipped and set(skipped) == set(reasons), (skipped, reasons)
    readme = (REPO / "README.md").read_text()
    assert all(f"`{check}`" in readme for check in skipped), [c for c in skipped if f"`{c}`" not in readme]
    assert all(kind in readme for kind in NO_SCHEMA)


def schema_check(docs: list[dict[str, Any]]) -> tuple[list[str], dict[str, str]]:
    """kubernetes-validate (strict: an unknown field is an error) on each document: (errors, skipped kind -> reason)."""
    errors, skipped = [], {}
    for doc in docs:
        try:
            kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.SchemaNotFoundError:
            skipped[doc["kind"]] = NO_SCHEMA.get(doc["kind"], "no reason given: add it to NO_SCHEMA or validate it")
        except kubernetes_validate.ValidationError as exc:
            errors.append(f"{doc['kind']}/{doc['metadata']['name']}: {exc.message} at {'/'.join(map(str, exc.path))}")
    return errors, skipped


@pytest.mark.parametrize("overlay", ["prod", "staging"])
def test_each_overlay_is_valid_for_the_kubernetes_schemas(overlay: str) -> None:
    docs = as_linted(render(overlay))
    errors, skipped = schema_check(docs)
    assert errors == [], errors
    assert skipped == NO_SCHEMA, skipped
    assert "Job" in {d["kind"] for d in docs}, "the analysis template's Job is validated as a Job"


def test_a_misspelt_or_mistyped_field_fails_the_schema_check() -> None:
    """The other way round: strict validation refuses a field Kubernetes does not know and a wrong type."""
    docs = render("prod")
    cron = copy.deepcopy(next(d for d in docs if d["kind"] == "CronJob"))
    container = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    container["securityContext"]["runAsNonRot"] = container["securityContext"].pop("runAsNonRoot")
    deployment = copy.deepcopy(next(d for d in docs if d["kind"] == "Deployment"))
    deployment["spec"]["replicas"] = "one"
    errors, _ = schema_check([cron, deployment])
    assert len(errors) == 2 and "runAsNonRot" in errors[0] and "replicas" in errors[1], errors


def test_the_alerts_name_their_env_in_each_overlay() -> None:
    """absent() keeps only the labels its selector matches with `=`, so each overlay's PolyshopProbeNotRun selects
    its own env; every alert links its runbook with `runbook_url`."""
    for overlay in ("prod", "staging"):
        (rule,) = [d for d in render(overlay) if d["kind"] == "PrometheusRule"]
        alerts = {r["alert"]: r for group in rule["spec"]["groups"] for r in group["rules"]}
        (selector,) = re.findall(r"absent\(([^)]*)\)", alerts["PolyshopProbeNotRun"]["expr"])
        assert f'env="{overlay}"' in selector, selector
        assert all(r["annotations"]["runbook_url"].startswith("https://") and "runbook" not in r["annotations"]
                   for r in alerts.values()), alerts


def test_the_rendered_overlay_applies_to_the_simulator(stack: StackControl, tmp_path: Path) -> None:
    """kubectl apply of the whole staging overlay (RBAC, the CronJobs and their claim, the Deployment and Service,
    the AnalysisTemplates, the PrometheusRule), then the simulator's controllers roll the Deployment out; applied
    again, nothing changes. --validate=false: the simulator publishes no OpenAPI schema for kubectl's client-side
    validation."""
    info = stack.stack.info
    rendered = render("staging")
    manifest = tmp_path / "polycheck.yaml"
    manifest.write_text(yaml.safe_dump_all(rendered))
    base = [KUBECTL or "kubectl", "--kubeconfig", str(info.kubeconfig), "--cache-dir", str(tmp_path / "cache")]
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    applied = subprocess.run([*base, "apply", "--validate=false", "-f", str(manifest)], capture_output=True, text=True, timeout=120, env=env)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert "deployment.apps/polycheck created" in applied.stdout, applied.stdout
    created = [line for line in applied.stdout.splitlines() if line.endswith(" created")]
    assert len(created) == len(rendered), applied.stdout
    for kind in ("serviceaccount", "role.rbac.authorization.k8s.io", "rolebinding.rbac.authorization.k8s.io",
                 "cronjob.batch", "persistentvolumeclaim", "service", "analysistemplate.argoproj.io", "networkpolicy.networking.k8s.io",
                 "prometheusrule.monitoring.coreos.com"):
        assert any(line.startswith(f"{kind}/") for line in created), (kind, applied.stdout)

    def read() -> dict[str, Any]:
        got = subprocess.run([*base, "-n", "polyshop", "get", "deploy", "polycheck", "-o", "json"], capture_output=True,
                             text=True, timeout=60, env=env)
        assert got.returncode == 0, got.stderr
        return json.loads(got.stdout)

    deployment = read()
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["args"][:2] == ["--env", "staging"] and container["image"] == "ghcr.io/polyshop/polycheck:0.1.0"
    assert deployment["metadata"]["labels"]["polyshop.io/environment"] == "staging"
    poll(read, lambda d: (d.get("status") or {}).get("observedGeneration", 0) >= 1, timeout=20,
         what="the simulator's Deployment controller to observe the polycheck Deployment")
    again = subprocess.run([*base, "apply", "--validate=false", "-f", str(manifest)], capture_output=True, text=True, timeout=120, env=env)
    assert again.returncode == 0, again.stdout + again.stderr
    unchanged = [line for line in again.stdout.splitlines() if line.endswith(" unchanged")]
    assert len(unchanged) == len(rendered), again.stdout


READ_ONLY_ROOT = """set -e
mount --make-rprivate /
mount --bind "$REPO" "$KEEP/repo"  # (a checkout under /tmp, as a fresh clone's, is put back under the pod's /tmp below)
if [ -n "$WRITABLE_REPORTS" ]; then mount --bind "$WRITABLE_REPORTS" "$KEEP/reports"; fi
mount --bind / / && mount -o remount,bind,ro /
mount -t tmpfs -o size=256m tmpfs /tmp
case "$REPO" in /tmp/*) mkdir -p "$REPO" && mount --bind "$KEEP/repo" "$REPO" && mount -o remount,bind,ro "$REPO";; esac
if [ -n "$WRITABLE_REPORTS" ]; then mount --bind "$KEEP/reports" "$REPORTS" && mount -o remount,bind,rw "$REPORTS"; fi
if touch "$REPO/pyproject.toml" 2>/dev/null; then echo "the root filesystem is writable"; exit 9; fi
cd "$REPO" && exec "$PYTHON" -m pytest "$@"
"""


def test_the_probe_runs_on_a_read_only_root_filesystem(stack: StackControl, tmp_path: Path) -> None:
    """The CronJob's own arguments (against the local stack, no push) in a mount namespace whose root is read-only
    but for what the pod mounts: the reports emptyDir (bound over reports/), a fresh /tmp (HOME, as in the image),
    /dev/shm; the ledger goes to /tmp here. The synthetic checks run, the browser's too, and leave their sign-off;
    without the reports emptyDir the same run fails on the read-only root."""
    unshare = shutil.which("unshare")
    if unshare is None or subprocess.run([unshare, "-m", "sh", "-c", "mount --make-rprivate / && mount -t tmpfs tmpfs /mnt"],
                                         capture_output=True, timeout=30).returncode != 0:
        pytest.skip("no mount namespace here (unshare -m and mount need CAP_SYS_ADMIN): the read-only root is not simulated")
    cron = next(d for d in render("prod") if d["kind"] == "CronJob")
    container = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    assert {m["mountPath"] for m in container["volumeMounts"]} >= {"/tmp", "/polycheck/reports", "/dev/shm"}
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    args = list(container["args"])
    args[args.index("--env") + 1] = "local"
    push = args.index("--push-metrics")
    del args[push:push + 2]
    args = [a if not a.startswith("--ledger=") else "--ledger=/tmp/leftovers-local.jsonl" for a in args]
    writable = tmp_path / "reports"
    writable.mkdir()
    stack_file = Path("/dev/shm") / f"polycheck-stack-{os.getpid()}-{tmp_path.name}.json"  # seen with and without the bind
    shutil.copy(stack.stack_file, stack_file)
    (REPO / "reports").mkdir(exist_ok=True)  # the mount point, as the image's WORKDIR has it
    env = suite_env()
    keep = Path("/dev/shm") / f"polycheck-ro-{os.getpid()}-{tmp_path.name}"  # mount points outside /tmp
    (keep / "repo").mkdir(parents=True)
    (keep / "reports").mkdir()
    envs = shutil.copytree(selftest_env.env_dir(), keep / "envs")  # the self-tests' budgets (their /tmp is hidden)
    args.append(f"--env-dir={envs}")
    env.update(WRITABLE_REPORTS=str(writable), REPORTS=str(REPO / "reports"), REPO=str(REPO), PYTHON=sys.executable, HOME="/tmp",
               KEEP=str(keep),
               POLYCHECK_STACK_FILE=str(stack_file))
    command = as_checker([unshare, "-m", "sh", "-c", READ_ONLY_ROOT, "sh", *args, "-p", "no:randomly"])
    try:
        probe = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)
        without = subprocess.run(command, capture_output=True, text=True, timeout=300, env={**env, "WRITABLE_REPORTS": ""})
    finally:
        stack_file.unlink()
        shutil.rmtree(envs)
        for folder in (keep / "repo", keep / "reports", keep):
            folder.rmdir()
    assert probe.returncode == 0, probe.stdout[-3000:] + probe.stderr[-3000:]
    signoff = json.loads((writable / "latest" / "signoff.json").read_text())
    assert signoff["verdict"] == "GO", signoff
    assert without.returncode != 0 and "Read-only file system" in without.stdout + without.stderr, \
        "the other way round: without the reports emptyDir the run cannot write its result set"
    cases = parse_junit(writable / "latest" / "junit.xml")
    browser = {name: case.outcome for name, case in cases.items() if name.endswith("[chromium]")}
    assert browser and set(browser.values()) == {"passed"}, browser  # Chromium, with HOME=/tmp and /dev/shm
