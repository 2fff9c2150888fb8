"""Benchmark the smoke run the way a deploy gate sees it, and print the product's speed targets as ratios.

Usage: python benchmarks/bench_smoke.py [--repeat N] [--json FILE]

Against a PolyShop that is already running, with a warm Prometheus and customers' traffic (as in production:
`tests/support/traffic.py`, 12 API requests a second to each service, enough for every post-deploy value to rest on
the evidence it needs), each scenario is a whole `pytest` process (start-up included), N times (default 3), median.
Printed as ratios from this one run:

  healthy smoke                 <= 1.3 x (start-up and collection + the longest flow)
  start-up and collection       <= 0.7 s
  CPU of a healthy run          <= 2.5 s (the whole smoke, browser included; and without the browser and rollout)
  every request 200 ms slower   <= 2 x the healthy run
  one hanging service           <= healthy + read timeout + 5 s (order without post-deploy; search with it)
  marked check failed -> rollback request at the API   <= 1 s
  run start -> rollback request at the API (the simulator's clock of receipt), a release broken three ways:
    crash-looping image (rollout check) <= 2 s; payment declining every card (order flow) <= 2 s;
    a 5xx ratio above 5 % (post-deploy) <= the Prometheus window + 5 s
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from collections.abc import Callable

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from polycheck.doubles.localstack import LocalStack  # noqa: E402
from polycheck.doubles.promserver import LocalPrometheus, wait_for_data  # noqa: E402
from tests.support.traffic import shoppers  # noqa: E402

READ_TIMEOUT = 2.0  # envs/local.toml http.read_timeout_seconds
SMOKE = ["-m", "smoke"]
# every service has more API requests in the 15 s window than prometheus.min_observations (100)
EVIDENCE = 'min(sum by (service) (increase(http_requests_total{route!~"/metrics|/health.*"}[15s]))) > 110'
# and no service's window still holds slow answers: the requests a hang held finish when it is lifted, each taking
# as long as it was held, and stay in the 15 s window (a healthy run's p99 check would rightly fail on them)
CALM = ('max(histogram_quantile(0.99, sum by (service, le) (rate(http_request_duration_seconds_bucket'
        '{route!~"/metrics|/health.*"}[15s])))) < 0.5')


OUTPUT = {"last": ""}  # what the last timed process printed, shown when it exits otherwise than expected
CPU = {"cpu": 0.0}  # CPU seconds (user + system) of the last timed process and what it started (the browser too)


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(args: list[str], env: dict[str, str]) -> tuple[float, int, dict[str, float]]:
    """(wall seconds, exit code, call seconds per check) of one pytest process; its CPU seconds in CPU["cpu"]."""
    junit = Path(tempfile.mkdtemp()) / "junit.xml"
    cpu_before = children_cpu()
    started = time.perf_counter()
    reports = [] if any(a.startswith("--reports-dir") for a in args) else [f"--reports-dir={junit.parent / 'reports'}"]
    proc = subprocess.run([sys.executable, "-m", "pytest", *args, "-q", "-p", "no:cacheprovider", f"--junitxml={junit}", *reports],
                          cwd=REPO, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    CPU["cpu"] = children_cpu() - cpu_before
    OUTPUT["last"] = proc.stdout + proc.stderr
    cases = {c.get("name", ""): float(c.get("time", 0)) for c in ET.parse(junit).getroot().iter("testcase")} if junit.exists() else {}
    return seconds, proc.returncode, cases


def scenario(name: str, args: list[str], repeat: int, env: dict[str, str], expect_rc: int,
             setup: Callable[[], None] | None = None) -> dict[str, Any]:
    times, cpus, cases = [], [], {}
    for _ in range(repeat):
        if setup:
            setup()
        seconds, rc, cases = timed(args, env)
        if rc != expect_rc:
            failures = [line for line in OUTPUT["last"].splitlines() if line.startswith(("FAILED", "ERROR"))]
            raise SystemExit(f"{name}: pytest exited {rc}, expected {expect_rc}:\n" + "\n".join(failures[:20]))
        times.append(seconds)
        cpus.append(CPU["cpu"])
    row = {"scenario": name, "min": min(times), "median": statistics.median(times), "max": max(times), "runs": repeat,
           "cpu": statistics.median(cpus), "longest_check": max(cases.items(), key=lambda kv: kv[1], default=("", 0.0))}
    print(f"{name:62} median {row['median']:6.2f} s  (min {row['min']:.2f}, max {row['max']:.2f}), CPU {row['cpu']:.2f} s")
    return row


def verdict(label: str, value: float, target: float, unit: str = "x") -> dict[str, Any]:
    met = value <= target
    print(f"  {label:60} {value:6.2f} {unit}  target <= {target:.2f} {unit}: {'MET' if met else 'MISSED'}")
    return {"ratio": label, "value": value, "target": target, "met": met}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", help="also write the rows to this file")
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("POLYCHECK_", "PYTEST_"))}
    rows: list[dict[str, Any]] = []
    print(f"machine: {os.cpu_count()} cores; each scenario {args.repeat} runs against a running stack and a warm Prometheus")
    # with PYTHONDONTWRITEBYTECODE set (make unsets it), each run parses and rewrites the checks' modules again
    writes = "not written (PYTHONDONTWRITEBYTECODE is set)" if os.environ.get("PYTHONDONTWRITEBYTECODE") else "written and reused"
    print(f"bytecode and pytest's rewritten asserts: {writes}\n")
    stack = LocalStack.start(cwd=REPO)
    prometheus = LocalPrometheus.start(stack.info.services, scrape_interval="1s") if LocalPrometheus.available() is None else None
    customers = shoppers(stack.info.services).__enter__()
    try:
        work = Path(tempfile.mkdtemp())
        stack_file = work / "stack.json"
        stack_file.write_text(json.dumps(stack.info.to_json()))
        env_text = (REPO / "envs" / "local.toml").read_text()
        def enough_evidence() -> None:
            """The customers' traffic fills every service's 15 s window, with no slow answers a hang left in it."""
            if prometheus is not None:
                asked = time.time()
                with prometheus.client() as client:
                    # a scrape of every service taken after now: it holds the answers a lifted hang released
                    wait_for_data(client, f"min(timestamp(up)) > {asked:.3f}", timeout=60)
                    wait_for_data(client, EVIDENCE, timeout=60)
                    wait_for_data(client, CALM, timeout=60)

        if prometheus is not None:
            enough_evidence()
            env_text = env_text.replace("[prometheus]\n", f'[prometheus]\nurl = "{prometheus.url}"\n')
        (work / "local.toml").write_text(env_text)
        shared = {**env, "POLYCHECK_STACK_FILE": str(stack_file)}
        # dry-run: a run that fails (the hanging service) decides its rollbacks but leaves the environment as it
        # was for the next scenario; the rollback scenario below acts for real
        base = [*SMOKE, f"--env-dir={work}", f"--rollback-log={work / 'rollback.jsonl'}", "--rollback=dry-run"]
        control = httpx.Client(base_url=stack.info.control, timeout=10)
        control.delete("/faults")

        collect = scenario("start-up and collection (--co)", [*base, "--co"], args.repeat, shared, 0)
        healthy = scenario("healthy smoke, running stack, warm Prometheus", base, args.repeat, shared, 0,
                           setup=enough_evidence)
        headless = scenario("healthy, -m 'smoke and not browser and not rollout' (for its CPU)",
                            [*base, "-m", "smoke and not browser and not rollout"], args.repeat, shared, 0)
        flow_name, flow_seconds = healthy["longest_check"]
        print(f"  longest check of that run: {flow_name} {flow_seconds:.2f} s (the checks run at once share 2 cores)")
        alone = [timed([*base, "-k", flow_name.split("[")[0]], shared)[2].get(flow_name, 0.0) for _ in range(args.repeat)]
        print(f"  (not a target) the same check run alone: {statistics.median(alone):.2f} s; healthy / (start-up and "
              f"collection + that) = {healthy['median'] / (collect['median'] + statistics.median(alone)):.2f} x")
        rows.append({"scenario": f"{flow_name} alone", "median": statistics.median(alone), "runs": len(alone)})
        rows += [collect, healthy, headless]

        control.put("/faults/all/slow", json={"seconds": 0.2})
        slow = scenario("the same, every service answering 200 ms later", base, 1, shared, 0)
        control.delete("/faults")
        slow_n = scenario("the same, 200 ms later, -n 4", [*base, "-n", "4"], 1, shared, 0,
                          setup=lambda: control.put("/faults/all/slow", json={"seconds": 0.2}))
        control.delete("/faults")
        control.put("/faults/order/hang", json={})
        hanging = scenario("the same, order hanging (read timeout 2 s)", [*base, "-m", "smoke and not postdeploy"],
                           args.repeat, shared, 1)
        control.delete("/faults")
        healthy_no_pd = scenario("healthy, without post-deploy (for the hanging comparison)",
                                 [*base, "-m", "smoke and not postdeploy"], args.repeat, shared, 0)
        searching = scenario("the same smoke with post-deploy, search hanging", base, args.repeat, shared, 1,
                             setup=lambda: (control.delete("/faults"), enough_evidence(),
                                            control.put("/faults/search/hang", json={})))
        control.delete("/faults")
        healthy_pd = scenario("healthy, with post-deploy (for the search-hanging comparison)", base, args.repeat, shared, 0,
                              setup=enough_evidence)
        rows += [slow, slow_n, hanging, healthy_no_pd, searching, healthy_pd]

        delays = []
        for _ in range(args.repeat):
            control.delete("/kube/faults")
            control.put("/kube/faults/order/crashloop", json={})
            log = work / f"rollback-{len(delays)}.jsonl"
            timed(["-m", "smoke", "suites/test_rollout.py", "-k", "order", "--released=order", f"--rollback-log={log}"], shared)
            records = [json.loads(line) for line in log.read_text().splitlines()]
            undo = next(r for r in records if r["step"] == "kubernetes-undo" and r["outcome"] == "done")
            delays.append(undo["seconds_after_failure"])
        control.delete("/kube/faults")
        print(f"{'marked check failed -> rollback applied on the API server':62} median {statistics.median(delays) * 1000:6.1f} ms")

        to_rollback: dict[str, list[float]] = {}
        broken = [  # (name, how to break it, the released service, whose workload the rollback writes)
            ("crash-looping image (rollout check)", lambda: control.put("/kube/faults/order/crashloop", json={}), "order"),
            ("payment declining every card (order flow)", lambda: control.put("/faults/payment/decline_all", json={}), "payment"),
            ("8 % of search's API answers 500 (post-deploy)",
             lambda: control.put("/faults/search/errors", json={"ratio": 0.08, "paths": ["/api/"]}), "search"),
        ]
        for name, inject, service in broken:
            for _ in range(args.repeat):
                control.delete("/faults")
                control.delete("/kube/faults")
                enough_evidence()
                inject()  # the deploy: the release is broken from now on
                started = time.time()
                deployed = datetime.fromtimestamp(int(started), UTC).isoformat().replace("+00:00", "Z")
                timed([*SMOKE, f"--env-dir={work}", f"--released={service}", "--rollback=auto", f"--since={deployed}",
                       f"--rollback-log={work / 'to-rollback.jsonl'}"], shared)
                writes = [w for w in control.get("/kube/writes").json()
                          if w["time"] >= started and f"/{service}-service" in w["path"]]
                # a run that ended without one counts as infinitely late (the release stayed live)
                to_rollback.setdefault(name, []).append(writes[0]["time"] - started if writes else float("inf"))
            seconds = statistics.median(to_rollback[name])
            rows.append({"scenario": f"run start -> rollback request: {name}", "median": seconds, "runs": args.repeat})
            said = f"median {seconds:6.2f} s" if seconds != float("inf") else "no rollback request within the run"
            print(f"{'run start -> rollback request: ' + name:62} {said}")
        control.delete("/faults")
        control.delete("/kube/faults")

        allure = REPO / "node_modules" / ".bin" / "allure"
        if allure.exists():  # `make report` installs it
            reports = work / "reports-for-html"
            timed([*base, f"--reports-dir={reports}"], shared)
            builds = []
            for _ in range(args.repeat):
                started = time.perf_counter()
                subprocess.run([sys.executable, "-m", "polycheck", "report", f"--reports-dir={reports}"], cwd=REPO, check=True,
                               capture_output=True, timeout=600)
                builds.append(time.perf_counter() - started)
            rows.append({"scenario": "make report (Allure 3 single-file HTML of the healthy smoke run)",
                         "median": statistics.median(builds), "min": min(builds), "max": max(builds), "runs": len(builds)})
            print(f"{'make report: Allure 3 single-file HTML of that run':62} median {statistics.median(builds):6.2f} s")
        else:
            print("make report: Allure 3 not installed (make report installs it): not timed")

        print("\nTargets (ratios from this run):")
        rows.append(verdict("healthy / (start-up and collection + longest check)",
                            healthy["median"] / (collect["median"] + flow_seconds), 1.3))
        rows.append(verdict("start-up and collection (s)", collect["median"], 0.7, "s"))
        rows.append(verdict("CPU of the healthy smoke run, browser included (s)", healthy["cpu"], 2.5, "s"))
        rows.append(verdict("CPU of the healthy smoke run without the browser and rollout (s)", headless["cpu"], 2.5, "s"))
        rows.append(verdict("200 ms slower / healthy", slow["median"] / healthy["median"], 2.0))
        print(f"  {'(not a target) 200 ms slower with -n 4 / healthy':60} {slow_n['median'] / healthy['median']:6.2f} x"
              "  (xdist workers run their checks one at a time: nothing runs ahead)")
        rows.append(verdict("one hanging service - healthy (s), target read timeout + 5 s",
                            hanging["median"] - healthy_no_pd["median"], READ_TIMEOUT + 5, "s"))
        rows.append(verdict("search hanging, with post-deploy - healthy (s), target read timeout + 5 s",
                            searching["median"] - healthy_pd["median"], READ_TIMEOUT + 5, "s"))
        rows.append(verdict("failed check -> rollback request at the API (s)", statistics.median(delays), 1.0, "s"))
        window = float(env_text.split('window = "', 1)[1].split("s", 1)[0])
        for (name, _inject, _service), target in zip(broken, (2.0, 2.0, window + 5.0), strict=True):
            rows.append(verdict(f"run start -> rollback request, {name} (s)", statistics.median(to_rollback[name]), target, "s"))
    finally:
        customers.__exit__(None, None, None)
        if prometheus is not None:
            prometheus.stop()
        stack.stop()
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
