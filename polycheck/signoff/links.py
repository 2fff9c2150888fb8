"""Per failure, links to its evidence: Grafana around the time it failed, Jaeger by trace id, Loki by request id."""

from __future__ import annotations

import re
from urllib.parse import quote

from polycheck.core.config import LinksConfig

IDS = re.compile(r"trace-id ([0-9a-f]{32}), request-id ([0-9a-f]{16,32})")
WINDOW_MS = 5 * 60 * 1000


def evidence_ids(text: str) -> tuple[str | None, str | None]:
    """(trace id, request id) of the last request a failure message names, else Nones."""
    found = IDS.findall(text or "")
    return found[-1] if found else (None, None)


def _fill(template: str, values: dict[str, str | None]) -> str | None:
    """The template with its placeholders filled (URL-quoted); None when one it uses has no value."""
    url = template
    for name in re.findall(r"\{([a-z_]+)\}", template):
        value = values.get(name)
        if not value:
            return None
        url = url.replace("{" + name + "}", quote(value, safe=""))
    return url


def evidence_links(links: LinksConfig, text: str, *, service: str | None, env: str, failed_at_ms: int) -> list[tuple[str, str]]:
    """(name, url) of each configured link that this failure has the values for."""
    trace_id, request_id = evidence_ids(text)
    values = {"trace_id": trace_id, "request_id": request_id, "service": service, "env": env,
              "from_ms": str(failed_at_ms - WINDOW_MS), "to_ms": str(failed_at_ms + WINDOW_MS)}
    out = []
    for name, template, label in (("grafana", links.grafana, "Grafana"), ("jaeger", links.jaeger, "Jaeger trace"),
                                  ("loki", links.loki, "Loki logs")):
        url = _fill(template, values) if template else None
        if url:
            out.append((f"{label}" + (f" {trace_id[:8]}…" if name == "jaeger" and trace_id else "")
                        + (f" {request_id[:8]}…" if name == "loki" and request_id else ""), url))
    return out
