"""Benchmark the smoke run the way a deploy gate sees it: wall time of `pytest -m smoke` end to end.

Usage: python benchmarks/bench_smoke.py [--repeat N] [--json FILE]
Runs each scenario N times (default 3) as a subprocess against the local stack and prints min/median/max.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from polycheck.localstack import LocalStack  # noqa: E402


def timed(args: list[str], env: dict[str, str]) -> tuple[float, int]:
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "pytest", *args, "-q", "-p", "no:cacheprovider"], cwd=REPO, env=env,
                          capture_output=True, text=True)
    return time.perf_counter() - started, proc.returncode


def scenario(name: str, args: list[str], repeat: int, env: dict[str, str], expect_rc: int, setup=None) -> dict:
    times = []
    for _ in range(repeat):
        if setup:
            setup()
        seconds, rc = timed(args, env)
        if rc != expect_rc:
            raise SystemExit(f"{name}: pytest exited {rc}, expected {expect_rc}")
        times.append(seconds)
    row = {"scenario": name, "min": min(times), "median": statistics.median(times), "max": max(times), "runs": repeat}
    print(f"{name:58} min {row['min']:6.2f} s  median {row['median']:6.2f} s  max {row['max']:6.2f} s")
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", help="also write the rows to this file")
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("POLYCHECK_", "PYTEST_"))}
    rows = []
    print(f"machine: {os.cpu_count()} cores; each scenario {args.repeat} runs\n")
    rows.append(scenario("full smoke (all suites), starts its own stack", ["-m", "smoke"], args.repeat, env, 0))
    rows.append(scenario("full smoke without the Prometheus checks", ["-m", "smoke and not postdeploy"], args.repeat, env, 0))
    rows.append(scenario("post-deploy validation alone (-m postdeploy)", ["-m", "postdeploy"], args.repeat, env, 0))
    rows.append(scenario("full smoke (all suites), -n auto, starts its own stack", ["-m", "smoke", "-n", "auto"], args.repeat, env, 0))
    rows.append(scenario("health smoke, starts its own stack", ["-m", "smoke", "suites/test_health.py"], args.repeat, env, 0))
    rows.append(scenario("health smoke, -n auto, starts its own stack", ["-m", "smoke", "suites/test_health.py", "-n", "auto"], args.repeat, env, 0))

    stack = LocalStack.start(cwd=REPO)
    try:
        stack_file = Path(tempfile.mkdtemp()) / "stack.json"
        stack_file.write_text(json.dumps(stack.info.to_json()))
        shared = {**env, "POLYCHECK_STACK_FILE": str(stack_file)}
        control = httpx.Client(base_url=stack.info.control, timeout=10)
        control.delete("/faults")
        rows.append(scenario("health smoke on a running stack", ["-m", "smoke", "suites/test_health.py"], args.repeat, shared, 0))
        control.put("/faults/order/down", json={})
        rows.append(scenario("health smoke, order killed (connection refused)", ["-m", "smoke", "suites/test_health.py"], args.repeat, shared, 1))
        control.delete("/faults")
        control.put("/faults/order/hang", json={})
        rows.append(scenario("health smoke, order hanging (read timeout 2 s)", ["-m", "smoke", "suites/test_health.py"], args.repeat, shared, 1))
        rows.append(scenario("health smoke, order hanging, -n auto", ["-m", "smoke", "suites/test_health.py", "-n", "auto"], args.repeat, shared, 1))
        control.delete("/faults")
        smoke = ["-m", "smoke and not postdeploy"]
        healthy = scenario("full smoke on a running stack (no Prometheus checks)", smoke, args.repeat, shared, 0)
        control.put("/faults/order/hang", json={})
        hanging = scenario("the same, order hanging (read timeout 2 s)", smoke, args.repeat, shared, 1)
        control.delete("/faults")
        rows += [healthy, hanging]
        extra = hanging["median"] - healthy["median"]
        print(f"{'  one hanging service costs':58} {extra:6.2f} s over healthy; target <= read timeout + 10 s = 12 s: "
              f"{'MET' if extra <= 12 else 'MISSED'}")
        rows.append(scenario("one browser check (cold browser)", ["suites/test_storefront.py", "-k", "signs_in"], args.repeat, shared, 0))
        delays = []
        for _ in range(args.repeat):
            control.delete("/kube/faults")
            control.put("/kube/faults/order/crashloop", json={})
            log = Path(tempfile.mkdtemp()) / "rollback.jsonl"
            timed(["-m", "smoke", "suites/test_rollout.py", "-k", "order", "--released=order", f"--rollback-log={log}"], shared)
            records = [json.loads(line) for line in log.read_text().splitlines()]
            undo = next(r for r in records if r["step"] == "kubernetes-undo" and r["outcome"] == "done")
            delays.append(undo["seconds_after_failure"])
        control.delete("/kube/faults")
        row = {"scenario": "marked check failed -> rollback applied on the API server", "min": min(delays),
               "median": statistics.median(delays), "max": max(delays), "runs": args.repeat}
        print(f"{row['scenario']:58} min {row['min']*1000:6.1f} ms median {row['median']*1000:6.1f} ms max {row['max']*1000:6.1f} ms")
        rows.append(row)
    finally:
        stack.stop()
    started = time.perf_counter()
    probe = LocalStack.start(cwd=REPO)
    print(f"{'local stack start (process to all services listening)':58} {time.perf_counter() - started:6.2f} s")
    probe.stop()
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
