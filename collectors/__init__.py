"""Registry of collector kinds: the configuration names a kind, the registry gives its class.

Kinds are found, not listed: every package under collectors/ whose ``__init__`` defines a
:class:`~collectors.api.KindDescriptor` named ``DESCRIPTOR`` is a kind. The descriptor names its
collector, models and contributions as strings, so a kind's module (pysnmp, pycurl, httpx...) is
imported on first use and an agent loads only the libraries of the kinds its configuration names.
Validating a configuration needs only a kind's Settings and Params (:meth:`Registry.models`), which
the heavy kinds keep in a models module apart from their libraries.

The probe allowlist fails closed here: a kind whose descriptor says it probes the network and whose
Params declare no ProbeHost field is refused (:meth:`Registry.undeclared_hosts`), whatever its fields
are named.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterator, MutableMapping
from typing import Any

from agent.domain.netaddr import ALLOW_ENV, declares_probe_hosts
from collectors.api import Collector, KindDescriptor
from collectors.lazyimport import import_without

# Optional packages the kinds' libraries import when installed but the agent never calls: pysnmp's MIB
# compiler (pysmi, with jinja2 and requests; a test extra, for snmpsim) compiles MIB files, and the agent reads
# numeric OIDs only. Masked while a kind is imported, so a checkout's venv runs like a production install.
NEVER_USED = ("pysmi",)


def discover_kinds() -> dict[str, KindDescriptor]:
    """The descriptors of the kinds under collectors/, by kind name."""
    found: dict[str, KindDescriptor] = {}
    for info in pkgutil.iter_modules(__path__):
        if not info.ispkg:
            continue
        descriptor = getattr(importlib.import_module(f"{__name__}.{info.name}"), "DESCRIPTOR", None)
        if isinstance(descriptor, KindDescriptor):
            found[descriptor.kind] = descriptor
    return found


def resolve(reference: str) -> Any:
    """The object a descriptor names: ``module:attribute`` (or a module), imported now."""
    module, _, attribute = reference.partition(":")
    loaded = import_without(module, NEVER_USED)
    return getattr(loaded, attribute) if attribute else loaded


class Registry(MutableMapping[str, type[Collector[Any, Any]]]):
    """``REGISTRY[kind]`` imports the kind's module the first time; tests may add kinds of their own."""

    def __init__(self) -> None:
        self._loaded: dict[str, type[Collector[Any, Any]]] = {}
        self._known: dict[str, KindDescriptor] | None = None

    @property
    def descriptors(self) -> dict[str, KindDescriptor]:
        if self._known is None:
            self._known = discover_kinds()
        return self._known

    def descriptor(self, kind: str) -> KindDescriptor | None:
        return self.descriptors.get(kind)

    def __getitem__(self, kind: str) -> type[Collector[Any, Any]]:
        cls = self._loaded.get(kind)
        if cls is None:
            cls = self._loaded[kind] = resolve(self.descriptors[kind].collector)
        return cls

    def __setitem__(self, kind: str, cls: type[Collector[Any, Any]]) -> None:
        self.add(cls, kind=kind)

    def add(self, cls: type[Collector[Any, Any]], *, kind: str | None = None, network: bool = True) -> None:
        """A kind given by its class (a test's, a plug-in's): it probes the network unless it says not."""
        name = kind or cls.kind
        self._loaded[name] = cls
        self.descriptors[name] = KindDescriptor(name, f"{cls.__module__}:{cls.__qualname__}", network=network)

    def __delitem__(self, kind: str) -> None:
        found = self._loaded.pop(kind, None)
        if self.descriptors.pop(kind, None) is None and found is None:
            raise KeyError(kind)

    def __contains__(self, kind: object) -> bool:
        return kind in self.descriptors or kind in self._loaded

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(set(self.descriptors) | set(self._loaded)))

    def __len__(self) -> int:
        return len(set(self.descriptors) | set(self._loaded))

    def load(self, kinds: Any) -> None:
        """Import these kinds now (an agent about to run them), so that :meth:`models` gives their own."""
        for kind in kinds:
            if kind in self:
                self[kind]

    def undeclared_hosts(self, kind: str) -> str | None:
        """Why this kind may not run (a network kind whose Params declare no ProbeHost field), or None."""
        descriptor = self.descriptors.get(kind)
        if descriptor is None or not descriptor.network:
            return None
        params = self.models(kind)[1]
        if declares_probe_hosts(params):
            return None
        return (f"collector kind {kind!r} probes the network but its params ({params.__name__}) declare no "
                f"ProbeHost field, so {ALLOW_ENV} could not check where it sends traffic: type its host fields "
                "as agent.domain.netaddr.ProbeHost (URLs with PROBED_URL), or set network=False in its descriptor")

    def models(self, kind: str) -> tuple[Any, Any]:
        """(Settings, Params) of a kind: the collector's own once it is loaded, else its light models,
        without the libraries its probes need (``check-config``)."""
        descriptor = self.descriptors.get(kind)
        if kind in self._loaded or descriptor is None or descriptor.models is None:
            cls = self[kind]
            return cls.Settings, cls.Params
        models = importlib.import_module(descriptor.models)
        prefix = descriptor.collector.rpartition(":")[2].removesuffix("Collector")
        return getattr(models, f"{prefix}Settings"), getattr(models, f"{prefix}Params")


REGISTRY = Registry()

__all__ = ["REGISTRY", "Collector", "KindDescriptor", "Registry", "discover_kinds", "resolve"]
