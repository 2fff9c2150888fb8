"""PrometheusClient without a Prometheus: answers shaped like the HTTP API's, a dead port, a server that hangs."""

from __future__ import annotations

import json
import math
import socket
import time
from datetime import datetime, timedelta, UTC
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from polycheck.clients.prometheus import (
    NoDataError,
    PrometheusClient,
    PrometheusQueryError,
    PrometheusUnavailable,
    format_duration,
    parse_duration,
)

URL = "http://prometheus.test:9090"


def answering(status: int = 200, body: object = None, *, seen: list[httpx.Request] | None = None) -> PrometheusClient:
    """A client whose every request gets `body` (JSON, or raw text when a str) with `status`."""

    def handle(request: httpx.Request) -> httpx.Response:
        if seen is not None:
            seen.append(request)
        if isinstance(body, str):
            return httpx.Response(status, text=body, headers={"content-type": "text/html"})
        return httpx.Response(status, json=body)

    return PrometheusClient(URL, 2.0, transport=httpx.MockTransport(handle))


def vector(*items: tuple[dict[str, str], str]) -> dict:
    return {"status": "success", "data": {"resultType": "vector",
                                          "result": [{"metric": m, "value": [1700000000.5, v]} for m, v in items]}}


def test_instant_vector_becomes_samples_with_labels_and_floats() -> None:
    seen: list[httpx.Request] = []
    client = answering(body=vector(({"service": "order"}, "0.25"), ({"service": "search"}, "+Inf")), seen=seen)
    samples = client.query('rate(x{service="order"}[1m])')
    assert [(dict(s.labels), s.value, s.timestamp) for s in samples] == [
        ({"service": "order"}, 0.25, 1700000000.5), ({"service": "search"}, math.inf, 1700000000.5)]
    params = parse_qs(urlsplit(str(seen[0].url)).query)
    assert seen[0].url.path == "/api/v1/query"
    assert params["query"] == ['rate(x{service="order"}[1m])']
    assert params["timeout"] == ["2s"], "the query's timeout is sent to Prometheus too"
    assert "time" not in params


def test_query_at_a_moment_sends_its_epoch() -> None:
    seen: list[httpx.Request] = []
    answering(body=vector(({}, "1")), seen=seen).query("up", at=datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC))
    assert parse_qs(urlsplit(str(seen[0].url)).query)["time"] == ["1704164645.000"]


def test_scalar_result_is_one_unlabelled_sample() -> None:
    client = answering(body={"status": "success", "data": {"resultType": "scalar", "result": [1700000000, "NaN"]}})
    [sample] = client.query("0/0")
    assert sample.labels == {} and math.isnan(sample.value)


def test_empty_result_is_no_data_unless_allowed() -> None:
    client = answering(body=vector())
    with pytest.raises(NoDataError, match=r'no data for up\{job="x"\}') as caught:
        client.query('up{job="x"}')
    assert caught.value.query == 'up{job="x"}'
    assert client.query('up{job="x"}', allow_empty=True) == []


def test_range_vector_from_an_instant_query_says_how_to_fix_it() -> None:
    client = answering(body={"status": "success", "data": {"resultType": "matrix", "result": []}})
    with pytest.raises(PrometheusQueryError, match=r"range vector.*rate\(\.\.\.\)"):
        client.query("up[1m]")


def test_bad_promql_carries_prometheus_error_type_error_and_query() -> None:
    body = {"status": "error", "errorType": "bad_data", "error": "1:5: parse error: unclosed left parenthesis"}
    with pytest.raises(PrometheusQueryError) as caught:
        answering(400, body).query("sum(")
    err = caught.value
    assert (err.error_type, err.status, err.query) == ("bad_data", 400, "sum(")
    assert "bad_data: 1:5: parse error: unclosed left parenthesis" in str(err) and "query: sum(" in str(err)


def test_server_side_timeout_is_unavailable_not_a_bad_query() -> None:
    body = {"status": "error", "errorType": "timeout", "error": "query timed out in expression evaluation"}
    with pytest.raises(PrometheusUnavailable, match=r"could not answer \(HTTP 503, timeout: query timed out"):
        answering(503, body).query("up")


def test_an_answer_that_is_not_the_api_says_so() -> None:
    with pytest.raises(PrometheusUnavailable, match=r"answered HTTP 502 \(text/html\).*not a Prometheus API response"):
        answering(502, "<html>Bad Gateway</html>").query("up")


def test_query_range_returns_series_and_sends_start_end_step() -> None:
    seen: list[httpx.Request] = []
    body = {"status": "success", "data": {"resultType": "matrix", "result": [
        {"metric": {"service": "order"}, "values": [[100, "1"], [115, "2.5"]]}]}}
    [series] = answering(body=body, seen=seen).query_range("up", 100, 115, "15s")
    assert series.labels == {"service": "order"} and series.points == ((100.0, 1.0), (115.0, 2.5))
    assert series.values == [1.0, 2.5]
    params = parse_qs(urlsplit(str(seen[0].url)).query)
    assert (params["start"], params["end"], params["step"]) == (["100.000"], ["115.000"], ["15"])
    empty = {"status": "success", "data": {"resultType": "matrix", "result": []}}
    with pytest.raises(NoDataError, match="no data for up between"):
        answering(body=empty).query_range("up", 100, 115, 15)
    assert answering(body=empty).query_range("up", 100, 115, 15, allow_empty=True) == []


def test_connection_refused_is_unavailable_at_once_and_names_the_url() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens here once closed
    client = PrometheusClient(f"http://127.0.0.1:{port}", 2.0)
    started = time.monotonic()
    with pytest.raises(PrometheusUnavailable, match=rf"cannot reach Prometheus at http://127.0.0.1:{port}/api/v1/query: "
                                                    r"connection failed .* — query: up"):
        client.query("up")
    assert time.monotonic() - started < 1.0


def test_a_server_that_never_answers_is_unavailable_within_the_timeout() -> None:
    with socket.socket() as hang:  # accepts connections (kernel backlog) and never answers
        hang.bind(("127.0.0.1", 0))
        hang.listen(8)
        url = f"http://127.0.0.1:{hang.getsockname()[1]}"
        client = PrometheusClient(url, 0.3)
        started = time.monotonic()
        with pytest.raises(PrometheusUnavailable, match=rf"at {url}/api/v1/query did not answer within 0.3 s "
                                                        r"\(connected, no answer\) — query: up"):
            client.query("up")
        elapsed = time.monotonic() - started
    assert 0.25 < elapsed < 1.5


def test_graph_link_to_prometheus_encodes_the_query() -> None:
    client = PrometheusClient("http://prom.internal:9090/", 1.0)
    query = 'sum(rate(http_requests_total{service="order",status=~"5.."}[1m])) / 2'
    link = client.graph_link(query, "1h")
    parts = urlsplit(link)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == "http://prom.internal:9090/graph"
    assert parse_qs(parts.query) == {"g0.expr": [query], "g0.tab": ["0"], "g0.range_input": ["1h"]}
    assert " " not in link and '"' not in link and "{" not in link
    assert parse_qs(urlsplit(client.graph_link("up", 5400)).query)["g0.range_input"] == ["1h30m"]
    end = datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)
    assert parse_qs(urlsplit(client.graph_link("up", timedelta(minutes=5), end=end)).query)["g0.end_input"] == [
        "2024-05-06 07:08:09"]


def test_graph_link_to_grafana_explore_when_configured() -> None:
    client = PrometheusClient("http://prom:9090", 1.0, "https://grafana.example/", grafana_datasource="prom-uid")
    link = client.graph_link('up{service="order"}', "30m")
    parts = urlsplit(link)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == "https://grafana.example/explore"
    params = parse_qs(parts.query)
    assert params["schemaVersion"] == ["1"]
    [pane] = json.loads(params["panes"][0]).values()
    assert pane["datasource"] == "prom-uid"
    assert pane["queries"][0]["expr"] == 'up{service="order"}'
    assert pane["range"] == {"from": "now-30m", "to": "now"}


def test_password_in_the_url_stays_out_of_messages_and_links() -> None:
    client = PrometheusClient("http://user:s3cret@127.0.0.1:1", 0.5)
    assert "s3cret" not in client.graph_link("up") and "s3cret" not in repr(client)
    with pytest.raises(PrometheusUnavailable) as caught:
        client.query("up")
    assert "s3cret" not in str(caught.value)


def test_durations() -> None:
    assert [format_duration(v) for v in (1, 0.5, 90, 3600, 86400 + 61, timedelta(minutes=5), "5m")] == [
        "1s", "500ms", "1m30s", "1h", "1d1m1s", "5m", "5m"]
    assert parse_duration("1h30m") == 5400 and parse_duration("250ms") == 0.25
    for bad in ("", "5 minutes", "m5", "1.5m"):
        with pytest.raises(ValueError, match="not a Prometheus duration"):
            parse_duration(bad)
    with pytest.raises(ValueError):
        format_duration(0)


def test_constructor_refuses_what_cannot_work() -> None:
    with pytest.raises(ValueError, match="no Prometheus URL configured"):
        PrometheusClient("", 1.0)
    with pytest.raises(ValueError, match="timeout_seconds must be positive"):
        PrometheusClient(URL, 0)
