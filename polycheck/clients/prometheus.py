"""Read metrics from a real Prometheus over its HTTP API, with a timeout on every call and errors that say what to do.

`PrometheusClient.query` (instant) and `.query_range` return plain samples and series. An empty answer is
never a pass: it raises `NoDataError` unless the caller says absence is fine (`allow_empty=True`). A
Prometheus that cannot be reached or cannot answer raises `PrometheusUnavailable`; a query Prometheus
rejects raises `PrometheusQueryError` with Prometheus's own errorType and error.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, UTC
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import httpx

from polycheck.core.durations import parse_duration
from polycheck.core.failures import CannotMeasure
from polycheck.clients.http import shared_tls
from polycheck.clients.lending import ONE_CONNECTION, ClientLender
from polycheck.core.redact import redact_text

if TYPE_CHECKING:
    from polycheck.core.config import PrometheusConfig

Moment = datetime | float | int
Duration = str | float | int | timedelta

# errorTypes that mean "Prometheus could not answer now", not "the query is wrong".
UNAVAILABLE_ERROR_TYPES = frozenset({"timeout", "canceled", "unavailable", "internal"})
PREVIEW = 300


class PrometheusError(Exception):
    """Base of the errors a Prometheus read raises; `query` is the PromQL (may be empty)."""

    def __init__(self, message: str, query: str = "") -> None:
        super().__init__(message)
        self.query = query


class PrometheusUnavailable(CannotMeasure, PrometheusError):
    """Prometheus could not be reached or could not answer (refused, timed out, not an API answer, overloaded)."""

    def __init__(self, message: str, query: str = "", url: str = "") -> None:
        super().__init__(message, query)
        self.url = url


class PrometheusQueryError(PrometheusError):
    """Prometheus rejected the query (bad PromQL, wrong result type); `error_type` and `error` are its own."""

    def __init__(self, message: str, query: str = "", error_type: str = "", error: str = "", status: int | None = None) -> None:
        super().__init__(message, query)
        self.error_type = error_type
        self.error = error
        self.status = status


class NoDataError(PrometheusError):
    """The query returned no series: the metric is not scraped, the selector matches nothing, or the window is too short."""


@dataclass(frozen=True)
class Sample:
    """One element of an instant vector (or the value of a scalar result, with no labels)."""

    labels: Mapping[str, str]
    value: float
    timestamp: float

    def __str__(self) -> str:
        return f"{format_labels(self.labels)} {format_value(self.value)} @{self.timestamp:.3f}"


@dataclass(frozen=True)
class Series:
    """One series of a range query: its labels and its (timestamp, value) points, oldest first."""

    labels: Mapping[str, str]
    points: tuple[tuple[float, float], ...] = field(default_factory=tuple)

    @property
    def values(self) -> list[float]:
        return [value for _, value in self.points]

    def __str__(self) -> str:
        return f"{format_labels(self.labels)} ({len(self.points)} points)"


def format_labels(labels: Mapping[str, str]) -> str:
    """`{service="order", status="500"}` (the metric name, if any, in front), or `{}`."""
    name = labels.get("__name__", "")
    rest = ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items()) if k != "__name__")
    return f"{name}{{{rest}}}"


def format_value(value: float) -> str:
    """A value as Prometheus writes it: `NaN`, `+Inf`, `-Inf`, else whole numbers as such (`1200`), others to 3 significant digits (`0.104`)."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if abs(value) >= 1000:
        return f"{value:.0f}"
    if value == int(value):
        return str(int(value))
    return f"{value:.3g}"


def format_duration(value: Duration) -> str:
    """A Prometheus duration string for seconds, a timedelta or an already written duration (validated).

    Whole units are kept readable (`3600` -> `1h`, `90` -> `1m30s`); fractions go down to milliseconds.
    """
    if isinstance(value, str):
        parse_duration(value)
        return value.strip()
    seconds = value.total_seconds() if isinstance(value, timedelta) else float(value)
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"a duration must be positive, got {value!r}")
    millis = int(round(seconds * 1000))
    if millis == 0:
        raise ValueError(f"a duration must be at least 1ms, got {value!r}")
    out = []
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000), ("ms", 1)):
        count, millis = divmod(millis, size)
        if count:
            out.append(f"{count}{unit}")
    return "".join(out)


def _seconds(value: Duration) -> float:
    return parse_duration(value) if isinstance(value, str) else (
        value.total_seconds() if isinstance(value, timedelta) else float(value)
    )


def _epoch(moment: Moment) -> float:
    return moment.timestamp() if isinstance(moment, datetime) else float(moment)


def _iso(moment: Moment) -> str:
    return datetime.fromtimestamp(_epoch(moment), UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _safe_url(url: str) -> str:
    """The URL without a password in it, for messages."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError):
        return url
    return str(parsed.copy_with(password="***")) if parsed.password else url


class PrometheusClient:
    """Instant and range queries against one Prometheus; every call bounded by `timeout_seconds`.

    `timeout_seconds` bounds connecting and each read (httpx timeouts) and is also sent to Prometheus as
    the query's `timeout`, so a heavy query is cancelled server-side too. `grafana_url` (optional) makes
    `graph_link` point at Grafana Explore, with `grafana_datasource` (name or uid) selected.
    """

    def __init__(
        self,
        base_url: str,
        timeout_seconds: float,
        grafana_url: str = "",
        *,
        grafana_datasource: str = "prometheus",
        headers: Mapping[str, str] | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if not base_url:
            raise ValueError("no Prometheus URL configured (prometheus.url in the environment's TOML)")
        if not timeout_seconds or timeout_seconds <= 0:
            raise ValueError(f"timeout_seconds must be positive, got {timeout_seconds!r}")
        self.base_url = base_url.rstrip("/")
        self.timeout_seconds = float(timeout_seconds)
        self.grafana_url = grafana_url.rstrip("/")
        self.grafana_datasource = grafana_datasource
        sent_headers = {"User-Agent": "polycheck", "Accept": "application/json", **(headers or {})}
        self._lender = ClientLender(lambda: httpx.Client(  # queries run from several checks at once: one each
            base_url=self.base_url, timeout=httpx.Timeout(self.timeout_seconds), headers=sent_headers,
            transport=transport, verify=shared_tls(), limits=httpx.Limits(**ONE_CONNECTION)))

    @classmethod
    def from_config(cls, config: PrometheusConfig, **kwargs: Any) -> PrometheusClient:
        """From the environment's `[prometheus]` table (url, grafana_url, query_timeout_seconds)."""
        return cls(config.url, config.query_timeout_seconds, config.grafana_url, **kwargs)

    def close(self) -> None:
        self._lender.close()

    def __enter__(self) -> PrometheusClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"PrometheusClient({_safe_url(self.base_url)!r}, timeout_seconds={self.timeout_seconds:g})"

    # -- queries ---------------------------------------------------------------------------------

    def query(self, promql: str, at: Moment | None = None, *, allow_empty: bool = False) -> list[Sample]:
        """Evaluate `promql` at `at` (default: now) and return its samples.

        A scalar result comes back as one unlabelled Sample. A range-vector or string result is a
        PrometheusQueryError (an instant check needs one value per series). No series is a NoDataError
        unless `allow_empty`, which returns [] instead.
        """
        params: dict[str, Any] = {"query": promql, "timeout": format_duration(self.timeout_seconds)}
        if at is not None:
            params["time"] = f"{_epoch(at):.3f}"
        data = self._call("/api/v1/query", params, promql)
        kind, result = data.get("resultType"), data.get("result")
        if kind == "vector":
            samples = [self._sample(item, promql) for item in result or []]
        elif kind == "scalar":
            point = result or [0, "NaN"]  # a scalar always has its [time, value]; NaN if it had none
            samples = [Sample({}, _to_float(point[1], promql), float(point[0]))]
        elif kind == "matrix":
            raise PrometheusQueryError(
                f"{promql} returns a range vector; an instant check needs one value per series: wrap the "
                f"selector in a function such as rate(...) or max_over_time(...), or use query_range",
                promql, error_type="result_type", error="matrix",
            )
        else:
            raise PrometheusQueryError(
                f"{promql} returns a {kind or 'missing'} result; a check needs a number (instant vector or scalar)",
                promql, error_type="result_type", error=str(kind),
            )
        if not samples and not allow_empty:
            when = f"at {_iso(at)}" if at is not None else "now"
            raise NoDataError(
                f"no data for {promql} ({when}, Prometheus {_safe_url(self.base_url)}): the query returned no "
                f"series: the metric is not scraped, the label selector matches nothing, or the window holds "
                f"fewer than two samples",
                promql,
            )
        return samples

    def query_range(
        self, promql: str, start: Moment, end: Moment, step: Duration, *, allow_empty: bool = False
    ) -> list[Series]:
        """Evaluate `promql` every `step` from `start` to `end`; NoDataError when no series (unless `allow_empty`)."""
        step_seconds = _seconds(step)
        if step_seconds <= 0:
            raise ValueError(f"step must be positive, got {step!r}")
        if _epoch(end) < _epoch(start):
            raise ValueError("end is before start")
        params = {
            "query": promql,
            "start": f"{_epoch(start):.3f}",
            "end": f"{_epoch(end):.3f}",
            "step": f"{step_seconds:g}",
            "timeout": format_duration(self.timeout_seconds),
        }
        data = self._call("/api/v1/query_range", params, promql)
        if data.get("resultType") != "matrix":
            raise PrometheusQueryError(
                f"{promql}: a range query returned a {data.get('resultType')} result, expected a matrix",
                promql, error_type="result_type", error=str(data.get("resultType")),
            )
        series = [
            Series(
                labels=dict(item.get("metric") or {}),
                points=tuple((float(t), _to_float(v, promql)) for t, v in item.get("values") or []),
            )
            for item in data.get("result") or []
        ]
        if not series and not allow_empty:
            raise NoDataError(
                f"no data for {promql} between {_iso(start)} and {_iso(end)} "
                f"(Prometheus {_safe_url(self.base_url)}): the query returned no series",
                promql,
            )
        return series

    # -- links -----------------------------------------------------------------------------------

    def graph_link(self, promql: str, window: Duration = "1h", *, end: Moment | None = None) -> str:
        """A link that shows `promql` over the last `window` (ending at `end`, default now).

        Grafana Explore when `grafana_url` is set; else Prometheus's own /graph page
        (`g0.expr`, `g0.range_input`, `g0.tab=0` = graph tab, and `g0.end_input` when `end` is given).
        """
        range_input = format_duration(window)
        if self.grafana_url:
            if end is None:
                time_range = {"from": f"now-{range_input}", "to": "now"}
            else:
                end_ms = int(_epoch(end) * 1000)
                time_range = {"from": str(end_ms - int(_seconds(window) * 1000)), "to": str(end_ms)}
            pane = {
                "datasource": self.grafana_datasource,
                "queries": [{"refId": "A", "expr": promql, "datasource": {"type": "prometheus", "uid": self.grafana_datasource}}],
                "range": time_range,
            }
            panes = json.dumps({"polycheck": pane}, separators=(",", ":"))
            return f"{self.grafana_url}/explore?" + urlencode({"schemaVersion": 1, "panes": panes, "orgId": 1})
        params = {"g0.expr": promql, "g0.tab": "0", "g0.range_input": range_input}
        if end is not None:
            params["g0.end_input"] = datetime.fromtimestamp(_epoch(end), UTC).strftime("%Y-%m-%d %H:%M:%S")
        return f"{_safe_url(self.base_url)}/graph?" + urlencode(params)

    # -- transport -------------------------------------------------------------------------------

    def _call(self, path: str, params: dict[str, Any], promql: str) -> dict[str, Any]:
        url = f"{_safe_url(self.base_url)}{path}"
        try:
            with self._lender.lease() as client:
                response = client.get(path, params=params)
        except httpx.TimeoutException as exc:
            raise PrometheusUnavailable(
                f"Prometheus at {url} did not answer within {self.timeout_seconds:g} s "
                f"({_timeout_kind(exc)}) — query: {promql}",
                promql, url,
            ) from None
        except httpx.HTTPError as exc:
            reason = f"connection failed ({exc})" if isinstance(exc, httpx.ConnectError) else f"{type(exc).__name__}: {exc}"
            raise PrometheusUnavailable(f"cannot reach Prometheus at {url}: {reason} — query: {promql}", promql, url) from None
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict) or body.get("status") not in ("success", "error"):
            preview = redact_text(response.text)
            preview = preview if len(preview) <= PREVIEW else preview[:PREVIEW] + f"... ({len(preview)} chars)"
            raise PrometheusUnavailable(
                f"{url} answered HTTP {response.status_code} "
                f"({response.headers.get('content-type', 'no content-type')}), which is not a Prometheus API "
                f"response; is prometheus.url right? Body: {preview!r} — query: {promql}",
                promql, url,
            )
        if body["status"] == "error":
            error_type, error = str(body.get("errorType", "")), str(body.get("error", ""))
            if error_type in UNAVAILABLE_ERROR_TYPES or response.status_code >= 500:
                raise PrometheusUnavailable(
                    f"Prometheus at {url} could not answer (HTTP {response.status_code}, {error_type}: {error}) "
                    f"— query: {promql}",
                    promql, url,
                )
            raise PrometheusQueryError(
                f"Prometheus rejected the query (HTTP {response.status_code}, {error_type}: {error}) — query: {promql}",
                promql, error_type=error_type, error=error, status=response.status_code,
            )
        data = body.get("data")
        if not isinstance(data, dict):
            raise PrometheusUnavailable(f"{url} answered success without data — query: {promql}", promql, url)
        return data

    @staticmethod
    def _sample(item: dict[str, Any], promql: str) -> Sample:
        if "value" not in item:
            raise PrometheusQueryError(
                f"{promql} returned a native-histogram sample; a check needs a float (use histogram_quantile)",
                promql, error_type="result_type", error="histogram",
            )
        timestamp, value = item["value"]
        return Sample(labels=dict(item.get("metric") or {}), value=_to_float(value, promql), timestamp=float(timestamp))


def _to_float(text: Any, promql: str) -> float:
    """Prometheus sends values as strings: "0.5", "NaN", "+Inf", "-Inf"."""
    try:
        return float(text)
    except (TypeError, ValueError):
        raise PrometheusQueryError(f"{promql} returned a non-numeric value {text!r}", promql,
                                   error_type="result_type", error="string") from None


def _timeout_kind(exc: httpx.TimeoutException) -> str:
    if isinstance(exc, httpx.ConnectTimeout):
        return "no connection"
    if isinstance(exc, httpx.ReadTimeout):
        return "connected, no answer"
    return type(exc).__name__
