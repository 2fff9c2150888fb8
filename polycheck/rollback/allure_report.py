"""A rollback decision as a result of its own in the Allure report, with its audit records attached."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

from allure_commons.logger import AllureFileLogger
from allure_commons.model2 import Attachment, Label, StatusDetails, TestResult
from allure_commons.utils import now


def report_rollback(allure_dir: Path, service: str, check: str, records: list[dict[str, Any]]) -> None:
    """Write 'rollback of SERVICE' into allure-results: failed (release rolled back or planned), broken (a rollback action failed), skipped (off)."""
    outcomes = {r["outcome"] for r in records if r["step"] != "escalation"}  # escalation outcomes show in the trace
    status = "broken" if "failed" in outcomes else ("skipped" if outcomes <= {"off", "skipped"} else "failed")
    logger = AllureFileLogger(str(allure_dir))
    attachment = f"{uuid.uuid4()}-attachment.json"
    logger.report_attached_data(json.dumps(records, indent=2), attachment)
    summary = "\n".join(f"{r['step']}: {r['outcome']}: {r['detail']}" for r in records)
    stamp = now()
    logger.report_result(TestResult(
        uuid=str(uuid.uuid4()),
        historyId=f"polycheck-rollback-{service}",
        name=f"rollback of {service}",
        fullName=f"polycheck.rollback::{service}",
        status=status,
        statusDetails=StatusDetails(message=f"{check} failed for good; {records[0]['mode'] if records else ''} rollback", trace=summary),
        start=stamp,
        stop=stamp,
        labels=[Label("suite", "polycheck rollbacks"), Label("feature", "rollback"), Label("tag", service)],
        attachments=[Attachment(name="rollback audit records", source=attachment, type="application/json")],
    ))
