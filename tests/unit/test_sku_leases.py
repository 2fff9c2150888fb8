"""Cross-run SKU leases: two runs never hold one SKU at once; a killed run holds nothing (file) or only until its
lease expires (Kubernetes); a pool that finds every SKU held elsewhere is inconclusive, never a stock failure."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from kubesim.testing import SimulatorThread
from polycheck.checks.orders import Leases, SkuPool
from polycheck.clients.kube import Kube
from polycheck.clients.leases import FileLeases, KubeLeases
from polycheck.core.config import KubernetesConfig
from polycheck.core.failures import CheckFailure


def test_file_leases_keep_two_runs_apart_and_a_killed_run_holds_nothing(tmp_path: Path) -> None:
    first, second = FileLeases("prod|http://gw", tmp_path), FileLeases("prod|http://gw", tmp_path)
    assert first.take("SKU-1") and not second.take("SKU-1") and second.take("SKU-2")
    first.give_back("SKU-1")
    assert second.take("SKU-1")
    staging = FileLeases("staging|http://gw", tmp_path)
    assert staging.take("SKU-2"), "another environment's SKUs are its own"
    staging.close()
    with subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys
        from pathlib import Path
        from polycheck.clients.leases import FileLeases
        leases = FileLeases("prod|http://gw", Path({str(tmp_path)!r}))
        assert leases.take("SKU-3")
        print("held", flush=True)
        sys.stdin.read()
    """)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[2]) as holder:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        assert not first.take("SKU-3"), "held by the other process"
        holder.send_signal(signal.SIGKILL)
        holder.wait(10)
    assert first.take("SKU-3"), "a SIGKILLed run's lease is gone with it"
    for leases in (first, second):
        leases.close()


def test_kubernetes_leases_keep_two_runs_apart_and_an_expired_one_is_taken_over(tmp_path: Path) -> None:
    with SimulatorThread() as sim:
        sim.write_kubeconfig(tmp_path / "kubeconfig")
        kube = Kube.connect(KubernetesConfig(kubeconfig=str(tmp_path / "kubeconfig"), namespace="polyshop"))
        first, second = KubeLeases(kube, "host-a/run-1"), KubeLeases(kube, "host-b/run-2")
        assert first.take("SKU-1") and not second.take("SKU-1")
        lease = kube.lease(first._name("SKU-1"))
        assert lease["spec"]["holderIdentity"] == "host-a/run-1" and lease["spec"]["leaseDurationSeconds"] == 300
        second.give_back("SKU-1")  # not its own: left alone
        assert not second.take("SKU-1")
        first.give_back("SKU-1")
        assert second.take("SKU-1")
        killed = KubeLeases(kube, "host-c/run-3", ttl=0)  # a run killed hard: its lease expires, then is taken over
        assert killed.take("SKU-2") and first.take("SKU-2")
        assert kube.lease(first._name("SKU-2"))["spec"]["holderIdentity"] == "host-a/run-1"


def test_a_pool_skips_skus_other_runs_hold_and_is_inconclusive_when_all_are_held(tmp_path: Path) -> None:
    other = FileLeases("prod|http://gw", tmp_path)
    assert other.take("SKU-A")
    mine = FileLeases("prod|http://gw", tmp_path)
    pool = SkuPool(["SKU-A", "SKU-B"], wait_seconds=0.3, cross=mine)
    check = Leases()
    with check.holding():
        assert pool.next() == "SKU-B"  # SKU-A is another run's
        with Leases().holding(), pytest.raises(CheckFailure) as raised:
            pool.next()  # SKU-B is this run's other check's, SKU-A another run's
    assert raised.value.inconclusive and "every synthetic SKU (2) is held by another run" in str(raised.value.msg)
    check.release()
    assert other.take("SKU-B"), "given back when the check let go"
    other.close()
    mine.close()
