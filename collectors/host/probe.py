"""Resources of the data-centre server the agent runs on, read with psutil.

Only the local host: remote THDL servers run their own agent (or node_exporter). The host is up
when every process and systemd unit the configuration names is running and every mount point it
names is mounted, so "the QLVB application server is down" shows up as a failing target with
reason ``process_down``, ``unit_down``, ``mount_missing`` (or ``systemd_unavailable`` where
systemd cannot be asked).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess

import psutil

from collectors.api import Collector, Family, NoSettings, ProbeResult, Sample
from collectors.host.models import HostParams

_PSEUDO_FILESYSTEMS = {"tmpfs", "devtmpfs", "overlay", "squashfs", "proc", "sysfs", "cgroup", "cgroup2"}


def _unit_states(units: list[str], timeout: float) -> dict[str, str] | None:
    """ActiveState of each unit, or None where systemd cannot be asked (no systemctl, not PID 1)."""
    if not units or shutil.which("systemctl") is None:
        return None
    try:
        out = subprocess.run(
            ["systemctl", "is-active", "--", *units],
            capture_output=True, text=True, timeout=timeout, check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    states = out.stdout.split()
    if len(states) != len(units):
        return None
    return dict(zip(units, states, strict=True))


def _process_counts(names: list[str]) -> dict[str, int]:
    counts = dict.fromkeys(names, 0)
    if not names:
        return counts
    for proc in psutil.process_iter(["name", "cmdline"]):
        info = proc.info
        candidates = {info.get("name") or ""}
        cmdline = info.get("cmdline") or []
        if cmdline:
            candidates.add(os.path.basename(cmdline[0]))
        for name in names:
            if name in candidates:
                counts[name] += 1
    return counts


class HostCollector(Collector[HostParams, NoSettings]):
    kind = "host"
    Params = HostParams
    families = (
        Family("host_cpu_seconds", "counter", "CPU time spent in each mode, all CPUs.", ("mode",)),
        Family("host_cpus", "gauge", "Logical CPUs."),
        Family("host_load1", "gauge", "1-minute load average."),
        Family("host_load5", "gauge", "5-minute load average."),
        Family("host_load15", "gauge", "15-minute load average."),
        Family("host_memory_total_bytes", "gauge", "Physical memory."),
        Family("host_memory_available_bytes", "gauge", "Memory available without swapping."),
        Family("host_swap_total_bytes", "gauge", "Swap space."),
        Family("host_swap_used_bytes", "gauge", "Swap space in use."),
        Family("host_filesystem_size_bytes", "gauge", "Filesystem size.", ("mountpoint", "fstype")),
        Family("host_filesystem_free_bytes", "gauge", "Filesystem space free.", ("mountpoint", "fstype")),
        Family("host_filesystem_used_ratio", "gauge", "Share of the filesystem in use.", ("mountpoint", "fstype")),
        Family("host_network_receive_bytes", "counter", "Bytes received.", ("interface",)),
        Family("host_network_transmit_bytes", "counter", "Bytes sent.", ("interface",)),
        Family("host_network_receive_errors", "counter", "Receive errors.", ("interface",)),
        Family("host_network_transmit_errors", "counter", "Transmit errors.", ("interface",)),
        Family("host_network_up", "gauge", "1 if the interface is up.", ("interface",)),
        Family("host_process_running", "gauge", "Processes running under the configured name.", ("process",)),
        Family("host_systemd_unit_active", "gauge", "1 if the systemd unit is active.", ("unit_name",)),
    )

    async def probe(self, target_id: str, params: HostParams, timeout: float) -> ProbeResult:
        return await asyncio.to_thread(self._collect, params, timeout)

    def _collect(self, params: HostParams, timeout: float) -> ProbeResult:
        samples: list[Sample] = []
        add = samples.append
        for mode, seconds in psutil.cpu_times()._asdict().items():
            add(Sample("host_cpu_seconds", seconds, (mode,)))
        add(Sample("host_cpus", float(psutil.cpu_count() or 0)))
        for name, value in zip(("host_load1", "host_load5", "host_load15"), os.getloadavg(), strict=True):
            add(Sample(name, value))
        memory, swap = psutil.virtual_memory(), psutil.swap_memory()
        add(Sample("host_memory_total_bytes", float(memory.total)))
        add(Sample("host_memory_available_bytes", float(memory.available)))
        add(Sample("host_swap_total_bytes", float(swap.total)))
        add(Sample("host_swap_used_bytes", float(swap.used)))
        reasons: list[str] = []
        missing = self._filesystems(params, add)
        if missing:
            reasons.append("mount_missing")  # e.g. the SAN volume of the document archive is not mounted
        self._network(params, add)

        for name, count in _process_counts(params.processes).items():
            add(Sample("host_process_running", float(count), (name,)))
            if count == 0:
                reasons.append("process_down")
        if params.systemd_units:
            states = _unit_states(params.systemd_units, timeout)
            if states is None:
                reasons.append("systemd_unavailable")
            else:
                for unit, state in states.items():
                    add(Sample("host_systemd_unit_active", 1.0 if state == "active" else 0.0, (unit,)))
                    if state != "active":
                        reasons.append("unit_down")
        return ProbeResult(not reasons, reasons[0] if reasons else "", samples)

    @staticmethod
    def _filesystems(params: HostParams, add) -> set[str]:
        """Report each filesystem; return the configured mount points that are not mounted."""
        wanted = set(params.mountpoints) if params.mountpoints is not None else None
        seen: set[str] = set()
        for part in psutil.disk_partitions(all=wanted is not None):
            if part.mountpoint in seen:
                continue
            if wanted is not None and part.mountpoint not in wanted:
                continue
            if wanted is None and part.fstype in _PSEUDO_FILESYSTEMS:
                continue
            try:
                usage = psutil.disk_usage(part.mountpoint)
            except OSError:
                continue
            seen.add(part.mountpoint)
            labels = (part.mountpoint, part.fstype)
            add(Sample("host_filesystem_size_bytes", float(usage.total), labels))
            add(Sample("host_filesystem_free_bytes", float(usage.free), labels))
            add(Sample("host_filesystem_used_ratio", usage.percent / 100.0, labels))
        return (wanted or set()) - seen

    @staticmethod
    def _network(params: HostParams, add) -> None:
        counters = psutil.net_io_counters(pernic=True)
        stats = psutil.net_if_stats()
        for name, io in counters.items():
            if params.interfaces is None and name == "lo":
                continue
            if params.interfaces is not None and name not in params.interfaces:
                continue
            labels = (name,)
            add(Sample("host_network_receive_bytes", float(io.bytes_recv), labels))
            add(Sample("host_network_transmit_bytes", float(io.bytes_sent), labels))
            add(Sample("host_network_receive_errors", float(io.errin), labels))
            add(Sample("host_network_transmit_errors", float(io.errout), labels))
            add(Sample("host_network_up", 1.0 if name in stats and stats[name].isup else 0.0, labels))
