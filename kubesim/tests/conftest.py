"""Fixtures of the simulator's tests: a Kubernetes simulator per module, and the official client on it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from kubernetes import client, config

from kubesim import KubeSimulator
from kubesim.testing import SimulatorThread


@pytest.fixture(scope="module")
def kube() -> Iterator[SimulatorThread]:
    """The simulator behind a real HTTP server on a loopback port, in a background thread."""
    with SimulatorThread(KubeSimulator()) as running:
        yield running


@pytest.fixture
def seeded(kube: SimulatorThread) -> Iterator[None]:
    """The cluster at its seed before and after the test."""
    kube.sim.reset()
    yield
    kube.sim.reset()


@pytest.fixture(scope="module")
def api_client(kube: SimulatorThread, tmp_path_factory: pytest.TempPathFactory) -> Iterator[client.ApiClient]:
    """The official client, configured from the simulator's kubeconfig."""
    path = kube.write_kubeconfig(tmp_path_factory.mktemp("kube") / "config")
    api = config.new_client_from_config(config_file=str(path))
    yield api
    api.close()


@pytest.fixture
def apps(api_client: client.ApiClient) -> client.AppsV1Api:
    return client.AppsV1Api(api_client)


@pytest.fixture
def core(api_client: client.ApiClient) -> client.CoreV1Api:
    return client.CoreV1Api(api_client)


@pytest.fixture
def custom(api_client: client.ApiClient) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(api_client)
