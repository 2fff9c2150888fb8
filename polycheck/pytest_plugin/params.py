"""The parameters of the checks and their marks, from the run's config: one table for every suite.

- `service`: every service of the env; `routed_service`: those with a gateway probe;
- `canary_service`: every service released as an Argo Rollout (marked rollback and Section 9 escalation);
- `metric_check`: (service, post-deploy check) for every service exporting the families the check reads;
  the runbook's rollback triggers are also marked smoke and rollback.
"""

from __future__ import annotations

import pytest

from polycheck.clients import promql
from polycheck.pytest_plugin.state import run_of

CANARY_ESCALATION = "runbook Section 9: deployment failure during canary"
ROLLBACK_TRIGGERS = {check.key for check in promql.ROLLBACK_TRIGGERS}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    run = run_of(metafunc.config)
    config = run.config
    if "service" in metafunc.fixturenames:
        metafunc.parametrize("service", config.service_names, ids=config.service_names)
    if "routed_service" in metafunc.fixturenames:
        routed = [name for name, svc in config.services.items() if svc.gateway_probe is not None]
        metafunc.parametrize("routed_service", routed, ids=routed)
    if "canary_service" in metafunc.fixturenames:
        rollouts = [name for name, svc in config.services.items() if svc.workload == "rollout"]
        metafunc.parametrize("canary_service", [
            pytest.param(name, id=name, marks=[pytest.mark.rollback(name), pytest.mark.escalate(CANARY_ESCALATION)])
            for name in rollouts
        ])
    if "metric_check" in metafunc.fixturenames:
        params = []
        for service in config.service_names:
            families = set(run.contract.families_for(config, service))
            for check in promql.POST_DEPLOY_CHECKS:
                if set(check.families) <= families:
                    marks = [pytest.mark.smoke, pytest.mark.rollback(service)] if check.key in ROLLBACK_TRIGGERS else []
                    params.append(pytest.param((service, check.key), id=f"{check.key}[{service}]", marks=marks))
        metafunc.parametrize("metric_check", params)
