"""make test-beside: the project's own tests, N times in a row on a fresh clone of the committed HEAD, while a
second fresh clone runs `make test` over and over beside it on the same machine (the load that made self-tests
flake). Exits non-zero when any of the N runs fails (or collected nothing); the runs beside are reported too.

    python benchmarks/beside.py [--runs 3] [--keep]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SUMMARY = re.compile(r"=+ (.*\d+ (?:passed|failed|error)[^=]*) =+\s*$", re.MULTILINE)


@dataclass(frozen=True)
class Outcome:
    clone: str
    index: int
    returncode: int
    seconds: float
    summary: str
    log: Path

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and " passed" in self.summary and "failed" not in self.summary

    def line(self) -> str:
        verdict = "ok" if self.ok else "FAILED"
        return f"{self.clone} run {self.index}: {verdict}, exit {self.returncode} in {self.seconds:.0f} s: {self.summary}"


def fresh_clone(into: Path) -> Path:
    subprocess.run(["git", "clone", "--quiet", "--no-hardlinks", str(REPO), str(into)], check=True)
    return into


def make_test(clone: Path, name: str, index: int, logs: Path) -> Outcome:
    log = logs / f"{name}-{index}.log"
    started = time.monotonic()
    # a fresh make: not the variables of the make that started this (`make test-beside ARGS=...` would pass ARGS on)
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES")}
    with log.open("w") as out:
        proc = subprocess.run(["make", "test", "ARGS="], cwd=clone, stdout=out, stderr=subprocess.STDOUT, env=env)
    text = log.read_text(errors="replace")
    found = SUMMARY.findall(text)
    return Outcome(name, index, proc.returncode, time.monotonic() - started, found[-1] if found else "no test summary", log)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3, help="make test runs in a row on the first clone (default 3)")
    parser.add_argument("--keep", action="store_true", help="keep the clones and logs (their folder is printed)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="polycheck-beside-"))
    logs = work / "logs"
    logs.mkdir()
    first, second = fresh_clone(work / "first"), fresh_clone(work / "second")
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=first, capture_output=True, text=True).stdout.strip()
    print(f"make test-beside: commit {head}, {args.runs} runs of make test in {first}, make test again and again "
          f"in {second} beside them; logs in {logs}", flush=True)

    done = threading.Event()
    beside: list[Outcome] = []

    def keep_busy() -> None:
        index = 0
        while not done.is_set():
            index += 1
            outcome = make_test(second, "beside", index, logs)
            beside.append(outcome)
            print(f"  {outcome.line()}", flush=True)

    busy = threading.Thread(target=keep_busy, daemon=True)
    busy.start()
    runs = []
    for index in range(1, args.runs + 1):
        outcome = make_test(first, "first", index, logs)
        runs.append(outcome)
        print(f"  {outcome.line()}", flush=True)
    done.set()
    busy.join()  # the run beside ends in its own time: it is never killed half-way (its stacks would be left)
    failed = [o for o in runs if not o.ok]
    print(f"make test-beside: {len(runs) - len(failed)} of {len(runs)} runs ok with make test beside them "
          f"({sum(o.ok for o in beside)} of {len(beside)} beside ok)")
    for outcome in failed + [o for o in beside if not o.ok]:
        print(f"  see {outcome.log}")
    if not args.keep and not failed and all(o.ok for o in beside):
        shutil.rmtree(work, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
