"""check-config: valid configurations pass; every kind of mistake is reported with file, line and key."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from support.paths import AGENT, REPO
from support.province import write_config

from agent.config.loading import load_config
from agent.config.yamlsource import ConfigError

# Kept as YAML text, not built with support.province: these tests are about the text itself (errors
# located by file, line and key; parse errors; duplicate keys), so the lines they quote must stay put.
BASE = """\
province: {code: test, name_vi: Tỉnh Thử, name_en: Test Province}
levels: [province, district, commune]
units:
  - id: p
    name_vi: Tỉnh Thử
    level: province
    children:
      - id: d1
        name_vi: Huyện Một
        level: district
        children:
          - {id: c1, name_vi: Xã Một, level: commune}
collectors:
  tcp: {interval: 10s, timeout: 2s}
targets:
  - {id: t1, unit: c1, collector: tcp, params: {host: 127.0.0.1, port: 80}}
"""


def check(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*AGENT, "check-config", str(path)], capture_output=True, text=True, cwd=REPO,
                          timeout=60)


def errors_of(tmp_path: Path, body: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_config(write_config(tmp_path / "c.yml", body))
    return [str(p) for p in caught.value.problems]


def test_shipped_province_is_valid(monkeypatch: pytest.MonkeyPatch) -> None:
    province = REPO / "config" / "provinces" / "bac-giang.yml"
    skipped = subprocess.run([*AGENT, "check-config", "--skip-secrets", str(province)], capture_output=True,
                             text=True, cwd=REPO, timeout=60)
    assert skipped.returncode == 0, skipped.stderr
    monkeypatch.setenv("EGOV_SNMP_COMMUNITY", "community-for-the-test")
    result = check(province)
    assert result.returncode == 0, result.stderr
    assert "community-for-the-test" not in result.stdout + result.stderr
    loaded = load_config(province)
    levels = [u.level for u in _all_units(loaded.config.units)]
    assert levels.count("district") == 10
    assert levels.count("commune") == 230
    assert levels.count("department") == 22
    for kpi in loaded.config.kpis:
        assert kpi.targets, kpi.id
        assert all(t.deadline for t in kpi.targets)
        if any(t.origin == "plan" for t in kpi.targets):
            assert kpi.citation is not None and kpi.citation.quote


def _all_units(units):
    for unit in units:
        yield unit
        yield from _all_units(unit.children)


def test_a_file_not_in_utf8_is_a_config_error(tmp_path: Path) -> None:
    """Reading it raises UnicodeDecodeError, which has no strerror: the message once crashed on it."""
    path = tmp_path / "latin1.yml"
    path.write_bytes(b"province: {code: test, name_vi: T\xecnh Th\xfb, name_en: Test Province}\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert [str(p) for p in caught.value.problems] == [
        f"{path}: cannot read: 'utf-8' codec can't decode byte 0xec in position 33: invalid continuation byte"]


def test_bad_date_is_reported_with_file_line_and_key(tmp_path: Path) -> None:
    body = BASE + """\
kpis:
  - id: k1
    class: direct
    title_vi: a
    title_en: b
    measure: {kind: coverage, select: {collector: tcp, level: commune}}
    targets:
      - {phase: "2019-2020", deadline: 2020-13-01, comparator: ">=", value: 100%, origin: ops}
"""
    path = write_config(tmp_path / "bad.yml", body)
    result = check(path)
    assert result.returncode == 2
    line = body.splitlines().index('      - {phase: "2019-2020", deadline: 2020-13-01, comparator: ">=", value: 100%, '
                                   'origin: ops}') + 1
    assert f"{path}:{line}: kpis[0].targets[0].deadline: expected a date (YYYY-MM-DD), got '2020-13-01'" \
        in result.stderr


def test_every_error_is_listed_at_once(tmp_path: Path) -> None:
    body = BASE.replace("params: {host: 127.0.0.1, port: 80}", "params: {host: 127.0.0.1, port: 99999}") + """\
  - {id: t1, unit: nowhere, collector: snmp}
kpis:
  - id: k1
    class: direct
    title_vi: a
    title_en: b
    colour: blue
    measure: {kind: coverage, select: {collector: icmp, level: hamlet}, group_by: region}
    targets: [{phase: x, deadline: 2020-01-01, comparator: ">=", value: 1}]
  - id: k1
    class: manual
    title_vi: a
    title_en: b
    measure: {kind: ratio}
"""
    errors = errors_of(tmp_path, body)
    text = "\n".join(errors)
    assert "targets[0].params.port: Input should be less than or equal to 65535" in text
    assert "targets[0].id: duplicate target id 't1'" in text
    assert "targets[1].unit: unknown unit 'nowhere'" in text
    assert "targets[1].collector: collector 'snmp' is not configured under collectors" in text
    assert "kpis[0].colour: unknown key" in text
    assert "kpis[0].measure.select.collector: collector 'icmp' is not configured under collectors" in text
    assert "kpis[0].measure.select.level: unknown level 'hamlet'" in text
    assert "kpis[0].measure.group_by: unknown level 'region'" in text
    assert "kpis[0]: a KPI with plan targets needs a citation" in text
    assert "kpis[1].id: duplicate KPI id 'k1'" in text
    assert "kpis[1].measure.source: source is manual but the configuration has no manual: section" in text
    assert all(e.startswith(str(tmp_path / "c.yml") + ":") for e in errors)


def test_unknown_collector_kind_and_comparator(tmp_path: Path) -> None:
    body = BASE.replace("  tcp: {interval: 10s, timeout: 2s}", "  tcp: {interval: 10s, timeout: 20s}\n  telnet: {}")
    body += """\
kpis:
  - id: k1
    class: direct
    title_vi: a
    title_en: b
    measure: {kind: coverage, select: {collector: tcp}}
    targets: [{phase: x, deadline: 2020-01-01, comparator: "≥", value: 1, origin: ops}]
  - id: k2
    class: direct
    title_vi: a
    title_en: b
    measure: {kind: uptime}
"""
    text = "\n".join(errors_of(tmp_path, body))
    assert "collectors.tcp: timeout (20s) is longer than the interval (10s)" in text
    assert "kpis[0].targets[0].comparator: Input should be '>=', '>', '=', '<=', '<', 'range', 'approx' or " \
           "'qualitative', got '≥'" in text
    assert "kpis[1].measure: unknown kind 'uptime'" in text


def test_target_comparator_fields_must_match(tmp_path: Path) -> None:
    body = BASE + """\
kpis:
  - id: k1
    class: direct
    title_vi: a
    title_en: b
    measure: {kind: coverage, select: {collector: tcp}}
    targets:
      - {phase: a, deadline: 2020-01-01, comparator: range, value: 1, origin: ops}
      - {phase: b, deadline: 2021-01-01, comparator: qualitative, value: 1, origin: ops}
      - {phase: c, deadline: 2022-01-01, comparator: ">=", text: hầu hết, origin: ops}
"""
    text = "\n".join(errors_of(tmp_path, body))
    assert "kpis[0].targets[0]: a range target needs low and high (and no value)" in text
    assert "kpis[0].targets[1]: a qualitative target keeps its words in text and has no number" in text
    assert "kpis[0].targets[2]: a '>=' target needs a value (and no low/high)" in text


def test_include_errors_point_into_the_included_file(tmp_path: Path) -> None:
    write_config(tmp_path / "more.yml", """\
targets:
  - id: t2
    unit: c1
    collector: tcp
    params: {host: "not a host!", port: 80}
""")
    body = BASE + "include: [more.yml]\n"
    errors = errors_of(tmp_path, body)
    assert errors == [f"{tmp_path / 'more.yml'}:5: targets[1].params.host: "
                      "expected an IP address or host name, got 'not a host!'"]


def test_include_cycle_and_duplicate_yaml_keys(tmp_path: Path) -> None:
    write_config(tmp_path / "a.yml", "include: [c.yml]\n")
    text = "\n".join(errors_of(tmp_path, BASE + "include: [a.yml]\n"))
    assert "include cycle through c.yml" in text
    text = "\n".join(errors_of(tmp_path, BASE + "levels: [x]\n"))
    assert "levels: duplicate key" in text


def test_invalid_yaml_is_located(tmp_path: Path) -> None:
    errors = errors_of(tmp_path, BASE + "kpis: [unclosed\n")
    assert len(errors) == 1 and errors[0].startswith(f"{tmp_path / 'c.yml'}:") and "invalid YAML" in errors[0]


def test_secret_literal_is_refused_without_echoing_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pydantic import ValidationError

    from agent.domain.models import StrictModel
    from agent.domain.secrets import Secret

    class WithSecret(StrictModel):
        password: Secret

    with pytest.raises(ValidationError) as caught:
        WithSecret.model_validate({"password": "hunter2-literal"})
    assert "hunter2-literal" not in str(caught.value.errors(include_input=False))
    monkeypatch.setenv("EGOV_TEST_SECRET", "s3cr3t-value")
    model = WithSecret.model_validate({"password": "env:EGOV_TEST_SECRET"})
    assert model.password.reveal() == "s3cr3t-value"
    assert "s3cr3t-value" not in repr(model) and "s3cr3t-value" not in str(model.model_dump())
    secret_file = tmp_path / "secret"
    secret_file.write_text("from-a-file\n")
    assert WithSecret.model_validate({"password": f"file:{secret_file}"}).password.reveal() == "from-a-file"
    with pytest.raises(ValidationError, match="environment variable EGOV_MISSING is not set"):
        WithSecret.model_validate({"password": "env:EGOV_MISSING"})


def test_check_config_exit_codes(tmp_path: Path) -> None:
    good = write_config(tmp_path / "good.yml", BASE)
    result = check(good)
    assert result.returncode == 0 and "OK" in result.stdout
    assert check(tmp_path / "missing.yml").returncode == 2
    usage = subprocess.run([*AGENT, "check-config"], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert usage.returncode == 2


def test_probe_allowlist_refuses_real_network_addresses(tmp_path: Path) -> None:
    """A province configuration validates here, but the agent refuses to probe its 10.x addresses."""
    path = write_config(tmp_path / "real.yml", BASE.replace("127.0.0.1", "10.24.10.10"))
    assert check(path).returncode == 0
    result = subprocess.run([*AGENT, "once", "--config", str(path)], capture_output=True, text=True, cwd=REPO,
                            timeout=60)
    assert result.returncode == 2
    assert "refusing to probe outside EGOV_AGENT_PROBE_ALLOW: target t1: address 10.24.10.10" in result.stderr


if __name__ == "__main__":
    sys.exit(pytest.main([__file__]))


def test_a_secret_missing_for_many_targets_is_one_error_with_the_count_and_a_hint(tmp_path: Path) -> None:
    """One unset community for 40 routers is one line with the count and where the first are, not 40 lines;
    and check-config says how to check the file without its secrets."""
    routers = "".join(f"  - {{id: r{i}, unit: c1, collector: snmp, params: {{host: 127.0.0.1, port: 161, "
                      f"community: env:EGOV_TEST_UNSET_COMMUNITY, interface: {{index: 1}}}}}}\n" for i in range(40))
    body = BASE.replace("  tcp: {interval: 10s, timeout: 2s}", "  tcp: {interval: 10s, timeout: 2s}\n  snmp: {}")
    body += routers + "  - {id: t2, unit: nowhere, collector: tcp, params: {host: 127.0.0.1, port: 80}}\n"
    path = write_config(tmp_path / "c.yml", body)
    result = subprocess.run([*AGENT, "check-config", str(path)], capture_output=True, text=True, cwd=REPO,
                            timeout=60, env={k: v for k, v in os.environ.items() if k != "EGOV_TEST_UNSET_COMMUNITY"})
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    grouped = [line for line in lines if "EGOV_TEST_UNSET_COMMUNITY" in line]
    assert len(grouped) == 1, result.stderr
    assert "environment variable EGOV_TEST_UNSET_COMMUNITY is not set — used by 40 targets (" in grouped[0]
    first = body.splitlines().index(next(line for line in body.splitlines() if "id: r0," in line)) + 1
    assert f"({path}:{first} targets[1].params.community; {path}:{first + 1} targets[2]" in grouped[0]
    assert "and 37 more)" in grouped[0]
    assert any("targets[41].unit" in line for line in lines), result.stderr  # a single problem stays as it was
    assert f"{path}: 41 error(s)" in lines
    assert any(line.startswith("hint:") and "--skip-secrets" in line for line in lines), result.stderr
    skipped = subprocess.run([*AGENT, "check-config", "--skip-secrets", str(path)], capture_output=True, text=True,
                             cwd=REPO, timeout=60)
    assert "EGOV_TEST_UNSET_COMMUNITY" not in skipped.stderr and "hint:" not in skipped.stderr


def _eager_positions(path: Path) -> tuple[dict, list[str]]:
    """Every value's position, recorded as the loader did before it read them from the nodes on demand: a walk
    of each file's tree, an included file's list items shifted after the including file's, the first file to
    hold a path keeping it."""
    import yaml

    def walk(node, at, where):
        where[at] = (str(file), node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            yaml.constructor.SafeConstructor().flatten_mapping(node)
            for key_node, value_node in node.value:
                key = key_node.value if key_node.tag.endswith(":str") else yaml.safe_load(key_node.value)
                walk(value_node, (*at, str(key)), where)
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                walk(item, (*at, i), where)

    file = path
    where: dict = {}
    walk(yaml.compose(path.read_text(), Loader=yaml.CSafeLoader), (), where)
    data = yaml.load(path.read_text(), Loader=yaml.CSafeLoader)
    files = [str(path)]
    lengths = {k: len(v) for k, v in data.items() if isinstance(v, list)}
    for name in data.get("include", []):
        extra, extra_files = _eager_positions(path.parent / name)
        extra_data = yaml.load((path.parent / name).read_text(), Loader=yaml.CSafeLoader)
        shift = dict(lengths)
        for key, value in extra_data.items():
            if key != "include" and isinstance(value, list):
                lengths[key] = lengths.get(key, 0) + len(value)
        for at, position in extra.items():
            if not at or at[0] == "include":
                continue
            if len(at) > 1 and isinstance(at[1], int) and at[0] in shift:
                at = (at[0], at[1] + shift[at[0]], *at[2:])
            where.setdefault(at, position)
        files += extra_files
    return where, files


def test_positions_are_read_from_the_nodes_as_a_full_walk_records_them(tmp_path: Path) -> None:
    """The loader keeps each file's nodes and finds a path's line when asked; it must give every position the
    eager walk gave, across includes (lists joined, mappings merged), integer keys, anchors and merge keys."""
    from agent.config.yamlsource import load_document

    write_config(tmp_path / "more.yml", """\
include: [deeper.yml]
targets:
  - {id: t2, unit: c1, collector: tcp, params: {host: 127.0.0.1, port: 80}}
  - id: t3
    unit: c1
collectors:
  icmp: &icmp {interval: 30s}
  sip: {<<: *icmp, timeout: 5s}
extra_map: {1: one, false: no, 2.5: x}
""")
    write_config(tmp_path / "deeper.yml", "targets:\n  - id: t4\n  - id: t5\n    tags: [a, b]\nkpis:\n  - id: k\n")
    write_config(tmp_path / "c.yml", BASE + "include: [more.yml]\n")
    shipped = REPO / "config" / "provinces" / "bac-giang.yml"
    for path, every in ((tmp_path / "c.yml", 1), (shipped, 9)):
        doc = load_document(path)
        where, files = _eager_positions(path)
        assert doc.files == files
        assert doc.positions() == where

        def eager_locate(at, where=where, files=files):
            for end in range(len(at), -1, -1):
                if at[:end] in where:
                    return where[at[:end]]
            return (files[0], None)

        for at in list(where)[::every]:
            for probe in (at, (*at, "id"), (*at, 0), (*at, 10**6), (*at, "no_such_key")):
                assert doc.locate(probe) == eager_locate(probe), probe


def test_models_of_one_shape_share_one_fields_set() -> None:
    """pydantic keeps on every instance the set of the fields its input named; agent.domain.models keeps one
    set object per combination. Bắc Giang's ~3,500 models name a few dozen combinations; what pydantic
    answers from the set (model_fields_set, exclude_unset, model_copy) is each instance's own still."""
    import gc
    import pickle

    from pydantic import BaseModel

    from agent.config.yamlsource import load_document

    path = REPO / "config" / "provinces" / "bac-giang.yml"
    loaded = load_config(path, resolve_secrets=False)
    models = [o for o in gc.get_objects() if isinstance(o, BaseModel)]
    assert len(models) > 3000
    assert len({id(m.__pydantic_fields_set__) for m in models}) < 200
    raw = load_document(path).data["targets"]
    by_shape: dict[frozenset[str], int] = {}
    for target, given in zip(loaded.config.targets, raw, strict=True):
        assert target.model_fields_set == set(given)  # the keys its YAML entry names, no more, no fewer
        assert by_shape.setdefault(frozenset(given), id(target.__pydantic_fields_set__)) == \
            id(target.__pydantic_fields_set__)
    # two plan targets that leave out the same optional field, and a copy of one that sets it
    targets = [t for kpi in loaded.config.kpis for t in kpi.targets]
    first = next(t for t in targets if "text" not in t.model_fields_set)
    other = next(t for t in targets if t is not first and t.model_fields_set == first.model_fields_set)
    assert first.__pydantic_fields_set__ is other.__pydantic_fields_set__
    worded = first.model_copy(update={"text": "tất cả"})
    assert "text" in worded.model_fields_set and "text" not in other.model_fields_set
    assert "text" not in other.model_dump(exclude_unset=True)
    again = pickle.loads(pickle.dumps(other))  # a worker's share of the configuration
    assert again == other and again.__pydantic_fields_set__ is other.__pydantic_fields_set__
