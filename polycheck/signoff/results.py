"""A run's Allure results made ready to sign: categories, environment, executor, statuses that follow the verdicts,
ids that survive a module rename, and the history of the runs before it (Allure 3's `history.jsonl`).

- Status: a check polycheck judged *failed* is `failed` (also when it raised something else than an
  assertion); *blocked* and *inconclusive* checks are `broken`, their message starting with "blocked by
  SERVICE:" or "inconclusive:"; a check that failed and then passed on a retry is marked flaky.
- Ids: Allure derives a test case from `testCaseId` and a history entry from it plus the parameters.
  allure-pytest makes both from the module path; here they come from `polycheck:<check function name>`,
  so moving a check to another module keeps its history and trend.
- History: `history.jsonl` of a run holds one data point per earlier run (newest last, at most
  HISTORY_LIMIT), in the format Allure 3 writes itself (`historyPath`); the report of a run reads it.
"""

from __future__ import annotations

import ast
import hashlib
import json
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any
from collections.abc import Callable, Iterator

from polycheck.signoff.environment import write_properties
from polycheck.signoff.executor import allure_executor

VERDICT_LABEL = "verdict"
HISTORY_FILE = "history.jsonl"
HISTORY_LIMIT = 20
REPORT_NAME = "PolyShop release sign-off"

# Allure categories (categories.json), matching polycheck's verdicts; the first that matches names the defect.
# Allure 3 tests each pattern with JavaScript's `new RegExp(pattern, "s").test(message)`: a search, not a full
# match, and inline flags such as `(?s)` are a syntax error there (the category then never matches): anchor with ^.
CATEGORIES: list[dict[str, Any]] = [
    {"name": "Flaky: passed on a retry", "matchedStatuses": ["passed", "failed", "broken"], "flaky": True},
    {"name": "Blocked by a dependency", "matchedStatuses": ["broken"], "messageRegex": r"^blocked by "},
    {"name": "Checker infrastructure / inconclusive", "matchedStatuses": ["broken"], "messageRegex": r"^inconclusive"},
    {"name": "Release defect", "matchedStatuses": ["failed"]},
    {"name": "Checker error (not judged)", "matchedStatuses": ["broken"]},
]
# The plugin's own labels, read here and removed before the report sees them.
NODEID_LABEL = "polycheck.nodeid"  # the check's pytest node id (audit records name it)
JUDGES_LABEL = "polycheck.judges"  # a rollback-marked check: the services it judges, comma-separated
RAN_LABEL = "polycheck.ran"  # a check that ran ahead: "START_MS-STOP_MS", when its body really ran


def md5(text: str) -> str:
    return hashlib.md5(text.encode("utf-8")).hexdigest()


def stable_id(result: dict[str, Any]) -> str:
    """`polycheck:<check function>` (module-independent); a rollback result keeps its own name."""
    full = str(result.get("fullName") or result.get("name") or "")
    if full.startswith("polycheck."):
        return full
    return "polycheck:" + (full.split("#", 1)[1] if "#" in full else full.rsplit(".", 1)[-1])


def _params(result: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in result.get("parameters") or [] if not p.get("excluded")]


def _labels(result: dict[str, Any], name: str) -> list[str]:
    return [str(label.get("value")) for label in result.get("labels") or [] if label.get("name") == name]


def result_files(results_dir: Path) -> Iterator[tuple[Path, dict[str, Any]]]:
    for path in sorted(results_dir.glob("*-result.json")):
        try:
            yield path, json.loads(path.read_text())
        except (OSError, ValueError):
            continue


def _tuple_message(trace: str) -> str | None:
    """The reason of a blocked / inconclusive check: pytest writes its (path, line, reason) as the trace."""
    try:
        value = ast.literal_eval(trace.strip())
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return None
    return str(value[2]) if isinstance(value, tuple) and len(value) == 3 else None


def _follow_verdict(result: dict[str, Any]) -> None:
    verdicts = _labels(result, VERDICT_LABEL)
    details = result.setdefault("statusDetails", {}) or {}
    result["statusDetails"] = details
    if "failed" in verdicts:
        result["status"] = "failed"
    elif verdicts and verdicts[-1] == "flaky":  # passed on a rerun: Allure's own flaky mark
        details["flaky"] = True
    elif verdicts and verdicts[-1] in ("blocked", "inconclusive"):
        result["status"] = "broken"
        reason = _tuple_message(str(details.get("trace") or ""))
        if reason:
            details["trace"] = (str(details.get("message") or "") + "\n\n" + str(details.get("trace") or "")).strip()
            details["message"] = reason


def _label(result: dict[str, Any], name: str) -> str | None:
    values = _labels(result, name)
    return values[-1] if values else None


def _ran_when(result: dict[str, Any]) -> None:
    """A check that ran ahead: its start and stop are when its body ran, not the instant of its turn."""
    ran = _label(result, RAN_LABEL)
    if not ran:
        return
    start, _, stop = ran.partition("-")
    if start.isdigit() and stop.isdigit() and int(stop) >= int(start):
        result["start"], result["stop"] = int(start), int(stop)


def _severity(result: dict[str, Any], rolls_back: Callable[[str], bool]) -> None:
    """blocker only for a rollback trigger of this run: a check marked rollback whose failure could roll back one of
    the services it judges (the run's purpose and release scope allow it); any other blocker becomes critical."""
    labels = result.get("labels") or []
    judges = [s for s in (_label(result, JUDGES_LABEL) or "").split(",") if s]
    trigger = bool(judges) and any(rolls_back(service) for service in judges)
    for label in labels:
        if label.get("name") == "severity" and label.get("value") == "blocker" and not trigger:
            label["value"] = "critical"


def _strip_own_labels(result: dict[str, Any]) -> None:
    result["labels"] = [label for label in result.get("labels") or [] if not str(label.get("name", "")).startswith("polycheck.")]


STEP_STATUS = {"done": "passed", "planned": "passed", "auto": "passed", "dry-run": "passed", "shadow": "passed", "failed": "failed"}


def attach_decisions(results_dir: Path, result: dict[str, Any], records: list[dict[str, Any]]) -> None:
    """The rollback decisions and escalations a check's failure caused, as a step of that check with the audit
    records attached (they are not test cases of their own)."""
    by_service: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in records:
        by_service[str(record.get("service") or "the run")].append(record)
    stop = int(result.get("stop") or 0)
    for service, own in by_service.items():
        source = f"{uuid.uuid4()}-attachment.json"
        (results_dir / source).write_text(json.dumps(own, indent=2))
        substeps = [{"name": f"{r.get('step')}: {r.get('outcome')}: {str(r.get('detail', ''))[:300]}",
                     "status": STEP_STATUS.get(str(r.get("outcome")), "skipped"), "start": stop, "stop": stop}
                    for r in own]
        status = "failed" if any(s["status"] == "failed" for s in substeps) else (
            "passed" if any(s["status"] == "passed" for s in substeps) else "skipped")
        kinds = sorted({str(r.get("step")) for r in own})
        title = "escalation" if kinds == ["escalation"] else "rollback decision"
        result.setdefault("steps", []).append({
            "name": f"{title} for {service}", "status": status, "start": stop, "stop": stop, "steps": substeps,
            "attachments": [{"name": f"audit records ({service})", "source": source, "type": "application/json"}]})


def finalise_results(results_dir: Path, *, environment: dict[str, str], executor: dict[str, Any],
                     report_name: str = REPORT_NAME, records: list[dict[str, Any]] | None = None,
                     rolls_back: Callable[[str], bool] = lambda service: True) -> int:
    """Write categories, environment and executor; make every result follow the verdicts and carry stable ids,
    its real start and stop, a severity that means something, and the decisions its failure caused.
    Returns the number of results."""
    results_dir.mkdir(parents=True, exist_ok=True)
    (results_dir / "categories.json").write_text(json.dumps(CATEGORIES, indent=2))
    (results_dir / "executor.json").write_text(json.dumps(allure_executor(executor, report_name), indent=2))
    write_properties(results_dir / "environment.properties", environment)
    loaded = list(result_files(results_dir))
    by_history: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for _path, result in loaded:
        key = stable_id(result)
        params = sorted(_params(result), key=lambda p: str(p.get("name")))
        result["testCaseId"] = md5(key)
        result["historyId"] = md5(key + "".join(f"|{p.get('name')}={p.get('value')}" for p in params))
        _follow_verdict(result)
        _ran_when(result)
        _severity(result, rolls_back)
        by_history[result["historyId"]].append(result)
    for attempts in by_history.values():
        attempts.sort(key=lambda r: r.get("stop") or 0)
        if len(attempts) > 1 and attempts[-1].get("status") == "passed" and any(
                r.get("status") in ("failed", "broken") for r in attempts[:-1]):
            attempts[-1].setdefault("statusDetails", {})["flaky"] = True
    by_check: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in records or []:
        by_check[str(record.get("check") or "")].append(record)
    for _path, result in sorted(loaded, key=lambda pr: pr[1].get("stop") or 0, reverse=True):
        own = by_check.pop(_label(result, NODEID_LABEL) or "\0", None)  # the last attempt of a check carries them
        if own:
            attach_decisions(results_dir, result, own)
    for path, result in loaded:
        _strip_own_labels(result)
        temporary = path.with_name(f".{path.name}.tmp")
        temporary.write_text(json.dumps(result))
        temporary.replace(path)
    return len(loaded)


# -- Allure 3 history -------------------------------------------------------------------------------
def _allure3_params(params: list[dict[str, Any]]) -> str:
    ordered = sorted(params, key=lambda p: (str(p.get("name") or "").lower(), str(p.get("name") or ""), str(p.get("value") or "")))
    return ",".join(f"{p.get('name')}:{p.get('value')}" for p in ordered)


def allure3_test_case_id(result: dict[str, Any]) -> str | None:
    """As Allure 3 derives a test case id from a result file (ALLURE_ID label, else testCaseId, else fullName)."""
    for label in result.get("labels") or []:
        if label.get("name") in ("ALLURE_ID", "AS_ID") and label.get("value") not in (None, "-1"):
            return md5(f"ALLURE_ID={label['value']}")
    if result.get("testCaseId"):
        return md5(str(result["testCaseId"]))
    if result.get("fullName"):
        return md5(str(result["fullName"]))
    return None


def history_point(results_dir: Path, *, name: str = REPORT_NAME, timestamp_ms: int) -> dict[str, Any] | None:
    """One run as an Allure 3 history data point (the last attempt of each check), or None without results."""
    items: dict[str, dict[str, Any]] = {}
    known: list[str] = []
    for _path, result in sorted(result_files(results_dir), key=lambda pr: pr[1].get("stop") or 0):
        case = allure3_test_case_id(result)
        if case is None:
            continue
        if case not in known:
            known.append(case)
        history_id = f"{case}.{md5(_allure3_params(_params(result)))}"
        start, stop = result.get("start"), result.get("stop")
        details = result.get("statusDetails") or {}
        item = {"id": md5(str(result.get("uuid") or uuid.uuid4())), "name": result.get("name") or "Unknown test",
                "fullName": result.get("fullName"), "environment": "default", "status": result.get("status") or "unknown",
                "message": details.get("message"), "trace": details.get("trace"), "start": start, "stop": stop,
                "duration": max(0, (stop or 0) - (start or 0)) if start is not None and stop is not None else 0,
                "labels": [{"name": label.get("name"), "value": label.get("value")} for label in result.get("labels") or []],
                "url": "", "historyId": history_id, "reportLinks": []}
        items[history_id] = {k: v for k, v in item.items() if v is not None}
    if not items:
        return None
    return {"uuid": str(uuid.uuid4()), "name": name, "timestamp": timestamp_ms, "knownTestCaseIds": known,
            "testResults": items, "metrics": {}, "url": ""}


def carry_history(previous_history: Path | None, previous_results: Path | None, target: Path, *, timestamp_ms: int,
                  limit: int = HISTORY_LIMIT) -> int:
    """`target` = the previous run's history plus the previous run itself (newest last, at most `limit`).
    Returns the number of data points written."""
    lines: list[str] = []
    if previous_history is not None and previous_history.is_file():
        lines = [line for line in previous_history.read_text().splitlines() if line.strip()]
    if previous_results is not None and previous_results.is_dir():
        point = history_point(previous_results, timestamp_ms=timestamp_ms)
        if point is not None:
            lines.append(json.dumps(point))
    lines = lines[-limit:]
    if lines:
        target.write_text("\n".join(lines) + "\n")
    return len(lines)
