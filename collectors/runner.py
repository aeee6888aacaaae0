"""The one place a probe is run, the same way for every kind (blackbox_exporter's prober handler is the model).

A kind's ``probe`` says what it found; :class:`ProbeRunner` owns everything around it: the deadline
(``asyncio.timeout`` at the probe's ``timeout``), turning failures into a down :class:`ProbeResult`
with a reason from one vocabulary, the duration, the redaction of the target's secrets from every
detail and log line, and the check that the samples match the kind's declared ``families``.

Reasons (the ``reason`` label: a short fixed word, never free text from a device, never a secret):

==================  ===================================================================  ==========================
reason              meaning                                                              said by
==================  ===================================================================  ==========================
``timeout``         no (complete) answer in time, whatever the protocol: the probe's     the runner at ``timeout``;
                    deadline, a protocol's own retry timer that ran out first (SNMP,     kinds timing their verdict
                    SIP), or an inner timer the kind let escape (TimeoutError)           just before it
``internal_error``  the probe raised what it did not mean to (a collector bug); the      the runner
                    exception type and its redacted traceback go to the log only
``loss``            some echoes answered, too few for the up rule                        icmp
anything else       what the target answered, named by the kind with                     each kind (its module
                    ``ProbeFailure(reason)`` or a down result: ``refused``,              docstring lists them)
                    ``unreachable``, ``status_mismatch``, ``snmp_auth_error``...
==================  ===================================================================  ==========================

There is no ``snmp_timeout`` any more: an SNMP device that does not answer reads ``timeout`` like
any other, so the overrun rule, the alerts and the dashboards know one word for "no answer".

A reason that is not a short lower-case word (a kind passing device text by mistake) becomes
``internal_error``. Samples of a family the kind does not declare, or with the wrong number of label
values, are dropped and counted in ``egov_collector_samples_rejected_total{collector,family,reason}``
and logged once per kind and family, instead of vanishing at rendering.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
import traceback
from collections import Counter
from dataclasses import dataclass
from typing import Any

from agent.domain.secrets import SecretValue, find_secrets, redact
from collectors.api import Collector, Family, ProbeFailure, ProbeResult, Sample

log = logging.getLogger(__name__)

TIMEOUT = "timeout"
INTERNAL_ERROR = "internal_error"
_REASON = re.compile(r"^[a-z][a-z0-9_]{0,47}$")
REJECTED_SAMPLES = Family(
    "collector_samples_rejected", "counter",
    "Samples a probe returned that its collector's families do not declare (undeclared) or with the wrong "
    "number of label values (label_count): dropped, not exported.", ("family", "reason"))
RUNNER_FAMILIES = (REJECTED_SAMPLES,)


def own_families(collector: type[Collector[Any, Any]] | Collector[Any, Any]) -> tuple[Family, ...]:
    """A collector's own counters plus the runner's, as the store and the exposition list them."""
    return (*collector.self_families, *RUNNER_FAMILIES)


@dataclass(frozen=True)
class Probed:
    """One probe's outcome as the scheduler records it."""

    result: ProbeResult
    seconds: float


class ProbeRunner:
    """Runs the probes of a scheduler's collectors; keeps the per-kind sample-check counters across reloads."""

    def __init__(self) -> None:
        self.rejected: Counter[tuple[str, str, str]] = Counter()  # (kind, family, why) -> samples dropped
        self._warned: set[tuple[str, str, str]] = set()
        self._declared: dict[type, dict[str, int]] = {}  # collector class -> family name -> label count

    async def run(self, collector: Collector[Any, Any], target_id: str, params: Any, timeout: float) -> Probed:
        started = time.perf_counter()
        result = await self._outcome(collector, target_id, params, timeout)
        seconds = time.perf_counter() - started
        if result.detail:
            result.detail = redact(result.detail, find_secrets(params))
        if not result.up and not _REASON.match(result.reason):
            self._warn_once((collector.kind, "", "reason"), "collector=%s target=%s: reason %r is not a short "
                            "lower-case word; reported as internal_error", collector.kind, target_id,
                            redact(result.reason, find_secrets(params))[:80])
            result.reason = INTERNAL_ERROR
        result.samples = self._checked(collector, result.samples)
        return Probed(result, seconds)

    async def _outcome(self, collector: Collector[Any, Any], target_id: str, params: Any,
                       timeout: float) -> ProbeResult:
        try:
            async with asyncio.timeout(timeout) as deadline:
                return await collector.probe(target_id, params, timeout)
        except TimeoutError as exc:
            detail = f"no answer within {timeout:g}s" if deadline.expired() else f"timed out: {exc}".rstrip(": ")
            return self._failed(collector, target_id, params, TIMEOUT, detail)
        except ProbeFailure as failure:
            return self._failed(collector, target_id, params, failure.reason, failure.detail)
        except Exception as exc:  # a collector bug must not stop the other targets
            _log_raised(collector.kind, target_id, exc, find_secrets(params))
            return self._failed(collector, target_id, params, INTERNAL_ERROR, type(exc).__name__)

    @staticmethod
    def _failed(collector: Collector[Any, Any], target_id: str, params: Any, reason: str,
                detail: str) -> ProbeResult:
        try:
            samples = collector.failure_samples(target_id, params)
        except Exception:  # the failure is already what the probe says; a broken hook must not hide it
            log.exception("collector=%s: failure_samples raised", collector.kind,
                          extra={"limit_key": (collector.kind, "failure_samples")})
            samples = []
        return ProbeResult(False, reason, samples, detail)

    def _checked(self, collector: Collector[Any, Any], samples: list[Sample]) -> list[Sample]:
        declared = self._declared.get(type(collector))
        if declared is None:
            declared = self._declared[type(collector)] = {f.name: len(f.labels) for f in collector.families}
        if all(declared.get(s.family) == len(s.labels) for s in samples):
            return samples
        kept = []
        for sample in samples:
            width = declared.get(sample.family)
            if width == len(sample.labels):
                kept.append(sample)
                continue
            why = "undeclared" if width is None else "label_count"
            self.rejected[(collector.kind, sample.family, why)] += 1
            problem = ("its collector declares no such family" if width is None
                       else f"{len(sample.labels)} label values where the family declares {width}")
            self._warn_once((collector.kind, sample.family, why), "collector=%s: dropped samples of %s: %s; counted "
                            "in egov_collector_samples_rejected_total", collector.kind, sample.family, problem)
        return kept

    def _warn_once(self, key: tuple[str, str, str], message: str, *args: Any) -> None:
        if key not in self._warned:
            self._warned.add(key)
            log.warning(message, *args, extra={"collector": key[0]})

    def self_samples(self, kind: str) -> list[Sample]:
        """The runner's counters of one kind, for its ``own_families`` (only those that moved)."""
        return [Sample(REJECTED_SAMPLES.name, float(n), (family, why))
                for (k, family, why), n in sorted(self.rejected.items()) if k == kind]

    def has_samples(self, kind: str) -> bool:
        return any(k == kind for k, _, _ in self.rejected)


def _log_raised(kind: str, target_id: str, exc: Exception, secrets: list[SecretValue]) -> None:
    """The traceback of a collector bug, its secrets redacted: set as the record's exception text (which the
    plain and JSON formatters print) instead of exc_info, which they would format from the raw exception."""
    if not log.isEnabledFor(logging.ERROR):
        return
    # Rate-limited per collector and exception type: one bug, not one traceback per target.
    record = log.makeRecord(log.name, logging.ERROR, __file__, 0, "collector=%s target=%s: probe raised",
                            (kind, target_id), None, extra={"collector": kind, "target": target_id,
                                                            "reason": INTERNAL_ERROR,
                                                            "limit_key": (kind, type(exc).__name__)})
    record.exc_text = redact("".join(traceback.format_exception(exc)).rstrip(), secrets)
    log.handle(record)


async def run_probe(collector: Collector[Any, Any], target_id: str, params: Any, timeout: float) -> ProbeResult:
    """One probe through a runner of its own: what a test or a one-off check of a collector calls."""
    return (await ProbeRunner().run(collector, target_id, params, timeout)).result
