"""The administrative hierarchy as an index: parents, levels, and the labels each unit carries.

Every series about a target is labelled with its unit and with the unit's ancestor at every
configured level (``district="bg-d03"``), so Grafana can group a commune's link under its district
without the agent knowing what a district is. Levels a unit has no ancestor at get an empty value,
which Prometheus treats as an absent label.
"""

from __future__ import annotations

from dataclasses import dataclass

from agent.config.schema import Config, UnitSpec


@dataclass(frozen=True)
class Unit:
    id: str
    name_vi: str
    level: str
    parent: str | None
    name_en: str | None = None


class UnitIndex:
    def __init__(self, config: Config) -> None:
        self.levels = list(config.levels)
        self.units: dict[str, Unit] = {}
        self._add(config.units, None)
        self._labels = {uid: self._compute_labels(uid) for uid in self.units}

    def _add(self, specs: list[UnitSpec], parent: str | None) -> None:
        for spec in specs:
            self.units[spec.id] = Unit(spec.id, spec.name_vi, spec.level, parent, spec.name_en)
            self._add(spec.children, spec.id)

    def lineage(self, unit_id: str) -> list[Unit]:
        """The unit and its ancestors, nearest first."""
        out = []
        current: str | None = unit_id
        while current is not None:
            unit = self.units[current]
            out.append(unit)
            current = unit.parent
        return out

    def _compute_labels(self, unit_id: str) -> tuple[str, ...]:
        by_level = {}
        for unit in reversed(self.lineage(unit_id)):
            by_level[unit.level] = unit.id
        return tuple(by_level.get(level, "") for level in self.levels)

    def hierarchy_values(self, unit_id: str) -> tuple[str, ...]:
        """Values for the labels named by ``levels``, in that order."""
        return self._labels[unit_id]

    def ancestor_at(self, unit_id: str, level: str) -> str | None:
        for unit in self.lineage(unit_id):
            if unit.level == level:
                return unit.id
        return None

    def at_level(self, level: str, under: str | None = None) -> list[str]:
        return [u.id for u in self.units.values()
                if u.level == level and (under is None or self.is_under(u.id, under))]

    def is_under(self, unit_id: str, ancestor: str) -> bool:
        return any(u.id == ancestor for u in self.lineage(unit_id))
