"""The value rules of an environment's settings, checked when the env file is loaded (issue #17).

A config mistake is a usage error: a URL without a scheme or host, a negative or unparsable window, a threshold
of `inf` or `1e308`, a timeout of 0, a synthetic password too short to keep out of reports — each is refused
before any check runs (exit 4), never turned into a failed check or a rollback. The rules walk the whole typed
config, so a setting added later is held to them by its type and name: every number finite, every count 0 or
more, every `*_seconds` setting positive and at most a day.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

from polycheck.core.durations import parse_duration

MAX_SECONDS = 86400.0  # a timeout, deadline or budget longer than a day is a typo (ms for s, an extra 0…)
MIN_BYTES, MAX_BYTES = 1024, 1024 ** 3  # every `*_bytes` setting (the caps of the bodies a check reads)
LONG_SECONDS = {"token_min_ttl_seconds": 365 * 86400.0, "token_max_ttl_seconds": 365 * 86400.0}  # token lifetimes
WINDOW_RANGE = (1.0, 7 * 86400.0)  # a Prometheus rate window: 1s to 7d
DOWN_FOR_RANGE = (1.0, 600.0)  # how long a target's up stays 0 before it counts as down: 1s to 10m
MAX_THRESHOLD = 1e9  # a post-deploy limit (messages, seconds): anything above is no limit at all
RATIO_KEY = re.compile(r"(rate|ratio|saturation)$")  # prometheus.thresholds whose value is a share: 0 to 1
MIN_SYNTHETIC_PASSWORD = 12
URL_EXAMPLE = "http://order-service.polyshop.svc.cluster.local:8080"
_PLACEHOLDER = re.compile(r"\{[a-z_]+\}")


def url_problem(url: str) -> str | None:
    """What is wrong with `url` as an address polycheck sends requests to; None when it is an http(s) URL with a host."""
    if any(c.isspace() for c in url):
        return f"{url!r} contains whitespace"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        return f"{url!r} is not a URL ({exc})"
    if parts.scheme not in ("http", "https"):
        return f"{url!r} has no http:// or https:// scheme"
    if not parts.hostname:
        return f"{url!r} has no host"
    if port == 0:
        return f"{url!r} has port 0"
    return None


def parse_canary_step(text: str | int) -> int:
    """A canary step's weight: a whole percentage from 1 to 100; ValueError saying so for anything else."""
    value = str(text).strip()
    if not re.fullmatch(r"[0-9]{1,3}", value) or not 1 <= int(value) <= 100:
        raise ValueError(f"a canary step is the canary's weight, a whole percentage from 1 to 100 (e.g. 20), got {str(text)!r}")
    return int(value)


def value_problems(config: Any) -> Iterator[tuple[str, str]]:
    """(where, what is wrong and what is valid) for each setting of an `EnvConfig` that breaks a value rule."""
    yield from _numbers(config, "")
    yield from _urls(config)
    prometheus = config.prometheus
    for key in ("window", "canary_window"):
        yield from _window(f"prometheus.{key}", getattr(prometheus, key))
    yield from _window("prometheus.down_for", prometheus.down_for, DOWN_FOR_RANGE,
                       "a time up must stay 0 is from 1s to 10m, more than a scrape interval (e.g. 30s)")
    yield from _down_for_within_the_data_wait(prometheus)
    if not 0 <= prometheus.canary_margin <= 1:
        yield "prometheus.canary_margin", f"is a share of requests from 0 to 1 (0.01 = 1 point), got {prometheus.canary_margin!r}"
    for key, limit in prometheus.thresholds.items():
        top = 1.0 if RATIO_KEY.search(key) else MAX_THRESHOLD
        if math.isfinite(limit) and not 0 <= limit <= top:
            what = "a ratio from 0 to 1 (0.05 = 5%)" if top == 1.0 else f"a limit from 0 to {top:g}"
            yield f"prometheus.thresholds.{key}", f"is {what}, got {limit!r}"
    thresholds = config.thresholds
    if thresholds.token_min_ttl_seconds > thresholds.token_max_ttl_seconds:
        yield "thresholds.token_min_ttl_seconds", (f"({thresholds.token_min_ttl_seconds}) is above thresholds.token_max_ttl_seconds "
                                                   f"({thresholds.token_max_ttl_seconds}): no token could pass")


def synthetic_password_problems(config: Any, environ: Any) -> Iterator[tuple[str, str]]:
    """A synthetic account password (written in the file, or the `${VAR}` it names when set) shorter than 12 characters."""
    synthetic = config.synthetic
    for key in ("password", "other_password"):
        secret = getattr(synthetic, key)
        if secret is None:
            continue
        name = secret.variable
        value = secret.raw if name is None else environ.get(name)
        if value and len(value) < MIN_SYNTHETIC_PASSWORD:
            source = f"${name} holds" if name else "is"
            yield f"synthetic.{key}", (
                f"{source} a password of {len(value)} characters; a synthetic account's password needs at least "
                f"{MIN_SYNTHETIC_PASSWORD}: the account signs in to production around the clock, and a password that short "
                f"is both guessable and too much like ordinary text (an ARIA snapshot, a trace) to be told apart and redacted "
                f"with certainty. Give the account a longer one (e.g. `openssl rand -base64 18`)")


# the times where 0 means "no wait", with their own upper bound (rollback.group_wait_seconds: 0 acts on the first
# failure at once; more than a minute would hold a broken release live longer than a canary's analysis interval)
MAY_BE_ZERO_SECONDS = {"group_wait_seconds": 60.0}


def _numbers(value: Any, where: str) -> Iterator[tuple[str, str]]:
    """Every number of the config tree finite, every whole number 0 or more, every `*_seconds` in (0, a day]."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            key = f"{where}.{f.name}" if where else f.name
            item = getattr(value, f.name)
            if f.name.endswith("_seconds") and isinstance(item, (int, float)) and not isinstance(item, bool):
                top = LONG_SECONDS.get(f.name, MAX_SECONDS)
                if f.name in MAY_BE_ZERO_SECONDS:
                    top = MAY_BE_ZERO_SECONDS[f.name]
                    if not (math.isfinite(item) and 0 <= item <= top):
                        yield key, f"is a time in seconds, from 0 to {top:g}, got {item!r}"
                elif not (math.isfinite(item) and 0 < item <= top):
                    yield key, f"is a time in seconds, more than 0 and at most {top:g} ({_days(top)}), got {item!r}"
                continue
            if f.name.endswith("_bytes") and isinstance(item, int) and not isinstance(item, bool):
                if not MIN_BYTES <= item <= MAX_BYTES:
                    yield key, (f"is a size in bytes, from {MIN_BYTES} (1 KiB) to {MAX_BYTES} (1 GiB), got {item!r}: "
                                "a smaller cap refuses every answer, a larger one no longer bounds the checker's memory")
                continue
            yield from _numbers(item, key)
    elif isinstance(value, dict):
        for name, item in value.items():
            yield from _numbers(item, f"{where}.{name}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _numbers(item, f"{where}[{i}]")
    elif isinstance(value, float) and not math.isfinite(value):
        yield where, f"must be a finite number, got {value!r}"
    elif isinstance(value, int) and not isinstance(value, bool) and value < 0:
        yield where, f"is a count or a limit: 0 or more, got {value!r}"


def _urls(config: Any) -> Iterator[tuple[str, str]]:
    fixed = [("gateway.url", config.gateway.url)] + [(f"services.{name}.url", svc.url) for name, svc in config.services.items()]
    optional = [
        ("prometheus.url", config.prometheus.url), ("prometheus.grafana_url", config.prometheus.grafana_url),
        ("prometheus.alertmanager_url", config.prometheus.alertmanager_url),
        ("probe.pushgateway_url", config.probe.pushgateway_url), ("gates.github_api_url", config.gates.github_api_url),
    ]
    templates = [(f"links.{f.name}", getattr(config.links, f.name)) for f in dataclasses.fields(config.links)]
    webhooks = [(f"escalation.webhooks[{i}]", hook.raw) for i, hook in enumerate(config.escalation.webhooks) if hook.variable is None]
    for where, url in fixed + optional + webhooks:
        problem = url and url_problem(url)
        if problem:
            yield where, f"{problem}: write a URL with a scheme and a host, e.g. {URL_EXAMPLE}"
    for where, template in templates:
        problem = template and url_problem(_PLACEHOLDER.sub("x", template))
        if problem:
            yield where, f"{problem} (placeholders aside): write an http(s) URL template, e.g. https://jaeger.example/trace/{{trace_id}}"


def _window(where: str, text: str, bounds: tuple[float, float] = WINDOW_RANGE,
            valid: str = "a rate window is from 1s to 7d (e.g. 5m)") -> Iterator[tuple[str, str]]:
    low, high = bounds
    try:
        seconds = parse_duration(text)
    except ValueError:
        yield where, f"{text!r} is not a Prometheus duration: write a positive one such as 30s, 5m or 1h30m"
        return
    if not low <= seconds <= high:
        yield where, f"{text!r} is out of range: {valid}"


def _down_for_within_the_data_wait(prometheus: Any) -> Iterator[tuple[str, str]]:
    """A service counts as down once `up` stayed 0 for `down_for`; the checks wait `data_timeout_seconds` at most
    for a verdict, so a longer `down_for` could never judge a service down (it would end INCONCLUSIVE)."""
    try:
        down_for = parse_duration(prometheus.down_for)
    except ValueError:
        return  # said by its own rule
    if down_for > prometheus.data_timeout_seconds:
        yield "prometheus.down_for", (
            f"({prometheus.down_for}) is longer than prometheus.data_timeout_seconds ({prometheus.data_timeout_seconds:g} s): "
            "a service whose metrics cannot be scraped would never be judged down within the data wait (its checks "
            "would end inconclusive); shorten down_for or lengthen data_timeout_seconds")


def _days(seconds: float) -> str:
    return f"{seconds / 86400:g} day{'s' if seconds != 86400 else ''}"
