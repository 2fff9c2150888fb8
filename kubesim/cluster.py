"""What every simulated controller shares: the store, the scheduler, the clock, the event recorder, settings."""

from __future__ import annotations

from dataclasses import dataclass, field

from .events import Recorder
from .meta import Names
from .runtime import Clock, Scheduler
from .store import Store


@dataclass(frozen=True)
class Settings:
    """Timing of the simulated cluster.

    pod_ready_delay: real seconds from a pod's creation until a healthy pod is Ready.
    time_scale: real seconds per simulated second for long Kubernetes durations (progressDeadlineSeconds,
      canary pause durations, back-off of crash-looping containers and failing image pulls). At 0.005 the
      default 600 s progress deadline passes in 3 s and a 30 s canary pause in 0.15 s.
    min_backoff: real seconds a back-off lasts at least (keeps restart counts readable at small time scales).
    nodes: node names pods are scheduled on; node_cpu / node_memory_gi: each node's allocatable resources.
    watch_history: changes kept for watches resuming from a resourceVersion (older ones get 410 Expired).
    """

    pod_ready_delay: float = 0.3
    time_scale: float = 0.005
    min_backoff: float = 0.25
    terminate_delay: float = 0.15
    nodes: tuple[str, ...] = ("polyshop-node-1", "polyshop-node-2", "polyshop-node-3")
    node_cpu: float = 4.0
    node_memory_gi: float = 16.0
    watch_history: int = 20000

    def scaled(self, simulated_seconds: float) -> float:
        return simulated_seconds * self.time_scale


@dataclass
class Cluster:
    settings: Settings
    names: Names
    clock: Clock = field(default_factory=Clock)
    scheduler: Scheduler = field(init=False)
    store: Store = field(init=False)
    recorder: Recorder = field(init=False)

    def __post_init__(self) -> None:
        self.scheduler = Scheduler(self.clock)
        self.store = Store(self.names, history=self.settings.watch_history)
        self.recorder = Recorder(self.store, self.clock)
