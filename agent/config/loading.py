"""Loading a province configuration: YAML with marks, the schema, the kinds' and sources' own models, the
cross-checks, and every problem at once.

``load_config`` returns a :class:`LoadedConfig` (the validated :class:`~agent.config.schema.Config` with
each kind's typed settings and each target's typed params) or raises :class:`ConfigError` listing every
problem, each with file, line and key.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationError

from agent.config.checks import cross_check
from agent.config.errors import problems_from
from agent.config.schema import Config
from agent.config.yamlsource import ConfigError, Document, Path_, Problem, format_path, load_document
from agent.domain import gcpause
from agent.domain.rawdata import as_mapping, mappings
from agent.domain.secrets import RESOLVE_SECRETS
from agent.sources import KINDS as SOURCE_KINDS
from agent.sources import spec_class
from collectors import REGISTRY


def _validate_collectors(data: dict[str, Any], doc: Document) -> tuple[dict[str, Any], dict[str, Any], list[Problem]]:
    """Validate each collector's settings and each target's params with that collector's own models."""
    problems: list[Problem] = []
    settings: dict[str, Any] = {}
    params: dict[str, Any] = {}
    collectors = as_mapping(data.get("collectors"))
    for name, spec in collectors.items():
        if name not in REGISTRY:
            continue
        if (undeclared := REGISTRY.undeclared_hosts(name)) is not None:  # fail closed: the allowlist could not see it
            file, line = doc.locate(("collectors", name))
            problems.append(Problem(file, line, format_path(("collectors", name)), undeclared))
            continue
        raw = spec.get("settings", {}) if isinstance(spec, dict) else {}
        try:
            settings[name] = REGISTRY.models(name)[0].model_validate(raw)
        except ValidationError as exc:
            problems += problems_from(exc, doc, ("collectors", name, "settings"))
    for i, target in mappings(data.get("targets")):
        kind = target.get("collector")
        if not isinstance(kind, str) or kind not in REGISTRY:
            continue
        try:
            params[str(target.get("id"))] = REGISTRY.models(kind)[1].model_validate(target.get("params") or {})
        except ValidationError as exc:
            problems += problems_from(exc, doc, ("targets", i, "params"))
    return settings, params, problems


def _validate_sources(data: dict[str, Any], doc: Document) -> tuple[dict[str, Any], list[Problem]]:
    """Validate each source with its kind's own model (agent/sources/<kind>.py)."""
    problems: list[Problem] = []
    specs: dict[str, Any] = {}
    for i, raw in mappings(data.get("sources")):
        if raw.get("kind") not in SOURCE_KINDS:
            continue  # the cross-check reports it
        try:
            spec = spec_class(raw["kind"]).model_validate(raw)
        except ValidationError as exc:
            problems += problems_from(exc, doc, ("sources", i))
            continue
        specs.setdefault(spec.id, spec)
    return specs, problems


class LoadedConfig:
    """A validated configuration plus the typed collector settings and target params."""

    def __init__(self, config: Config, source: Path, settings: dict[str, Any], params: dict[str, Any],
                 source_specs: dict[str, Any] | None = None, warnings: list[Problem] | None = None) -> None:
        self.config = config
        self.source = source
        self.collector_settings = settings
        self.target_params = params
        self.source_specs = source_specs or {}  # source id -> its kind's Spec (agent/sources)
        self.warnings = warnings or []  # valid, but worth an operator's attention (check-config prints them)

    def resolve_path(self, name: str) -> Path:
        """A file named in the configuration, relative to the configuration file."""
        path = Path(name)
        return path if path.is_absolute() else self.source.parent / path


def load_config(path: str | Path, resolve_secrets: bool = True, load_kinds: bool = True) -> LoadedConfig:
    """Load and validate; with ``resolve_secrets=False`` secret references are checked for form only.

    ``load_kinds`` imports the collector kinds the file names, to run them; without it (``check-config``)
    targets are validated with the kinds' light models, and pysnmp, pycurl or httpx are not loaded.
    """
    token = RESOLVE_SECRETS.set(resolve_secrets)
    try:
        with gcpause.paused():  # every object built here is kept: collecting meanwhile finds nothing (gcpause.py)
            return _load_config(path, load_kinds)
    finally:
        RESOLVE_SECRETS.reset(token)


def _load_config(path: str | Path, load_kinds: bool) -> LoadedConfig:
    doc = load_document(path)
    raw_sql = [raw for _, raw in mappings(doc.data.get("sources")) if raw.get("kind") == "sql"]
    if not raw_sql:
        return _validate(path, doc, load_kinds)
    from agent.sources.sqlspec import prefetched_checks

    with prefetched_checks(raw_sql):  # sqlglot parses the queries in a child meanwhile, on the other core
        return _validate(path, doc, load_kinds)


def _validate(path: str | Path, doc: Document, load_kinds: bool) -> LoadedConfig:
    if load_kinds and isinstance(doc.data.get("collectors"), dict):
        REGISTRY.load(doc.data["collectors"])
    problems: list[Problem] = []
    try:
        config = Config.model_validate(doc.data)
    except ValidationError as exc:
        problems += problems_from(exc, doc)
    problems += cross_check(doc.data, doc)
    settings, params, more = _validate_collectors(doc.data, doc)
    problems += more
    source_specs, more = _validate_sources(doc.data, doc)
    problems += more
    if problems:
        problems.sort(key=lambda p: (p.file, p.line or 0))
        raise ConfigError(problems)
    return LoadedConfig(config, Path(path).resolve(), settings, params, source_specs, _warnings(config, doc))


def _warnings(config: Config, doc: Document) -> list[Problem]:
    """What validates but will not yield a plan figure as configured: said once, at check-config."""
    out: list[Problem] = []
    inventories = {inv.id: (i, inv) for i, inv in enumerate(config.inventories)}

    def warn(path: Path_, message: str) -> None:
        file, line = doc.locate(path)
        out.append(Problem(file, line, format_path(path), message))

    for i, kpi in enumerate(config.kpis):
        measure = kpi.measure
        name = getattr(measure, "inventory", None)
        if name in inventories and not inventories[name][1].complete:
            warn(("kpis", i, "measure", "inventory"),
                 f"KPI {kpi.id} stays pending: inventory {name} is incomplete "
                 f"({inventories[name][1].incomplete_reason})")
    for i, inv in inventories.values():
        for j, exclusion in enumerate(inv.exclude):
            if exclusion.assumed:
                warn(("inventories", i, "exclude", j), f"inventory {inv.id} leaves out {exclusion.unit} by "
                                                       f"assumption, not by the plan's words: {exclusion.reason}")
    return out


__all__ = ["ConfigError", "LoadedConfig", "Problem", "load_config"]
