"""Inventories: the units a plan sentence counts, which are a KPI's denominator.

«230/230 xã», «22 sở, ngành», «19 sở, ngành» for the one-stop shop (the Provincial Inspectorate
has no procedures), «100% trạm y tế xã»: a coverage KPI divides by the plan's inventory, never by
whatever happens to answer or by the example targets configured so far. A unit without data
counts against the KPI. Where the real list is not known the inventory says so, and the KPI stays
pending rather than dividing by examples.
"""

from __future__ import annotations

from dataclasses import dataclass

from agent.config.schema import Config, InventorySpec
from agent.engine.units import UnitIndex


@dataclass(frozen=True)
class Exclusion:
    unit: str
    reason: str
    assumed: bool = False


@dataclass(frozen=True)
class Inventory:
    id: str
    title_vi: str
    title_en: str
    members: tuple[str, ...]
    complete: bool = True
    incomplete_reason: str = ""
    excluded: tuple[Exclusion, ...] = ()
    expected: int | None = None

    @property
    def declared(self) -> bool:
        """Declared under ``inventories:`` (not implied by a KPI's ``select.level``)."""
        return not self.id.startswith("level:")


def resolve(spec: InventorySpec, units: UnitIndex) -> Inventory:
    members = [uid for uid, unit in units.units.items()
               if unit.level in spec.levels and (spec.under is None or units.is_under(uid, spec.under))]
    members += [uid for uid in spec.units if uid not in members]
    excluded = {e.unit for e in spec.exclude}
    return Inventory(spec.id, spec.title_vi, spec.title_en, tuple(u for u in members if u not in excluded),
                     spec.complete, spec.incomplete_reason or "",
                     tuple(Exclusion(e.unit, e.reason, e.assumed) for e in spec.exclude), spec.expected)


def at_level(level: str, under: str | None, units: UnitIndex) -> Inventory:
    """Every unit at a level: the inventory a KPI's ``select.level`` implies."""
    name = f"level:{level}" + (f":{under}" if under else "")
    return Inventory(name, level, level, tuple(units.at_level(level, under)))


def resolve_all(config: Config, units: UnitIndex) -> dict[str, Inventory]:
    return {spec.id: resolve(spec, units) for spec in config.inventories}
