"""Flagger's webhooks against `polycheck serve`: POST /flagger answers 200 on GO (Flagger advances) and 500 on
NO-GO (Flagger counts a failed check and, past its threshold, rolls the canary back); deploy/flagger-canary.yaml
points its webhooks there."""

from __future__ import annotations


import httpx
import yaml

from tests.support.serve import AUTH, TOKEN, server  # noqa: F401 - a fixture
from tests.support.stack_control import StackControl
from tests.support.suite_runner import REPO

HOOK = {"name": "payment-service", "namespace": "polyshop", "phase": "Progressing", "checksum": "85d557f47b",
        "metadata": {"canary-step": "20", "token": TOKEN}}


def test_flagger_webhook_passes_on_go_and_fails_otherwise(server: str, stack: StackControl) -> None:
    healthy = httpx.post(f"{server}/flagger", json=HOOK, timeout=120)
    assert healthy.status_code == 200, healthy.text
    assert healthy.json()["verdict"] == "GO" and healthy.json()["flagger"]["name"] == "payment-service"
    assert "--canary-step" in healthy.json()["args"] and "20" in healthy.json()["args"]
    stack.set_fault("order", "down")
    broken = httpx.post(f"{server}/flagger", json={**HOOK, "metadata": {"token": TOKEN}}, timeout=120)
    assert broken.status_code == 500 and broken.json()["verdict"] == "NO-GO", broken.text
    assert "--canary-step" not in broken.json()["args"]
    assert httpx.post(f"{server}/flagger", content=b"{not json", timeout=10,
                      headers={"Content-Type": "application/json", **AUTH}).status_code == 400
    assert httpx.post(f"{server}/flagger", json={**HOOK, "metadata": {"canary-step": "20"}}, timeout=10).status_code == 401
    assert httpx.post(f"{server}/flagger", json={**HOOK, "metadata": {"token": TOKEN[:-1] + "x"}}, timeout=10).status_code == 401
    assert httpx.post(f"{server}/other", json=HOOK, timeout=10).status_code == 404


def test_the_flagger_canary_calls_polycheck_serve_before_and_during_the_rollout() -> None:
    (canary,) = [d for d in yaml.safe_load_all((REPO / "deploy" / "flagger-canary.yaml").read_text()) if d]
    assert (canary["apiVersion"], canary["kind"]) == ("flagger.app/v1beta1", "Canary")
    hooks = {h["type"]: h for h in canary["spec"]["analysis"]["webhooks"]}
    assert {"pre-rollout", "rollout"} <= set(hooks)
    for hook in hooks.values():
        assert hook["url"] == "http://polycheck.polyshop.svc.cluster.local:8080/flagger"
        assert hook["metadata"]["token"], hook  # the serve token (filled in from the Secret when the Canary is applied)
        assert int(hook["timeout"].rstrip("s")) >= 60
