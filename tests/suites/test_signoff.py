"""Release sign-off end to end, as a release manager runs it: one result set per run, signoff.md / signoff.json with
GO, NO-GO or INCONCLUSIVE, and no secret in any file a run leaves behind (traces unzipped), nor on the terminal."""

from __future__ import annotations

import base64
import io
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from typing import Any
from collections.abc import Iterator

import httpx
import pytest

from polycheck.checks.browser import choose_chromium, in_ci
from polycheck.signoff.executor import detect_executor
from polycheck.doubles.promserver import LocalPrometheus
from tests.support.prometheus_wait import until_query
from tests.support.receiver import receiver  # noqa: F401 - a fixture
from tests.support.stack_control import StackControl
from tests.support.suite_runner import REPO, run_suites
from tests.support.selftest_env import local_env_text

SMOKE = "smoke and not postdeploy"
TOKEN_SHAPE = re.compile(rb"eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{20,}")  # a token of the local auth service
BEARER_VALUE = re.compile(rb"Bearer (?!\[REDACTED\])[A-Za-z0-9._~+/=-]{8,}")


def signoff_of(reports: Path) -> dict[str, Any]:
    return json.loads((reports / "latest" / "signoff.json").read_text())


def last_lines(output: str, count: int = 12) -> str:
    return "\n".join(output.rstrip().splitlines()[-count:])


# -- GO / NO-GO / INCONCLUSIVE ---------------------------------------------------------------------------
def test_a_healthy_run_signs_off_go(stack: StackControl, tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    run = run_suites("-m", SMOKE, "-p", "no:randomly", "--rollback", "off", stack_file=stack.stack_file, reports_dir=reports)
    assert run.returncode == 0, run.describe()
    signoff = signoff_of(reports)
    assert signoff["verdict"] == "GO" and signoff["exit_code"] == 0, signoff
    steps = {s["key"]: s for s in signoff["steps"]}
    assert steps["smoke"]["verdict"] == "GO" and steps["smoke"]["counts"]["passed"] >= 100, steps
    assert steps["rollout"]["verdict"] == "GO" and steps["canary"]["verdict"] == "not selected", steps
    assert signoff["problems"] == [] and signoff["rollbacks"] == [] and signoff["escalations"] == []
    assert signoff["env"] == "local" and signoff["release"] == "1.3.0" and signoff["who"] and signoff["host"]
    assert signoff["environment"]["service.order.version"] == "1.3.0", signoff["environment"]
    images = {k: v for k, v in signoff["environment"].items() if "image" in k}
    assert signoff["environment"].get("service.order.image", "").endswith("order-service:1.3.0"), images
    assert signoff["environment"]["playwright.version"] and signoff["environment"]["chromium.version"]
    md = (reports / "latest" / "signoff.md").read_text()
    assert md.startswith("# Release sign-off: GO") and "| Step 4 smoke tests | GO |" in md, md
    # the terminal ends with the sign-off's lines, the same as the top of signoff.md
    tail = last_lines(run.output, 8)
    assert "polycheck sign-off" in tail and "GO: env local, release 1.3.0" in tail, tail
    assert tail.splitlines()[-1].strip() in md, (tail, md)
    results = reports / "latest" / "allure-results"
    for name in ("environment.properties", "executor.json", "categories.json"):
        assert (results / name).is_file(), name
    assert (reports / "latest" / "junit.xml").is_file()


def test_a_broken_service_is_no_go_naming_it(stack: StackControl, tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    stack.set_fault("search", "down")
    run = run_suites("-m", SMOKE, "-p", "no:randomly", "--rollback", "off", "-k", "not browser",
                     stack_file=stack.stack_file, reports_dir=reports)
    assert run.returncode == 1, run.describe()
    signoff = signoff_of(reports)
    assert signoff["verdict"] == "NO-GO" and signoff["exit_code"] == 1, signoff
    failed = [p for p in signoff["problems"] if p["outcome"] == "failed"]
    assert failed and {p["culprit"] for p in failed} == {"search"}, signoff["problems"]
    assert all(p["reason"] for p in failed), failed
    steps = {s["key"]: s["verdict"] for s in signoff["steps"]}
    assert steps["smoke"] == "NO-GO" and steps["synthetic"] == "NO-GO", steps
    assert "[culprit: search]" in last_lines(run.output, 20), last_lines(run.output, 20)


def test_an_unreachable_environment_is_inconclusive(tmp_path: Path) -> None:
    text = (REPO / "envs" / "prod.toml").read_text()
    for name in ("auth", "product", "inventory", "order", "payment", "notification", "search", "gateway"):
        text = text.replace(f"http://{name}-service.polyshop.svc.cluster.local:8080", "http://127.0.0.1:9")
    (tmp_path / "unreachable.toml").write_text(text)
    reports = tmp_path / "reports"
    run = run_suites("-m", SMOKE, "--env", "unreachable", f"--env-dir={tmp_path}", "--rollback", "off",
                     f"--rollback-log={tmp_path / 'log'}", reports_dir=reports)
    assert run.returncode == 6, run.describe()
    signoff = signoff_of(reports)
    assert signoff["verdict"] == "INCONCLUSIVE" and signoff["exit_code"] == 6, signoff
    assert signoff["problems"] and {p["outcome"] for p in signoff["problems"]} == {"inconclusive"}
    assert len({(e["service"], e["check"]) for e in signoff["escalations"]}) == 1, signoff["escalations"]  # one, to each webhook
    assert "INCONCLUSIVE: env unreachable" in last_lines(run.output, 25), last_lines(run.output, 25)


# -- one run, one result set; history ----------------------------------------------------------------------
def test_two_runs_leave_two_result_sets_and_the_second_carries_the_first(stack: StackControl, tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    args = ("-m", SMOKE, "suites/test_health.py", "-p", "no:randomly", "--rollback", "off")
    first = run_suites(*args, stack_file=stack.stack_file, reports_dir=reports)
    assert first.returncode == 0, first.describe()
    first_folder = (reports / "latest").resolve()
    stack.set_fault("search", "wrong_version", version="1.2.9")
    second = run_suites(*args, stack_file=stack.stack_file, reports_dir=reports)
    assert second.returncode == 1, second.describe()
    runs = sorted((reports / "runs").iterdir())
    assert len(runs) == 2 and runs[0] == first_folder and (reports / "latest").resolve() == runs[1], runs
    for folder in runs:
        assert (folder / "signoff.json").is_file() and list((folder / "allure-results").glob("*-result.json")), folder
    firsts = {p.name for p in (runs[0] / "allure-results").iterdir()}
    seconds = {p.name for p in (runs[1] / "allure-results").iterdir()}
    assert not firsts & {n for n in seconds if n.endswith("-result.json")}, "the second run's results mix in the first's"
    history = [json.loads(line) for line in (runs[1] / "history.jsonl").read_text().splitlines()]
    assert len(history) == 1 and history[0]["testResults"], history
    assert all(item["status"] == "passed" for item in history[0]["testResults"].values())


def test_old_runs_are_pruned_by_count(stack: StackControl, tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    for index in range(3):
        old = reports / "runs" / f"2020010{index}T000000Z-old{index}"
        (old / "allure-results").mkdir(parents=True)
        (old / "signoff.json").write_text("{}")
    run = run_suites("-m", SMOKE, "suites/test_health.py", "-k", "liveness", "--keep-runs", "2",
                     stack_file=stack.stack_file, reports_dir=reports)
    assert run.returncode == 0, run.describe()
    names = sorted(p.name for p in (reports / "runs").iterdir())
    assert len(names) == 2 and names[0].endswith("old2") and not names[1].startswith("2020"), names


def test_old_runs_are_pruned_by_bytes_and_the_audit_log_follows_the_reports_dir(stack: StackControl, tmp_path: Path) -> None:
    """--keep-mb 1: three old runs of 600 kB; a real run keeps only what fits in 1 MiB with itself (never itself),
    and its rollback decisions go to the reports dir's audit log, not the checkout's reports/."""
    reports = tmp_path / "reports"
    for index in range(3):
        old = reports / "runs" / f"2020010{index}T000000Z-old{index}"
        (old / "allure-results").mkdir(parents=True)
        (old / "signoff.json").write_text("{}")
        (old / "allure-results" / "big-attachment.txt").write_bytes(b"x" * 600_000)
    checkout_log = REPO / "reports" / "rollback-log.jsonl"
    stack.set_fault("order", "down")
    run = run_suites("-m", SMOKE, "suites/test_health.py", "-k", "order", "--rollback", "dry-run", "--keep-mb", "1",
                     stack_file=stack.stack_file, reports_dir=reports)
    assert run.returncode == 1, run.describe()
    names = sorted(p.name for p in (reports / "runs").iterdir())
    assert names[:-1] == ["20200102T000000Z-old2"] and not names[-1].startswith("2020"), names
    total = sum(f.stat().st_size for f in (reports / "runs").rglob("*") if f.is_file())
    assert total <= 1024 * 1024, total
    audit = [json.loads(line) for line in (reports / "rollback-log.jsonl").read_text().splitlines()]
    assert audit and all(entry.get("run_id") for entry in audit), audit
    assert not checkout_log.is_file() or audit[0]["run_id"] not in checkout_log.read_text(), "the run wrote to the checkout's reports/"


# -- no secret in any artefact -----------------------------------------------------------------------------
def every_file(root: Path) -> Iterator[tuple[str, bytes]]:
    """(name, bytes) of every file under root, the members of zip archives (Playwright traces) unzipped."""
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.is_symlink():
            yield from _unzipped(str(path.relative_to(root)), path.read_bytes())


def _unzipped(name: str, data: bytes) -> Iterator[tuple[str, bytes]]:
    yield name, data
    if data[:4] == b"PK\x03\x04":
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            for member in archive.infolist():
                yield from _unzipped(f"{name}!{member.filename}", archive.read(member))


def leaks(root: Path, extra: list[tuple[str, bytes]], secret_values: list[str]) -> list[str]:
    found = []
    for name, data in [*every_file(root), *extra]:
        for value in secret_values:
            if value.encode() in data:
                found.append(f"{name}: {value[:6]}…")
        for shape in (TOKEN_SHAPE, BEARER_VALUE):
            match = shape.search(data)
            if match:
                found.append(f"{name}: {match.group(0)[:16]!r}…")
    return found


@pytest.fixture
def secret_env(tmp_path: Path, prometheus: LocalPrometheus, receiver: list[dict[str, Any]], stack: StackControl
               ) -> tuple[Path, dict[str, str]]:
    """envs/local.toml with every kind of secret configured, as in production: the synthetic account's password,
    an expired token, the rollback webhook and an escalation webhook (loopback URLs whose path is the secret)."""
    url = receiver[0]["url"]
    values = {
        "POLYSHOP_SYNTHETIC_EMAIL": f"probe-signoff-{secrets.token_hex(4)}@synthetic.polyshop.test",
        "POLYSHOP_SYNTHETIC_PASSWORD": f"Pw-{secrets.token_urlsafe(12)}",
        "POLYSHOP_EXPIRED_TOKEN": f"expired-{secrets.token_hex(16)}",
        "POLYSHOP_ROLLBACK_WEBHOOK": f"{url}/hooks/T0{secrets.token_hex(6)}/B0{secrets.token_hex(6)}",
        "POLYSHOP_ONCALL_WEBHOOK": f"{url}/oncall/{secrets.token_hex(12)}?key={secrets.token_hex(6)}",
    }
    text = local_env_text()
    for old, new in {
        "[prometheus]\n": f'[prometheus]\nurl = "{prometheus.url}"\n',
        # many services fail at once here: the blast radius is widened so order's rollback still calls the webhook
        'actions = ["kubernetes-undo"]': 'actions = ["kubernetes-undo", "webhook"]\nwebhook_url = "${POLYSHOP_ROLLBACK_WEBHOOK}"\n'
                                         'max_services = 8',
        'on_failure_of = ["payment", "order"]': 'on_failure_of = ["payment", "order"]\nwebhooks = ["${POLYSHOP_ONCALL_WEBHOOK}"]',
        '[synthetic]\n': '[synthetic]\nemail = "${POLYSHOP_SYNTHETIC_EMAIL}"\npassword = "${POLYSHOP_SYNTHETIC_PASSWORD}"\n'
                         'expired_token = "${POLYSHOP_EXPIRED_TOKEN}"\n',
    }.items():
        assert old in text, old
        text = text.replace(old, new, 1)
    text += '\n[links]\njaeger = "http://127.0.0.1:16686/trace/{trace_id}"\nloki = "http://127.0.0.1:3100/explore?request={request_id}"\n'
    (tmp_path / "env").mkdir()
    (tmp_path / "env" / "local.toml").write_text(text)
    with httpx.Client(base_url=stack.stack.info.gateway, timeout=5, headers={"X-Synthetic": "true"}) as client:
        answer = client.post("/api/auth/users", json={"email": values["POLYSHOP_SYNTHETIC_EMAIL"],
                                                      "password": values["POLYSHOP_SYNTHETIC_PASSWORD"]})
        assert answer.status_code == 201, answer.text
    return tmp_path / "env", values


FAULT_SETS = {
    # sign-in refused: the browser stays on /login with the password typed in; auth's checks fail, flows are blocked
    "sign-in-refused": [("auth", "reject_logins", {})],
    # flows broken after sign-in: the browser is signed in (a token in its requests), payments decline
    "flows-broken": [("payment", "decline_all", {}), ("gateway", "broken_storefront", {})],
}
EVERY_KIND = {  # one failing check of each kind, whatever the fault set
    "http": "test_runs_the_release_version[search]",
    "browser": "test_customer_signs_in_and_sees_products[chromium]",
    "post-deploy": "test_metric_within_runbook_limit[kafka_consumer_lag[inventory]]",
    # the crash loop fails the pods check; the rollout check too, unless the rollback the first failure fires lands
    # while it still waits (the checks run at once)
    "rollout": ("test_pods_are_healthy[order]", "test_rollout_is_complete[order]"),
}


@pytest.mark.parametrize("faults", list(FAULT_SETS), ids=list(FAULT_SETS))
def test_no_secret_in_any_artefact(stack: StackControl, tmp_path: Path, prometheus: LocalPrometheus,
                                   secret_env: tuple[Path, dict[str, str]], receiver: list[dict[str, Any]], faults: str) -> None:
    env_dir, values = secret_env
    for service, kind, params in FAULT_SETS[faults]:
        stack.set_fault(service, kind, **params)
    stack.set_fault("search", "wrong_version", version="1.2.9")
    stack.kube_fault("order", "crashloop")
    stack.set_fault("inventory", "consumer_lag", lag=50000)
    until_query(prometheus, 'kafka_consumergroup_lag{consumergroup="inventory-service"}', lambda v: v > 1000)
    reports, log = tmp_path / "reports", tmp_path / "rollback-log.jsonl"
    run = run_suites("-m", "smoke or postdeploy", "-p", "no:randomly", f"--env-dir={env_dir}", "--released", "order",
                     f"--rollback-log={log}", stack_file=stack.stack_file, extra_env=values, reports_dir=reports)
    assert run.returncode == 1, run.describe()
    for kind, checks in EVERY_KIND.items():  # (the browser check is blocked by auth when auth refuses the sign-in)
        bad = [c for c in ((checks,) if isinstance(checks, str) else checks)
               if run.cases.get(c) and run.cases[c].outcome in ("failed", "blocked")]
        assert bad, f"{kind}: {checks}\n{run.describe()}"
    flow = "test_login_returns_a_sane_bearer_token" if faults == "sign-in-refused" else "test_order_is_confirmed_after_payment"
    assert any(name.startswith(flow) and c.outcome == "failed" for name, c in run.cases.items()), run.describe()
    # the secrets were used for real: the webhooks were called, the browser's trace was attached
    assert any(p["path"].startswith("/hooks/") for p in receiver[1:]), receiver
    assert any(p["path"].startswith("/oncall/") for p in receiver[1:]), receiver
    folder = (reports / "latest").resolve()
    traces = [name for name, _ in every_file(folder) if name.endswith(".zip") and "!" not in name]
    assert traces, "no Playwright trace was attached"
    signoff = json.loads((folder / "signoff.json").read_text())
    assert signoff["verdict"] == "NO-GO" and signoff["rollbacks"] and signoff["escalations"], signoff
    browser = next(p for p in signoff["problems"] if "storefront" in p["check"] and "signs_in" in p["check"])
    assert browser["reason"], browser
    searched = [v for k, v in values.items() if k != "POLYSHOP_SYNTHETIC_EMAIL"]  # an identity, shown on purpose
    found = leaks(reports, [("terminal output", run.output.encode()), ("rollback log", log.read_bytes())], searched)
    assert not found, "secrets in the artefacts:\n" + "\n".join(found[:40])


# -- the offline HTML report -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def allure3() -> Path:
    """Allure 3 installed as `make report` installs it (the version pinned in package.json)."""
    binary = REPO / "node_modules" / ".bin" / "allure"
    if not binary.exists():
        npm = shutil.which("npm")
        if npm is None:
            if in_ci():
                pytest.fail("CI must have npm (make report installs Allure 3 with it)")
            pytest.skip("no npm to install Allure 3 (make report needs it)")
        subprocess.run([npm, "install", "--no-audit", "--no-fund", "--no-package-lock", "--loglevel=error"], cwd=REPO,
                       check=True, timeout=600)
    return binary


def decoded(page_html: str, name: str) -> Any:
    """A data file embedded in the single-file report (base64 JSON)."""
    match = re.search(r'd\("' + re.escape(name) + r'","([^"]*)"\)', page_html)
    assert match, f"{name} is not in the report"
    return json.loads(base64.b64decode(match.group(1)))


def artefacts(tmp_path: Path) -> Path:
    """Where the screenshots go: POLYCHECK_TEST_ARTEFACTS (CI keeps it), else the test's own temp folder."""
    folder = Path(os.environ.get("POLYCHECK_TEST_ARTEFACTS") or tmp_path / "artefacts")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def chromium_or_skip() -> Any:
    choice = choose_chromium(None)
    if choice is None or choice.executable is None:
        if in_ci():
            pytest.fail("CI must have chromium to open the report")
        pytest.skip("no chromium to open the report")
    return choice


class OnlyLocal:
    """A Playwright route that lets file: pages load and refuses (and remembers) anything else."""

    def __init__(self) -> None:
        self.outside: list[str] = []

    def __call__(self, route: Any) -> None:
        url = route.request.url
        if url.startswith(("file:", "data:", "blob:", "about:")):
            route.continue_()
        else:
            self.outside.append(url)
            route.abort()


def test_the_signoff_page_shows_go_no_go_and_inconclusive_first_in_chromium(stack: StackControl, tmp_path: Path) -> None:
    choice = chromium_or_skip()
    args = ("-m", SMOKE, "suites/test_health.py", "-p", "no:randomly", "--rollback", "off")
    pages: dict[str, Path] = {}
    go = tmp_path / "go"
    assert run_suites(*args, stack_file=stack.stack_file, reports_dir=go).returncode == 0
    pages["GO"] = go / "latest" / "signoff.html"
    stack.set_fault("search", "wrong_version", version="1.2.9")
    no_go = tmp_path / "no-go"
    assert run_suites(*args, stack_file=stack.stack_file, reports_dir=no_go).returncode == 1
    pages["NO-GO"] = no_go / "latest" / "signoff.html"
    text = (REPO / "envs" / "prod.toml").read_text()
    for name in ("auth", "product", "inventory", "order", "payment", "notification", "search", "gateway"):
        text = text.replace(f"http://{name}-service.polyshop.svc.cluster.local:8080", "http://127.0.0.1:9")
    (tmp_path / "unreachable.toml").write_text(text)
    inconclusive = tmp_path / "inconclusive"
    run = run_suites("-m", SMOKE, "suites/test_health.py", "--env", "unreachable", f"--env-dir={tmp_path}", "--rollback", "off",
                     f"--rollback-log={tmp_path / 'log'}", reports_dir=inconclusive)
    assert run.returncode == 6, run.describe()
    pages["INCONCLUSIVE"] = inconclusive / "latest" / "signoff.html"
    from playwright.sync_api import sync_playwright

    only_local = OnlyLocal()
    shots = artefacts(tmp_path)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=choice.executable, args=list(choice.args), headless=True)
        try:
            page = browser.new_page(viewport={"width": 1300, "height": 900})
            page.route("**/*", only_local)
            shown: dict[str, str] = {}
            for verdict, html in pages.items():
                page.goto(html.as_uri())
                shown[verdict] = page.inner_text("body")
                page.screenshot(path=str(shots / f"signoff-{verdict.lower()}.png"), full_page=True)
                assert page.inner_text("h1") == verdict, (verdict, shown[verdict][:500])
                assert shown[verdict].index("Runbook steps") < shown[verdict].index("Signed off by"), shown[verdict][:2000]
                assert "Step 4 smoke tests" in shown[verdict] and "Signed off by (release manager):" in shown[verdict]
        finally:
            browser.close()
    assert shown["GO"].startswith("GO\n") and "The release may stay" in shown["GO"] and "None: no failed check blames a service." in shown["GO"], shown["GO"][:1500]
    culprits = shown["NO-GO"].split("Culprits", 1)[1].split("Checks that did not pass", 1)[0]
    assert "search" in culprits and not {"auth", "order", "payment"} & set(culprits.split()), culprits
    assert "search runs version '1.2.9', but this release is '1.3.0'" in shown["NO-GO"], shown["NO-GO"][:3000]
    data = signoff_of(inconclusive)
    reason = data["problems"][0]["reason"]
    # the reason in the header and once for its group of checks (the escalations quote it too), not once per check
    assert f"reason: {reason}" in shown["INCONCLUSIVE"], shown["INCONCLUSIVE"][:3000]
    assert shown["INCONCLUSIVE"].count(reason) == 2 + len(data["escalations"]), shown["INCONCLUSIVE"][:3000]
    assert len(data["problems"]) >= 40 and f"{len(data['problems'])} checks" in shown["INCONCLUSIVE"]
    assert not only_local.outside, f"the sign-off page tried to load: {only_local.outside}"
    assert all((shots / f"signoff-{v.lower()}.png").stat().st_size > 10_000 for v in pages)


def test_the_html_report_is_offline_and_shows_totals_environment_reason_and_history(
        stack: StackControl, tmp_path: Path, allure3: Path) -> None:
    reports = tmp_path / "reports"
    args = ("-m", SMOKE, "suites/test_health.py", "-p", "no:randomly", "--rollback", "off")
    assert run_suites(*args, stack_file=stack.stack_file, reports_dir=reports).returncode == 0
    other = run_suites("-m", SMOKE, "suites/test_health.py", "-k", "auth", "-p", "no:randomly", "--rollback", "off",
                       stack_file=stack.stack_file, reports_dir=reports)
    assert other.returncode == 0, other.describe()  # another selection: not in the trend of the first one's
    stack.set_fault("search", "wrong_version", version="1.2.9")
    second = run_suites(*args, "--released=search", stack_file=stack.stack_file, reports_dir=reports)
    assert second.returncode == 1, second.describe()
    started = time.monotonic()
    built = subprocess.run([sys.executable, "-m", "polycheck", "report", f"--reports-dir={reports}"], cwd=REPO,
                           capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stdout + built.stderr
    assert time.monotonic() - started < 120, "the report took too long to build"
    index = reports / "latest" / "report" / "index.html"
    html = reports / "latest" / "report" / "allure.html"
    text = html.read_text()
    assert "googletagmanager" not in text and "gtag(" not in text
    results = [json.loads(p.read_text()) for p in (reports / "latest" / "allure-results").glob("*-result.json")]
    total, failed = len({r["historyId"] for r in results}), len({r["historyId"] for r in results if r["status"] == "failed"})
    assert len(second.failed) == 1 and total >= 40 and total == len(second.cases), second.describe()  # no rollback result
    # blocker only where a failure could roll back a service of this release (--released=search)
    severity = {r["name"]: next(label["value"] for label in r["labels"] if label["name"] == "severity") for r in results}
    blockers = {name for name, value in severity.items() if value == "blocker"}
    assert blockers and all("[search]" in name for name in blockers), blockers
    assert any(value == "critical" and "[auth]" in name for name, value in severity.items()), severity
    # the checks that ran ahead keep the time their body ran
    instant = [r["name"] for r in results if (r.get("stop") or 0) - (r.get("start") or 0) <= 0]
    assert len(instant) <= len(results) // 10, f"{len(instant)} of {len(results)} results last 0 ms: {instant[:10]}"
    # the second report carries the first run in its history, not the run of another selection
    trend = decoded(text, "widgets/history-trend.json")
    assert len(trend) == 2 and trend[1]["data"]["passed"] == len(second.cases) and trend[0]["data"]["failed"] == failed, trend
    categories = decoded(text, "data/categories.json")
    assert "Release defect" in json.dumps(categories), categories
    choice = chromium_or_skip()
    from playwright.sync_api import sync_playwright

    only_local = OnlyLocal()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=choice.executable, args=list(choice.args), headless=True)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.route("**/*", only_local)
            page.goto(index.as_uri())
            assert page.inner_text("h1") == "NO-GO"
            page.screenshot(path=str(artefacts(tmp_path) / "report-index-no-go.png"), full_page=False)
            assert page.locator("iframe[src='allure.html']").count() == 1
            page.goto(html.as_uri())
            page.get_by_text("test cases").first.wait_for(timeout=20_000)
            overview = page.inner_text("body")
            assert re.search(rf"\b{total}\s+test cases", overview), overview[:2000]
            # whoever ran it (a person's shell, or CI where CI=true): the name the run's executor.json gives
            executor = json.loads((reports / "latest" / "allure-results" / "executor.json").read_text())["name"]
            assert executor == detect_executor({k: v for k, v in os.environ.items() if not k.startswith("POLYCHECK_")})["name"]
            assert "release.version" in overview and "1.3.0" in overview and executor in overview, overview[:2000]
            assert "Release defect" in overview, overview[:2000]
            page.goto(html.as_uri() + "#categories")
            page.get_by_text("Release defect").first.click()
            page.get_by_text("search runs version", exact=False).first.wait_for(timeout=20_000)
            reason = page.inner_text("body")
            assert "search runs version '1.2.9', but this release is '1.3.0'" in reason, reason[:3000]
        finally:
            browser.close()
    assert not only_local.outside, f"the report tried to load: {only_local.outside}"
