"""The contract between the scheduler and every collector.

A collector probes one kind of thing (a TCP port, a router over SNMP, a host's own resources).
It is handed one configured target at a time and returns a :class:`ProbeResult`; it never touches
Prometheus objects, so the exposition can be rendered from the agent's last results at any moment
without waiting for a probe. The layout mirrors blackbox_exporter's ``prober/``: one file, one
kind, one ``probe`` coroutine.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import ClassVar, Generic, Literal, TypeVar

from agent.domain.models import StrictModel

MetricType = Literal["gauge", "counter", "info"]


ANSWER_TIME = 1.0  # seconds: a live device on the province's network answers a probe well within this

# Set by the scheduler around a target's first probe (agent/engine/scheduler.py): called by a collector whose
# ``answers_early`` is true as soon as its target has answered, which tells readiness that this probe is worth
# waiting for until it ends, and that one which has not answered within ANSWER_TIME is not.
ANSWER_HOOK: ContextVar[Callable[[], None] | None] = ContextVar("egov_answer_hook", default=None)


def answer_hook() -> Callable[[], None] | None:
    """What to call once the probed target has answered (None outside a first probe): take it at the probe's start."""
    return ANSWER_HOOK.get()


@dataclass(frozen=True)
class KindDescriptor:
    """What one collector kind brings, read from its package's light ``__init__`` (``DESCRIPTOR``).

    Every reference is a string (``module`` or ``module:attribute``) imported on first use, so finding
    the kinds costs nothing and a kind's libraries load only when a configuration uses it. Adding a kind
    is adding one package under collectors/.

    What the references must name (the lab and the exporters know no kind by name):

    * ``simulator``: a class fitting :class:`collectors.simulation.SimulatorClass`: constructed as
      ``Class(pool, seed, peers)`` (the lab's :class:`~collectors.lab_addresses.AddressPool`, its seed, and
      the lab as :class:`~collectors.simulation.Peers`, to ask for another kind's simulator), with a static
      ``prepare_environment()``; its instances fit :class:`collectors.simulation.Simulator` (``start``,
      ``add(target_id, params, up) -> params``, the fault API ``set_state(target_id, state)`` and
      ``states()``, ``close``; ``close_first``). :class:`~collectors.simulation.SimulatorBase` gives the
      optional parts.
    * ``rules``: ``def rules(context: collectors.contrib.RuleContext) -> list[dict]``, Prometheus rule groups
      (``{"name": ..., "rules": [...]}``) for a configuration with a collector of the kind; a group named
      ``collectors.contrib.TARGETS_GROUP`` joins the alerts about targets, any other is a group of its own.
      Build alerts with ``collectors.contrib.alert``; an alert on ``target_down(kind)`` tells the KPI-level
      rules that the kind's targets alert one by one.
    * ``panels``: ``def panels(board: collectors.contrib.BoardContext) -> list[collectors.contrib.Panel]``,
      asked once for each dashboard (``board.board``: ``wan``, ``portals``, ``datacentre``,
      ``videoconference``), empty for a dashboard the kind has nothing on.

    ``order`` places a kind's rules and panels among the other kinds' (smaller first, then by kind name): the
    network's first (icmp 10, snmp 20), then the portals' (http 30), the video conference's (sip 40, mcu 50)
    and the data centre's (tcp 60, host 70, power 80); a kind that names none comes after them.
    """

    kind: str
    collector: str  # "module:Class" of the Collector
    models: str | None = None  # module with <Prefix>Settings and <Prefix>Params when the collector's is heavy
    simulator: str | None = None  # "module:Class" the lab starts for the kind's targets
    rules: str | None = None  # "module:function" giving the kind's Prometheus rule groups
    panels: str | None = None  # "module:function" giving the kind's Grafana panels
    order: int = 100
    # Probes send traffic to addresses in their Params: those fields must be typed ProbeHost (or a probed URL),
    # so EGOV_AGENT_PROBE_ALLOW sees them; a network kind whose Params declare none is refused (fail closed).
    network: bool = True


@dataclass(frozen=True)
class Family:
    """Metadata of one metric family a collector emits (name without the ``egov_`` prefix).

    ``labels`` are the family's own label names; the scheduler adds the target's identity and
    administrative hierarchy labels in front of them.
    """

    name: str
    type: MetricType
    help: str
    labels: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)  # one per sample, target or member: no __dict__ each
class Sample:
    family: str
    value: float
    labels: tuple[str, ...] = ()  # values, in the order of Family.labels


@dataclass(slots=True)  # one per sample, target or member: no __dict__ each
class ProbeResult:
    """What one probe of one target found.

    ``up`` is the target's health as the KPI engine sees it; ``reason`` names why it is down
    (``timeout``, ``refused``, ``snmp_no_such_object``...) and becomes a label, so it must be a short
    fixed word, never free text from the device and never a secret.
    """

    up: bool
    reason: str = ""
    samples: list[Sample] = field(default_factory=list)
    detail: str = ""  # free text for the log only


class ProbeFailure(Exception):
    """Raised inside a collector to end a probe with a labelled reason (and a detail for the log).

    The probe runner (collectors/runner.py) turns it into a down :class:`ProbeResult`; a kind never
    catches its own ProbeFailure to build one.
    """

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.detail = detail


class NoSettings(StrictModel):
    """The Settings of a kind with no options beyond interval, timeout and concurrency."""


ParamsT = TypeVar("ParamsT", bound=StrictModel)
SettingsT = TypeVar("SettingsT", bound=StrictModel)


class Collector(ABC, Generic[ParamsT, SettingsT]):
    """One kind of probe: ``class TcpCollector(Collector[TcpParams, NoSettings])`` sets ``kind``, ``Params``,
    ``Settings`` and ``families`` and implements ``probe``, typed with its own models.

    ``Params`` validates a target's ``params`` mapping in the configuration; ``Settings`` validates
    the collector-wide options beyond interval/timeout/concurrency. A collector whose ``probe``
    blocks (psutil, file reads) must push the work to a thread itself. Deadline, failures, duration,
    redaction and the check of the samples against ``families`` are the probe runner's
    (collectors/runner.py), the same for every kind.
    """

    kind: ClassVar[str]
    Params: type[ParamsT]
    # A kind with no options of its own keeps this default (a TypeVar admits no default value in mypy's eyes).
    Settings: type[SettingsT] = NoSettings  # type: ignore[assignment]
    families: ClassVar[tuple[Family, ...]] = ()
    # Counters of the collector as a whole, not of one target (SNMP replies dropped on a shared socket).
    self_families: ClassVar[tuple[Family, ...]] = ()
    # True when a probe calls :func:`answer_hook`'s hook at its target's first answer, which comes well before
    # the probe ends (ICMP: the first of its echoes' replies). Readiness then waits ANSWER_TIME for that first
    # answer, and ``answer_time`` only for a probe that got one: a dead link is not waited for past ANSWER_TIME.
    answers_early: ClassVar[bool] = False

    def __init__(self, settings: SettingsT) -> None:
        self.settings = settings

    @abstractmethod
    async def probe(self, target_id: str, params: ParamsT, timeout: float) -> ProbeResult:
        """Probe one target. Raise :class:`ProbeFailure` (or return a down result) for what the target said;
        the runner cancels it at ``timeout`` (an inner deadline a little earlier names a finer reason)."""

    def failure_samples(self, target_id: str, params: ParamsT) -> list[Sample]:
        """Samples a failed probe still reports (a status of 0, counters kept across the failure)."""
        return []

    def answer_time(self, params: ParamsT) -> float:
        """Seconds a probe of a reachable target takes at most: a first probe still running past this is taken
        to wait on its timeout, and the agent is ready without it (agent/scheduler.py)."""
        return ANSWER_TIME

    def self_samples(self) -> list[Sample]:
        """The current values of ``self_families``; labelled by collector, never by target."""
        return []

    async def close(self) -> None:
        """Release sockets, engines and caches when the agent stops or reloads."""
