"""Loopback addresses for simulated devices: each unit of the lab province gets its own.

All of 127.0.0.0/8 is local on Linux, so every simulated router or server can have a distinct
address (and answer ICMP) without touching any real network.
"""

from __future__ import annotations

import ipaddress

LAB_NETWORK = ipaddress.IPv4Network("127.77.0.0/16")


class AddressPool:
    def __init__(self, network: ipaddress.IPv4Network = LAB_NETWORK) -> None:
        if not network.subnet_of(ipaddress.IPv4Network("127.0.0.0/8")):
            raise ValueError(f"the lab's addresses must be on loopback (127.0.0.0/8), not {network}")
        self.network = network
        self._hosts = network.hosts()
        self.assigned: dict[str, str] = {}

    def take(self, key: str) -> str:
        """The same key (a target's configured address) always gets the same loopback address, so
        the ICMP and SNMP targets of one router share it, as they share the real router."""
        if key not in self.assigned:
            try:
                self.assigned[key] = str(next(self._hosts))
            except StopIteration:
                raise RuntimeError("the lab address pool is exhausted") from None
        return self.assigned[key]
