"""Registry of collector kinds: the configuration names a kind, the registry gives its class."""

from __future__ import annotations

from collectors.base import Collector
from collectors.host import HostCollector
from collectors.http import HttpCollector
from collectors.icmp import IcmpCollector
from collectors.mcu import McuCollector
from collectors.power import PowerCollector
from collectors.sip import SipCollector
from collectors.snmp import SnmpCollector
from collectors.tcp import TcpCollector

REGISTRY: dict[str, type[Collector]] = {
    cls.kind: cls
    for cls in (HostCollector, HttpCollector, IcmpCollector, McuCollector, PowerCollector, SipCollector, SnmpCollector,
                TcpCollector)
}

__all__ = ["REGISTRY", "Collector"]
