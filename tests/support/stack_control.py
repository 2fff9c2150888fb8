"""Drive the local stack's control API from the self-tests: inject and clear faults."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

from polycheck.doubles.localstack import LocalStack


class StackControl:
    """Faults of a running local stack, set through its control API."""

    def __init__(self, stack: LocalStack) -> None:
        self.stack = stack
        self.stack_file = stack.workdir / "stack.json"
        self.stack_file.write_text(json.dumps(stack.info.to_json()))
        self._http = httpx.Client(base_url=stack.info.control, timeout=10)

    def set_fault(self, service: str, kind: str, **params: Any) -> dict[str, Any]:
        response = self._http.put(f"/faults/{service}/{kind}", json=params)
        assert response.status_code == 200, f"could not set fault {kind} on {service}: {response.text}"
        return response.json()

    def clear(self) -> None:
        """No HTTP fault, and the Kubernetes simulator back to its seed."""
        response = self._http.delete("/faults")
        assert response.status_code == 200, response.text
        assert response.json()["active"] == {}
        assert self._http.delete("/kube/faults").status_code == 200

    def kube_fault(self, service: str, kind: str, **params: Any) -> None:
        response = self._http.put(f"/kube/faults/{service}/{kind}", json=params)
        assert response.status_code == 200, f"could not inject {kind} on {service}: {response.text}"

    def active(self) -> dict[str, Any]:
        return self._http.get("/faults").json()["active"]

    def close(self) -> None:
        self._http.close()


def repo_root() -> Path:
    return Path(__file__).resolve().parents[2]
