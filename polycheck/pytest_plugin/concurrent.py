"""Checks that share no state run at once: a check marked `concurrent` is run ahead, in the background, as soon as
the run starts; when its turn comes, its report is what it did then (its own exceptions, exchanges, culprit and
duration). Meanwhile the run goes on with the checks that need the main thread (the browser checks).

A check runs ahead only when everything it asks for can be given outside pytest's set-up: its parameters, the
session's fixtures (resolved first, in the main thread) and the function-scoped fixtures built from its own
`CheckScope` (`check_scope`, or fixtures that ask for it): those are called as they are defined, with the scope, so
what a check needs is declared once, by its fixtures. A check marked concurrent that asks for anything else is
named in a loud line at collection and runs in its turn. A check whose scope could not be built (a login that
failed) fails its set-up in its turn with that very error, as it would have run in its turn. A finished check that failed is
reported before the ones still waiting their turn, so its rollback fires at once. Under xdist (each worker
already runs checks at once, and only some of them) and with `--concurrency 1`, nothing runs ahead.
"""

from __future__ import annotations

import inspect
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any
from collections.abc import Callable, Generator

import pytest

from polycheck.core.steps import STEP_KEYS
from polycheck.scope.checkscope import CheckScope
from polycheck.pytest_plugin import pytest_private as private
from polycheck.pytest_plugin.state import board_of, is_xdist_worker, run_of

MARK = "concurrent"

SCOPE = "check_scope"  # the one function-scoped fixture the run-ahead builds itself: the check's `CheckScope`


# Function-scoped fixtures other plugins make autouse, which do nothing for a check that runs ahead (they are
# still set up, in the check's turn, as for every check): name -> why.
HARMLESS = {
    "_pw_trace_api_requests": "pytest-playwright's: records API request traces only for checks using `playwright`",
    "request": "pytest's own request object",
}


class NotAhead(Exception):
    """This check cannot run ahead (it runs in its turn); the reason shows in the terminal summary."""


@dataclass
class Ahead:
    """One check running ahead: its scope, and when it is done, what its body raised and how long it took."""

    scope: CheckScope
    done: threading.Event = field(default_factory=threading.Event)
    started: float = 0.0
    stopped: float = 0.0
    set_up_error: BaseException | None = None
    error: BaseException | None = None

    @property
    def failed(self) -> bool:
        return self.done.is_set() and (self.error is not None or self.set_up_error is not None)


AHEAD = pytest.StashKey[Ahead]()


def scope_run_ahead(item: Any) -> CheckScope | None:
    """The scope of a check that ran ahead, for its fixtures in its turn (None: it runs in its turn)."""
    stash = getattr(item, "stash", None)
    ahead = stash.get(AHEAD, None) if stash is not None else None
    return ahead.scope if ahead is not None else None


def _fixturedef(item: pytest.Item, name: str) -> Any:
    fixturedef = private.fixturedef(item, name)
    if fixturedef is None:
        raise NotAhead(f"{name} is not a fixture")
    return fixturedef


def _from_scope(item: pytest.Item, name: str, params: dict[str, Any], seen: tuple[str, ...] = ()) -> bool:
    """Whether the function-scoped fixture `name` is built from the check's scope: it asks, directly or through
    other such fixtures, for `check_scope`, and otherwise only for parameters and session fixtures."""
    if name == SCOPE:
        return True
    if name in seen:
        raise NotAhead(f"{name} overrides a fixture of its own name")
    from_scope = False
    for need in private.fixture_argnames(_fixturedef(item, name)):
        if need in params or private.fixture_scope(_fixturedef(item, need)) != "function":
            continue
        if not _from_scope(item, need, params, (*seen, name)):
            return False
        from_scope = True
    return from_scope


def why_not_ahead(target: pytest.Item) -> str | None:
    """Why a check marked concurrent cannot run ahead, seen at collection (None: it can). It can when each fixture
    it asks for is a parameter, a session fixture, or a function-scoped fixture built from its `CheckScope`."""
    if not isinstance(target, pytest.Function):
        return "not a test function"
    params = dict(getattr(getattr(target, "callspec", None), "params", {}))
    try:
        for name in target.fixturenames:
            if name in params or name == "_polycheck_run_ahead" or _harmless(target, name):
                continue
            if private.fixture_scope(_fixturedef(target, name)) == "function" and not _from_scope(target, name, params):
                return f"{name} is a function-scoped fixture not built from its CheckScope"
    except NotAhead as why:
        return str(why)
    return None


def _harmless(target: pytest.Item, name: str) -> bool:
    return name in HARMLESS and "playwright" not in getattr(target, "fixturenames", ())


def session_value(request: pytest.FixtureRequest, target: pytest.Item, name: str) -> Any:
    """The value of the session fixture `name` as `target` would get it (resolved now, in the main thread)."""
    fixturedef = _fixturedef(target, name)
    if private.fixture_scope(fixturedef) != "session":
        raise NotAhead(f"{name} is a {private.fixture_scope(fixturedef)}-scoped fixture")
    if not private.cached(fixturedef)[0]:
        try:
            request.getfixturevalue(name)
        except BaseException as exc:  # noqa: BLE001 - the check meets the same error in its own set-up
            raise NotAhead(f"{name} failed: {exc}") from None
    resolved, value, error = private.cached(fixturedef)
    if not resolved:
        raise NotAhead(f"{name} is not the fixture this check would get")
    if error is not None:
        raise NotAhead(f"{name} failed")
    return value


def plan_ahead(request: pytest.FixtureRequest, target: pytest.Item) -> dict[str, Any]:
    """What `target` is given besides what its scope builds: parameters and session values, by name (NotAhead if it
    cannot run ahead)."""
    if not isinstance(target, pytest.Function) or target.get_closest_marker(MARK) is None:
        raise NotAhead("not marked concurrent")
    why = why_not_ahead(target)
    if why is not None:
        raise NotAhead(why)
    params = dict(getattr(getattr(target, "callspec", None), "params", {}))
    values: dict[str, Any] = {}
    for name in target.fixturenames:
        if name in params:
            values[name] = params[name]
        elif name == "_polycheck_run_ahead" or _harmless(target, name):
            continue
        elif private.fixture_scope(_fixturedef(target, name)) != "function":
            values[name] = session_value(request, target, name)
    return values


def _build(scope: CheckScope, target: pytest.Function, name: str, values: dict[str, Any], built: dict[str, Any]) -> Any:
    """The value of `name` for a check running ahead: its fixture's own function, called with what it asks for
    (the scope for `check_scope`). A generator fixture gives its first value; its teardown runs in the check's
    turn, when pytest sets the fixture up again from the same scope (which built each thing once)."""
    if name == SCOPE:
        return scope
    if name in values:
        return values[name]
    if name not in built:
        fixturedef = _fixturedef(target, name)
        args = {need: _build(scope, target, need, values, built) for need in private.fixture_argnames(fixturedef)}
        value = private.fixture_function(fixturedef)(**args)
        if inspect.isgenerator(value):
            generator, value = value, next(value)
            generator.close()
        built[name] = value
    return built[name]


def _run(target: pytest.Function, ahead: Ahead, values: dict[str, Any],
         failed: Callable[[pytest.Function, BaseException, float], None]) -> None:
    ahead.started = time.time()
    try:
        with ahead.scope.leases.holding():
            try:
                built: dict[str, Any] = {}
                args = {name: _build(ahead.scope, target, name, values, built) for name in private.argnames(target)}
            except BaseException as exc:  # noqa: BLE001 - its set-up in its turn raises it again (the scope kept it)
                ahead.set_up_error = exc
                return
            try:
                target.obj(**args)
            except BaseException as exc:  # noqa: BLE001 - re-raised in its turn, as if it had run then
                ahead.error = exc
            ahead.stopped = time.time()
            if ahead.error is not None:
                try:
                    failed(target, ahead.error, ahead.stopped)  # its rollback and escalation, now
                except Exception:  # noqa: BLE001 - acted on in its turn instead
                    pass
    finally:
        ahead.stopped = ahead.stopped or time.time()
        try:
            ahead.scope.clean_up()  # its orders cancelled, its SKUs let go (a problem is its teardown's error)
        except BaseException:  # noqa: BLE001 - kept by the scope: the check's teardown raises it
            pass
        ahead.done.set()


def start_order(item: pytest.Item) -> tuple[bool, int]:
    """Where a check joins the queue of checks running ahead (a stable sort keeps collection order within a rank):
    first the ones that create orders, the run's longest; then by the first runbook step the check belongs to, in
    the order a release goes through them (polycheck.core.steps: the rollout's Kubernetes reads before the smoke
    tests' requests), so a crash-looping release is judged, and rolled back, on its first evidence instead of after
    a hundred health and contract checks queued before it."""
    marks = {mark.name for mark in item.iter_markers()}
    step = next((index for index, key in enumerate(STEP_KEYS) if key in marks), len(STEP_KEYS))
    return "orders" not in getattr(item, "fixturenames", ()), step


class RunAhead:
    """Registered per run (not on xdist workers): starts the concurrent checks at the first check's set-up."""

    def __init__(self, config: pytest.Config, workers: int) -> None:
        self.config, self.workers = config, workers
        self.pool: ThreadPoolExecutor | None = None
        self.futures: list[Future[None]] = []
        self.started = False
        self.not_ahead: dict[str, str] = {}  # node id -> why it runs in its turn

    def start(self, request: pytest.FixtureRequest) -> None:
        """Run ahead every check that can, each as soon as its own session fixtures are resolved: the ones that
        create orders first (they wait on asynchronous moves and on free SKUs, so they are the longest), then the
        others in the runbook's order of steps (`start_order`)."""
        self.started = True

        run = run_of(self.config)
        if run.cut_off:
            return  # nothing is reachable: every check is inconclusive in its turn, without sending a request
        config = run.config
        current = getattr(request, "_pyfuncitem", None)  # the check whose set-up this is: it runs in its turn
        targets = [t for t in request.session.items if t is not current and t.get_closest_marker(MARK) is not None]
        targets.sort(key=start_order)
        for target in targets:
            if not isinstance(target, pytest.Function):
                continue  # (plan_ahead refuses anything else)
            try:
                values = plan_ahead(request, target)
            except NotAhead as why:
                self.not_ahead[target.nodeid] = str(why)
                continue
            traces = values.get("fanned_out") or {}
            ahead = Ahead(CheckScope(config, board_of(self.config), values.get("connections"), traces.get(target.nodeid)))
            target.stash[AHEAD] = ahead
            if self.pool is None:
                self.pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="polycheck-check")
            self.futures.append(self.pool.submit(_run, target, ahead, values, self._failed))

    @pytest.hookimpl(trylast=True)
    def pytest_collection_finish(self, session: pytest.Session) -> None:
        """A selected check marked concurrent that cannot run ahead is named now, loudly (it runs in its turn)."""
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        for item in session.items:
            why = why_not_ahead(item) if item.get_closest_marker(MARK) is not None else None
            if why is not None:
                self.not_ahead[item.nodeid] = why
                if reporter is not None:
                    reporter.write_line(f"polycheck: {item.nodeid} is marked concurrent but runs in its turn: {why}",
                                        red=True, bold=True)

    def _failed(self, target: pytest.Function, error: BaseException, at: float) -> None:
        plugin = self.config.pluginmanager.get_plugin("polycheck-rollback")
        if plugin is not None:
            plugin.act_early(target, error, at)

    # -- hooks -------------------------------------------------------------------------------------------------
    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        ahead = item.stash.get(AHEAD, None)
        if ahead is not None:
            ahead.done.wait()  # its set-up then reads what its scope built (or the error building it raised)

    @pytest.hookimpl(tryfirst=True)
    def pytest_pyfunc_call(self, pyfuncitem: pytest.Function) -> bool | None:
        ahead = pyfuncitem.stash.get(AHEAD, None)
        if ahead is None:
            return None
        __tracebackhide__ = True
        ahead.done.wait()
        error = ahead.set_up_error or ahead.error
        if error is not None:
            raise error
        return True

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[Any]) -> Generator[None, Any, None]:
        outcome = yield
        ahead = item.stash.get(AHEAD, None)
        if ahead is None or call.when != "call" or not ahead.done.is_set():
            return
        report: pytest.TestReport = outcome.get_result()
        report.start, report.stop = ahead.started, ahead.stopped  # when it really ran, not when its turn came
        report.duration = ahead.stopped - ahead.started

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_teardown(self, item: pytest.Item) -> Generator[None, Any, None]:
        yield
        if AHEAD in item.stash:
            del item.stash[AHEAD]  # reported: a rerun (pytest-rerunfailures) runs afresh, in its turn

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtestloop(self, session: pytest.Session) -> bool | None:
        """pytest's own loop, in another order: what ran ahead is reported as soon as it is done (a failure first,
        so its rollback fires at once), the main thread's own checks run while the others are still running, and
        only then does the loop wait for the ones still running ahead."""
        if session.testsfailed and not session.config.option.continue_on_collection_errors:
            raise session.Interrupted(f"{session.testsfailed} error{'s' if session.testsfailed != 1 else ''} during collection")
        if session.config.option.collectonly:
            return True
        waiting = list(session.items)
        item = self._next(waiting)  # one that runs in its turn, if any: its set-up starts the others
        while item is not None:
            nextitem = self._next(waiting)
            item.config.hook.pytest_runtest_protocol(item=item, nextitem=nextitem)
            if session.shouldfail:
                raise session.Failed(session.shouldfail)
            if session.shouldstop:
                raise session.Interrupted(session.shouldstop)
            item = nextitem
        return True

    def _next(self, waiting: list[pytest.Item]) -> pytest.Item | None:
        """A finished check that failed; else any finished one; else one that runs in its turn; else the first
        still running ahead (the loop then waits for it)."""
        def done(item: pytest.Item, failed: bool) -> bool:
            ahead = item.stash.get(AHEAD, None)
            return ahead is not None and ahead.done.is_set() and (ahead.failed or not failed)

        def in_turn(item: pytest.Item) -> bool:
            return item.get_closest_marker(MARK) is None or (self.started and AHEAD not in item.stash)

        for pick in (lambda i: done(i, True), lambda i: done(i, False), in_turn):
            for index, item in enumerate(waiting):
                if pick(item):
                    return waiting.pop(index)
        return waiting.pop(0) if waiting else None

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        ahead = len(self.futures)
        if not ahead and not self.not_ahead:
            return
        line = f"polycheck: {ahead} checks ran ahead, {self.workers} at a time"
        if self.not_ahead:
            reasons = sorted(set(self.not_ahead.values()))
            line += f"; {len(self.not_ahead)} marked concurrent ran in their turn ({'; '.join(reasons[:3])})"
        terminalreporter.write_line(line)

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self) -> None:
        """Checks still running ahead finish (and clean up their orders) before the run ends (first: the rollback
        engine's group wait, the verdict and the sign-off read what they found)."""
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)  # (those not started yet: a stopped run, -x)


PLUGIN = "polycheck-run-ahead"


@pytest.fixture(scope="session", autouse=True)
def _polycheck_run_ahead(request: pytest.FixtureRequest) -> None:
    """Starts the checks that run ahead at the very start of the first check's set-up (before its own fixtures,
    e.g. the browser); nothing when nothing runs ahead."""
    plugin = request.config.pluginmanager.get_plugin(PLUGIN)
    if isinstance(plugin, RunAhead) and not plugin.started:
        plugin.start(request)


def register(config: pytest.Config, workers: int) -> None:
    """Not on xdist (its controller runs no check, its workers run theirs in their turn), nor for --co."""
    xdist = getattr(config.option, "dist", "no") != "no" or is_xdist_worker(config)
    if workers > 1 and not xdist and not config.option.collectonly:
        config.pluginmanager.register(RunAhead(config, workers), PLUGIN)
