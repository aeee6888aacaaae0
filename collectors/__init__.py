"""Registry of collector kinds: the configuration names a kind, the registry gives its class.

A kind's module is imported on first use, so an agent loads pysnmp, pycurl or httpx only for the kinds
its configuration names. Validating a configuration needs only a kind's Settings and Params
(:meth:`Registry.models`), which the heavy kinds keep in collectors/models/ apart from their libraries.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, MutableMapping
from typing import Any

from collectors.api import Collector
from collectors.lazyimport import import_without

# kind -> (module, class of the collector, module holding its Settings and Params when the collector's own
# module is heavy: the light kinds' models live beside their collector)
KINDS: dict[str, tuple[str, str, str | None]] = {
    "host": ("collectors.host.probe", "HostCollector", None),
    "http": ("collectors.http.probe", "HttpCollector", "collectors.http.models"),
    "icmp": ("collectors.icmp.probe", "IcmpCollector", None),
    "mcu": ("collectors.mcu.probe", "McuCollector", "collectors.mcu.models"),
    "power": ("collectors.power.probe", "PowerCollector", "collectors.power.models"),
    "sip": ("collectors.sip.probe", "SipCollector", None),
    "snmp": ("collectors.snmp.probe", "SnmpCollector", "collectors.snmp.models"),
    "tcp": ("collectors.tcp.probe", "TcpCollector", None),
}


# Optional packages the kinds' libraries import when installed but the agent never calls: pysnmp's MIB
# compiler (pysmi, with jinja2 and requests; a test extra, for snmpsim) compiles MIB files, and the agent reads
# numeric OIDs only. Masked while a kind is imported, so a checkout's venv runs like a production install.
NEVER_USED = ("pysmi",)


class Registry(MutableMapping[str, type[Collector]]):
    """``REGISTRY[kind]`` imports the kind's module the first time; tests may add kinds of their own."""

    def __init__(self) -> None:
        self._loaded: dict[str, type[Collector]] = {}
        self._known: dict[str, tuple[str, str, str | None]] = dict(KINDS)

    def __getitem__(self, kind: str) -> type[Collector]:
        cls = self._loaded.get(kind)
        if cls is None:
            module, name, _ = self._known[kind]
            cls = self._loaded[kind] = getattr(import_without(module, NEVER_USED), name)
        return cls

    def __setitem__(self, kind: str, cls: type[Collector]) -> None:
        self._loaded[kind] = cls

    def __delitem__(self, kind: str) -> None:
        found = self._loaded.pop(kind, None)
        if self._known.pop(kind, None) is None and found is None:
            raise KeyError(kind)

    def __contains__(self, kind: object) -> bool:
        return kind in self._known or kind in self._loaded

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(set(self._known) | set(self._loaded)))

    def __len__(self) -> int:
        return len(set(self._known) | set(self._loaded))

    def load(self, kinds: Any) -> None:
        """Import these kinds now (an agent about to run them), so that :meth:`models` gives their own."""
        for kind in kinds:
            if kind in self:
                self[kind]

    def models(self, kind: str) -> tuple[Any, Any]:
        """(Settings, Params) of a kind: the collector's own once it is loaded, else its light models,
        without the libraries its probes need (``check-config``)."""
        _, name, light = self._known.get(kind, ("", "", None))
        if kind in self._loaded or light is None:
            cls = self[kind]
            return cls.Settings, cls.Params
        models = importlib.import_module(light)
        prefix = name.removesuffix("Collector")
        return getattr(models, f"{prefix}Settings"), getattr(models, f"{prefix}Params")


REGISTRY = Registry()

__all__ = ["KINDS", "REGISTRY", "Collector", "Registry"]
