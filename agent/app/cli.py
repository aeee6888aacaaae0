"""Command line: ``egov-agent run|once|check-config|demo|lab``.

Exit codes scripts can rely on: 0 success, 1 a runtime failure (port in use, lab did not start),
2 an invalid configuration or command line.
"""

from __future__ import annotations

import argparse
import logging
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Literal, NamedTuple

from agent.app.listen import DEFAULT_PORT, parse_listen
from agent.app.malloc import tune as tune_malloc
from agent.app.packaged import shipped
from agent.config.yamlsource import ConfigError
from agent.domain.logs import DEFAULT_RATE, setup_logging
from agent.domain.models import parse_duration
from agent.domain.netaddr import ProbeNotAllowed
from agent.domain.version import __version__
from agent.engine.sharding import Shard

if TYPE_CHECKING:  # loaded by the commands that use them, after run's listener opens
    from agent.app.http import ReloadGuard
    from agent.app.webconfig import WebConfigSource
    from agent.app.webserver import Limits

log = logging.getLogger("egov-agent")
EXIT_OK, EXIT_FAILURE, EXIT_CONFIG = 0, 1, 2
DEFAULT_PROVINCE = shipped("provinces") / "bac-giang.yml"  # the demo's province, in a checkout or a wheel
LAB_START_SECONDS = 180.0  # 25 s on an idle 2-core machine, over 60 s when it is shared and busy
LAB_STOP_SECONDS = 60.0  # the demo's lab closes in seconds (1170 simulated targets); past this it is killed
DEFAULT_DASHBOARDS = "dashboards/grafana"  # relative: under the current directory, never the package's
PARENT_POLL_SECONDS = 1.0  # how often a lab started with --parent-pid looks for its parent
# Today's flag spellings, kept as aliases of the Prometheus-style names for one release (until 0.3).
OLD_SPELLINGS = {"--listen": "--web.listen-address", "--log-level": "--log.level", "--log-format": "--log.format",
                 "--log-rate-limit": "--log.rate-limit"}


class _Store(argparse.Action):
    """``store``, remembering an old spelling so that ``main`` can say, once logging is set up, what replaces it."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: object,
                 option_string: str | None = None) -> None:
        setattr(namespace, self.dest, values)
        if option_string in OLD_SPELLINGS:
            used = getattr(namespace, "old_spellings", None) or []
            namespace.old_spellings = [*used, option_string]


GROUP_AT = 3  # a message repeated this often is printed once, with how many entries it concerns
SHOWN_PLACES = 3
_ENTRY = re.compile(r"^([A-Za-z_]+)(\[\d+\])?")
_SECRET_PROBLEMS = ("environment variable ", "cannot read secret file ")


def _report(exc: ConfigError, path: str | None) -> None:
    """Every problem of a configuration or web configuration file on stderr, then the count.

    A problem repeated in many entries (one unset community for 109 targets) is one line saying how many
    entries, and where the first are, so the one fix it needs is not lost among a hundred lines."""
    groups: dict[str, list] = {}
    for problem in exc.problems:
        groups.setdefault(problem.message, []).append(problem)
    for message, problems in groups.items():
        if len(problems) < GROUP_AT:
            for problem in problems:
                print(f"error: {problem}", file=sys.stderr)
            continue
        entries = {m.group(0) for p in problems if (m := _ENTRY.match(p.path))}
        sections = sorted({m.group(1) for p in problems if (m := _ENTRY.match(p.path))})
        verb = "used by" if message.startswith(_SECRET_PROBLEMS) else "in"
        what = f"{len(entries)} {'/'.join(sections)}" if entries else f"{len(problems)} places"
        problems.sort(key=lambda p: (p.file, p.line or 0))
        places = "; ".join(f"{p.file}:{p.line} {p.path}" if p.line else f"{p.file} {p.path}"
                           for p in problems[:SHOWN_PLACES])
        more = f"; and {len(problems) - SHOWN_PLACES} more" if len(problems) > SHOWN_PLACES else ""
        print(f"error: {message} — {verb} {what} ({places}{more})", file=sys.stderr)
    print(f"{path}: {len(exc.problems)} error(s)", file=sys.stderr)
    if any(p.message.startswith(_SECRET_PROBLEMS) for p in exc.problems):
        print(f"hint: to check {path} without its secrets (on a workstation, in CI), add --skip-secrets: references "
              "are checked for form only. The service reads env: secrets from /etc/egov-agent/agent.env "
              "(systemctl cat egov-agent: EnvironmentFile).", file=sys.stderr)


def _load(path: str, resolve_secrets: bool = True, load_kinds: bool = True):
    from agent.config.loading import load_config  # the schema's models: not needed before run's listener opens

    try:
        return load_config(path, resolve_secrets, load_kinds)
    except ConfigError as exc:
        _report(exc, path)
        return None


def cmd_check_config(args: argparse.Namespace) -> int:
    loaded = _load(args.file, resolve_secrets=not args.skip_secrets, load_kinds=False)
    web = _load_web(args.web_config_file) if args.web_config_file else None
    if loaded is None or (args.web_config_file and web is None):
        return EXIT_CONFIG
    if web is not None:
        print(f"{args.web_config_file}: OK — {web.settings.scheme.upper()}, basic auth "
              f"{'on' if web.settings.auth else 'off'}")
    for warning in loaded.warnings:
        print(f"warning: {warning}")
    c = loaded.config
    units = sum(1 for _ in _iter_units(c.units))
    print(f"{args.file}: OK — {c.province.name_vi} ({c.province.code}): {units} units, "
          f"{len(c.targets)} targets, {len(c.collectors)} collectors, {len(c.kpis)} KPIs"
          + (f" ({len(loaded.warnings)} warning(s) above)" if loaded.warnings else ""))
    return EXIT_OK


def _iter_units(units):
    for unit in units:
        yield unit
        yield from _iter_units(unit.children)


def _shard(text: str | None) -> Shard | Literal[False] | None:
    """The --shard argument; False (after printing why) when it is malformed."""
    if not text:
        return None
    try:
        return Shard.parse(text)
    except ValueError as exc:
        print(f"error: --shard: {exc}", file=sys.stderr)
        return False


def cmd_once(args: argparse.Namespace) -> int:
    import asyncio

    loaded = _load(args.config)
    shard = _shard(args.shard)
    if loaded is None or shard is False:
        return EXIT_CONFIG
    from agent.app.runtime import Agent
    from exporters.table import render_table

    agent = Agent(loaded, shard)
    asyncio.run(agent.collect_once())
    if args.format == "prometheus":
        body, _ = agent.exposition.render(None)
        sys.stdout.write(body.decode())
    elif args.format == "openmetrics":
        body, _ = agent.exposition.render("application/openmetrics-text; version=1.0.0")
        sys.stdout.write(body.decode())
    else:
        sys.stdout.write(render_table(agent.evaluate()))
    return EXIT_OK


def run_agent(config_path: str, listen: str, web_config: str | None = None, shard_text: str | None = None,
              before_exit: Callable[[], None] | None = None, state_file: str | None = None,
              state_save_interval: str = "15s", http: argparse.Namespace | None = None, workers: int = 1) -> int:
    """The command line and web configuration first, then the listener (``/-/healthy`` answers from here,
    the rest 503), then the configuration: one that does not load exits 2 with its errors and closes the
    listener, as if it had never opened."""
    tune_malloc()  # before any thread: fewer glibc arenas (agent.app.malloc)
    checked = _run_options(listen, web_config, shard_text, state_save_interval, http, workers)
    if checked is None:
        _load(config_path)  # its errors too, in the same run
        return EXIT_CONFIG
    from agent.app import daemon

    # SIGTERM while the configuration loads stops as cleanly as later on (exit 0); the service installs its
    # own handlers once it runs, and the caller's (the demo's) are given back before. The handler is in place
    # before the listener opens and inside the try: a SIGTERM sent as soon as /-/healthy answers lands in it.
    on_main = threading.current_thread() is threading.main_thread()
    previous = signal.getsignal(signal.SIGTERM) if on_main else None
    listener: daemon.Listener | None = None
    try:
        if on_main:
            signal.signal(signal.SIGTERM, _raise_terminated)
        listener = daemon.open_endpoint(listen, checked.web, checked.limits, checked.reloads)
        if listener is None:
            return EXIT_FAILURE
        from agent.sources.sqlspec import parse_queries_in_child

        parse_queries_in_child()  # a long-running process: sqlglot checks the sql queries in a child, for good
        loaded = _load(config_path)
        if loaded is None:
            daemon.close_endpoint(listener.server)
            return EXIT_CONFIG
        from agent.app.runtime import Agent

        if state_file is None:
            log.warning("no --storage.state-file: availability windows and probe counters start empty at every "
                        "restart")
        agent = Agent(loaded, checked.shard, Path(state_file) if state_file else None, checked.save_every, workers)
    except _Terminated:
        log.info("SIGTERM received: stopping")
        if listener is not None:
            daemon.close_endpoint(listener.server)
        log.info("stopped")
        if previous is _raise_terminated:
            raise  # the demo's: it stops its lab
        return EXIT_OK
    except BaseException:
        if listener is not None:
            daemon.close_endpoint(listener.server)
        raise
    finally:
        if on_main:
            signal.signal(signal.SIGTERM, previous)
    return EXIT_OK if daemon.serve(agent, listener, before_exit) else EXIT_FAILURE


class RunOptions(NamedTuple):
    """``run``'s flags and web configuration, checked."""

    shard: Shard | None
    save_every: float
    web: WebConfigSource
    limits: Limits
    reloads: ReloadGuard


def _run_options(listen: str, web_config: str | None, shard_text: str | None, state_save_interval: str,
                 http: argparse.Namespace | None, workers: int) -> RunOptions | None:
    """``run``'s flags and web configuration, checked before anything opens; None (after saying why) if invalid."""
    shard = _shard(shard_text)
    if shard is False:
        return None
    try:
        parse_listen(listen)
    except ValueError as exc:
        print(f"error: --web.listen-address: {exc}", file=sys.stderr)
        return None
    try:
        save_every = parse_duration(state_save_interval)
    except ValueError as exc:
        print(f"error: --storage.state-save-interval: {exc}", file=sys.stderr)
        return None
    if not 1.0 <= save_every <= 3600.0:
        print("error: --storage.state-save-interval: between 1s and 1h", file=sys.stderr)
        return None
    if not 1 <= workers <= 64:
        print("error: --workers: between 1 and 64", file=sys.stderr)
        return None
    web = _load_web(web_config)
    if web is None:
        return None
    http_options = _http_options(http)
    if http_options is None:
        return None
    return RunOptions(shard, save_every, web, *http_options)


def _http_options(args: argparse.Namespace | None) -> tuple[Limits, ReloadGuard] | None:
    """The endpoint's limits and reload policy from the --web.* flags (defaults without them); None if invalid."""
    from agent.app.http import ReloadGuard
    from agent.app.webserver import Limits

    if args is None:
        return Limits(), ReloadGuard()
    if args.web_max_connections < 1:
        print("error: --web.max-connections: expected a positive number", file=sys.stderr)
        return None
    durations = {}
    for flag, value in (("--web.read-timeout", args.web_read_timeout),
                        ("--web.reload-min-interval", args.web_reload_min_interval)):
        try:
            durations[flag] = parse_duration(value)
        except ValueError as exc:
            print(f"error: {flag}: {exc}", file=sys.stderr)
            return None
    return (Limits(max_connections=args.web_max_connections, read_timeout=durations["--web.read-timeout"]),
            ReloadGuard(args.web_enable_lifecycle, durations["--web.reload-min-interval"]))


def _load_web(path: str | None) -> WebConfigSource | None:
    from agent.app.webconfig import WebConfigSource

    try:
        return WebConfigSource(path)
    except ConfigError as exc:
        _report(exc, path)
        return None


def cmd_hash_password(args: argparse.Namespace) -> int:
    """A bcrypt hash for basic_auth_users, from a password typed twice (or one line on stdin)."""
    import getpass

    from agent.app.webconfig import hash_password

    if sys.stdin.isatty():
        password = getpass.getpass("password: ")
        if getpass.getpass("again: ") != password:
            print("error: the passwords differ", file=sys.stderr)
            return EXIT_CONFIG
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        print("error: empty password", file=sys.stderr)
        return EXIT_CONFIG
    print(hash_password(password, args.cost))
    return EXIT_OK


def cmd_run(args: argparse.Namespace) -> int:
    return run_agent(args.config, args.listen, args.web_config_file, args.shard,
                     state_file=args.state_file, state_save_interval=args.state_save_interval, http=args,
                     workers=args.workers)


LAB_EXTRA = ("trustme",)  # what pyproject's lab extra installs: the simulated HTTPS portals' certificate chains


def _lab_installed(command: str) -> bool:
    """Whether the lab's own libraries are installed; if not, say which extra to install: they are not the
    agent's (a service installed without them stays lean), and `demo` there should not end in a traceback.
    The lab imports each simulator when the province needs it, so importing agent.lab alone proves nothing."""
    import importlib.util

    missing = [name for name in LAB_EXTRA if importlib.util.find_spec(name) is None]
    if missing:
        print(f"error: egov-agent {command} needs the lab extra ({missing[0]} is not installed): "
              f"pip install 'egov-agent[lab]'", file=sys.stderr)
        return False
    return True


def cmd_lab(args: argparse.Namespace) -> int:
    import asyncio  # not at the top: check-config never needs an event loop
    import ipaddress
    import os

    if not _lab_installed("lab"):
        return EXIT_FAILURE
    from agent.lab import prepare_environment, run_lab
    from collectors.lab_addresses import AddressPool

    prepare_environment(Path(args.config))  # the lab provides the secrets it simulates (EGOV_SNMP_COMMUNITY...)
    if _load(args.config) is None:
        return EXIT_CONFIG
    try:
        control = parse_listen(args.control)
    except ValueError as exc:
        print(f"error: --control: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    try:
        network = ipaddress.IPv4Network(args.network)
        AddressPool(network)
    except ValueError as exc:
        print(f"error: --network: {exc}", file=sys.stderr)
        return EXIT_CONFIG

    async def watch_parent(stop: asyncio.Event) -> None:
        """Stop when the process that started the lab (the demo) is gone, however it went (SIGKILL too)."""
        while not stop.is_set():
            if os.getppid() != args.parent_pid:
                log.warning("lab: the process that started it (pid %d) is gone: stopping", args.parent_pid)
                stop.set()
            await asyncio.sleep(PARENT_POLL_SECONDS)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        watcher = loop.create_task(watch_parent(stop)) if args.parent_pid else None
        try:
            await run_lab(Path(args.config), Path(args.write_config), control, args.down_ratio, stop, network)
        finally:
            if watcher is not None:
                watcher.cancel()

    try:
        asyncio.run(main())
    except OSError as exc:  # an address in use (the control port, a simulator's): the lab has closed
        print(f"error: the lab could not start: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    return EXIT_OK


class _Terminated(BaseException):
    """SIGTERM, raised where the demo is (a BaseException, so no ``except Exception`` swallows it), so that
    its finally stops the lab: the default action would end the process on the spot and orphan the lab."""


def _raise_terminated(signum: int, frame: object) -> None:
    raise _Terminated


class _DemoLab:
    """The demo's ``egov-agent lab`` child. ``stop()`` (idempotent, from any thread) ends it and then deletes
    any nftables table it left: a lab that had to be killed cannot delete its own."""

    def __init__(self, argv: list[str]) -> None:
        self.process = subprocess.Popen(argv)
        self._lock = threading.Lock()
        self._stopped = False

    def stop(self) -> None:
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
            process = self.process
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(LAB_STOP_SECONDS)
                except subprocess.TimeoutExpired:
                    log.error("demo: the lab (pid %d) did not stop within %gs: killing it", process.pid,
                              LAB_STOP_SECONDS)
                    process.kill()
                    process.wait()
            from collectors.icmp.lab import remove_stale_tables

            remove_stale_tables(process.pid)  # its tables only; nothing if it closed cleanly


def cmd_demo(args: argparse.Namespace) -> int:
    """Start the lab for the simulated province, then the agent monitoring it."""
    import ipaddress
    import os

    province = Path(args.province)
    if not province.exists():
        print(f"error: {province}: no such province configuration", file=sys.stderr)
        return EXIT_CONFIG
    if not _lab_installed("demo"):
        return EXIT_FAILURE
    from collectors.lab_addresses import AddressPool

    try:
        AddressPool(ipaddress.IPv4Network(args.network))  # the lab's own check, before starting it
    except ValueError as exc:
        print(f"error: --network: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    try:
        parse_listen(args.control)
    except ValueError as exc:
        print(f"error: --control: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    workdir = Path(tempfile.mkdtemp(prefix="egov-demo-"))
    agent_config = workdir / "agent.yml"
    previous = signal.signal(signal.SIGTERM, _raise_terminated)  # from here on, SIGTERM runs the finally
    lab: _DemoLab | None = None
    try:
        lab = _DemoLab([sys.executable, "-m", "agent.app.cli", "lab", "--config", str(province),
                        "--write-config", str(agent_config), "--down-ratio", str(args.down_ratio),
                        "--network", args.network, "--control", args.control, "--parent-pid", str(os.getpid()),
                        "--log.level", args.log_level, "--log.format", args.log_format])
        log.info("demo: starting the simulated province %s on %s (lab pid %d); this takes a few seconds",
                 province.name, args.network, lab.process.pid)
        started = time.monotonic()
        deadline, next_word = started + LAB_START_SECONDS, started + 5
        while not agent_config.exists():
            if time.monotonic() > next_word:
                log.info("demo: the lab is still starting (%.0fs)", time.monotonic() - started)
                next_word += 5
            if lab.process.poll() is not None:
                print(f"error: the lab exited with code {lab.process.returncode}", file=sys.stderr)
                return EXIT_FAILURE
            if time.monotonic() > deadline:
                print(f"error: the lab did not start within {LAB_START_SECONDS:g} s", file=sys.stderr)
                return EXIT_FAILURE
            time.sleep(0.1)
        log.info("demo: lab ready in %.1fs; starting the agent on %s (config %s)", time.monotonic() - started,
                 args.listen, agent_config)
        return run_agent(str(agent_config), args.listen, before_exit=lab.stop)
    except _Terminated:
        log.info("demo: SIGTERM received: stopping")
        return EXIT_OK
    finally:
        # A second SIGTERM or Ctrl-C must not cut the lab's stop short: it is bounded (LAB_STOP_SECONDS).
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        interrupt = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            if lab is not None:
                lab.stop()
            shutil.rmtree(workdir, ignore_errors=True)  # the agent configuration and anything beside it
        finally:
            for sig, handler in ((signal.SIGINT, interrupt), (signal.SIGTERM, previous)):
                if handler is not None:
                    signal.signal(sig, handler)


def _first_error(exc: ValueError) -> str:
    from pydantic import ValidationError

    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        return f"{where}: {first['msg'].removeprefix('Value error, ')}" if where else first["msg"]
    return str(exc)


def cmd_report(args: argparse.Namespace) -> int:
    """The KPI report for a period, from the history a Prometheus-compatible server keeps."""
    from agent.config.schema import QueryServer
    from exporters import report as reporting
    from exporters.report import windows

    loaded = _load(args.config, resolve_secrets=False)  # the devices' secrets are not the report's
    if loaded is None:
        return EXIT_CONFIG
    config = loaded.config
    try:
        if args.period and (args.date_from or args.date_to):
            raise windows.WindowError("--period and --from/--to exclude each other")
        if args.date_from or args.date_to:
            if not (args.date_from and args.date_to):
                raise windows.WindowError("--from and --to go together")
            window = windows.custom(args.date_from, args.date_to)
        else:
            window = windows.parse(args.period or "previous", config.reporting, config.province.timezone)
    except windows.WindowError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    configured = config.report.prometheus
    if configured is None and not args.prometheus:
        print("error: no query server: give --prometheus URL or report.prometheus.url in the configuration",
              file=sys.stderr)
        return EXIT_CONFIG
    spec = configured.model_dump() if configured is not None else {}  # secrets dump as their references
    if args.prometheus:
        spec["url"] = args.prometheus
    try:
        server = QueryServer.model_validate(spec)  # resolves the query API's own secrets, and only those
    except ValueError as exc:
        where = "--prometheus" if args.prometheus else f"{args.config}: report.prometheus"
        print(f"error: {where}: {_first_error(exc)}", file=sys.stderr)
        return EXIT_CONFIG
    try:
        built = reporting.build(loaded, server, window, simulated=args.simulated)
    except (reporting.QueryError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    if args.output == "-" and args.format in ("md", "json"):
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / f"report.{args.format}"
            reporting.write(built, args.format, args.lang, out)
            sys.stdout.write(out.read_text(encoding="utf-8"))
        return EXIT_OK
    if args.output in (None, "-"):
        folder = Path(args.output_dir or config.report.output_dir or ".")
        output = folder / reporting.default_name(built, args.format, args.lang)
    else:
        output = Path(args.output)
    try:
        reporting.write(built, args.format, args.lang, output)
    except (OSError, RuntimeError) as exc:
        print(f"error: cannot write {output}: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    plan = built.counts(built.plan)
    print(f"wrote {output}: {built.window} ({built.start.isoformat()} to {built.last_day.isoformat()}"
          f"{'' if built.complete else ', to date'}); plan targets met {plan['met']}, not met {plan['not_met']}, "
          f"not judged {plan['not_judged']}, no data {plan['no_data']}; {len(built.queries)} queries")
    return EXIT_OK


def cmd_rules(args: argparse.Namespace) -> int:
    import yaml

    from exporters.rules import build_rules

    loaded = _load(args.config, resolve_secrets=False)  # rules never need a secret
    if loaded is None:
        return EXIT_CONFIG
    text = ("# Generated by egov-agent rules from " + str(loaded.source) + "; regenerate, do not edit.\n"
            + yaml.safe_dump(build_rules(loaded, job=args.job, evaluation_interval=args.evaluation_interval,
                                        alert_for=args.alert_for, runbook_base=args.runbook_base),
                             allow_unicode=True, sort_keys=False, width=120))
    if args.output == "-":
        sys.stdout.write(text)
    else:
        Path(args.output).write_text(text, encoding="utf-8")
        print(f"wrote {args.output}")
    return EXIT_OK


def _installed_package_dirs() -> list[Path]:
    import site
    import sysconfig

    paths = {sysconfig.get_paths()[k] for k in ("purelib", "platlib")} | set(site.getsitepackages())
    return [Path(p).resolve() for p in paths]


def cmd_dashboards(args: argparse.Namespace) -> int:
    from exporters.grafana import write_all

    loaded = _load(args.config, resolve_secrets=False)
    if loaded is None:
        return EXIT_CONFIG
    output = Path(args.output).resolve()
    # An installed package's directory is no place for a province's files: the next upgrade deletes them.
    for packages in _installed_package_dirs():
        if output == packages or packages in output.parents:
            print(f"error: --output {args.output}: inside the installed packages ({packages}); "
                  f"choose a directory of your own, e.g. /var/lib/grafana/dashboards/egov-agent", file=sys.stderr)
            return EXIT_CONFIG
    try:
        written = write_all(loaded.config, output, job=args.job)
    except OSError as exc:
        print(f"error: --output {args.output}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_FAILURE
    for path in written:
        print(f"wrote {path}")
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="egov-agent", description=__doc__.splitlines()[0])
    version = f"egov-agent {__version__}"
    parser.add_argument("--version", action="version", version=version)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--version", action="version", version=version)  # `egov-agent run --version` too
    common.add_argument("--log.level", "--log-level", dest="log_level", action=_Store, default="info",
                        choices=["debug", "info", "warning", "error"], help="(default info)")
    common.add_argument("--log.format", "--log-format", dest="log_format", action=_Store, default="plain",
                        choices=["plain", "json"], help="plain, or one JSON object per line (default plain)")
    common.add_argument("--log.rate-limit", "--log-rate-limit", dest="log_rate_limit", action=_Store,
                        default=DEFAULT_RATE, metavar="BURST/WINDOW",
                        help=f"at most BURST similar messages per WINDOW, then a summary "
                             f"(default {DEFAULT_RATE}; 0: off)")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("run", parents=[common], help="run the agent and serve /metrics")
    p.add_argument("--config", required=True)
    p.add_argument("--web.listen-address", "--listen", dest="listen", action=_Store, default=f"0.0.0.0:{DEFAULT_PORT}",
                   metavar="HOST:PORT", help=f"where to serve /metrics (default :{DEFAULT_PORT})")
    p.add_argument("--shard", metavar="I/N", help="probe only shard I of N of the units (the sums add up)")
    p.add_argument("--workers", type=int, default=1, metavar="N",
                   help="probe in N worker processes, units split between them (default 1: on the main loop; "
                        "one per core past ~10,000 links)")
    p.add_argument("--web.config.file", dest="web_config_file", metavar="FILE",
                   help="TLS and basic authentication, in the Prometheus exporter-toolkit format")
    p.add_argument("--storage.state-file", dest="state_file", metavar="FILE",
                   help="keep probe counters and availability history here across restarts (SQLite; "
                        "the service uses /var/lib/egov-agent/state.db)")
    p.add_argument("--storage.state-save-interval", dest="state_save_interval", default="15s", metavar="DURATION",
                   help="how often the state file is written (default 15s: a crash loses at most this)")
    p.add_argument("--web.enable-lifecycle", dest="web_enable_lifecycle", action="store_true",
                   help="allow POST /-/reload (off by default, as in Prometheus; SIGHUP always reloads)")
    p.add_argument("--web.reload-min-interval", dest="web_reload_min_interval", default="5s", metavar="DURATION",
                   help="at most one POST /-/reload per this interval; sooner gets 429 (default 5s)")
    p.add_argument("--web.max-connections", dest="web_max_connections", type=int, default=64, metavar="N",
                   help="requests being read or answered at once (default 64); past it the connection that has "
                        "waited longest for the rest of its request makes room. Connections that sent nothing yet, "
                        "or wait for room, are held apart without a thread, up to 4 times as many")
    p.add_argument("--web.read-timeout", dest="web_read_timeout", default="10s", metavar="DURATION",
                   help="for a client to complete its TLS handshake and send a whole request (default 10s)")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("check-config", parents=[common], help="validate a configuration and list every error")
    p.add_argument("file")
    p.add_argument("--skip-secrets", action="store_true",
                   help="check secret references for form only, without reading the variables and files")
    p.add_argument("--web.config.file", dest="web_config_file", metavar="FILE", help="also check this web config")
    p.set_defaults(func=cmd_check_config)

    p = sub.add_parser("hash-password", parents=[common], help="bcrypt hash for basic_auth_users of the web config")
    p.add_argument("--cost", type=int, default=10, choices=range(4, 16), metavar="4..15")
    p.set_defaults(func=cmd_hash_password)

    p = sub.add_parser("once", parents=[common], help="collect once, print the KPI table or exposition")
    p.add_argument("--config", required=True)
    p.add_argument("--format", default="table", choices=["table", "prometheus", "openmetrics"])
    p.add_argument("--shard", metavar="I/N", help="probe only shard I of N of the units")
    p.set_defaults(func=cmd_once)

    p = sub.add_parser("report", parents=[common],
                       help="the quarterly or annual KPI report (docx, xlsx, pdf, md, json) from Prometheus history")
    p.add_argument("--config", required=True)
    p.add_argument("--prometheus", metavar="URL", help="the query API (Prometheus or VictoriaMetrics); "
                   "default: report.prometheus.url")
    p.add_argument("--period", help="2026-Q4, 2026, 2026-H1 or previous (the last quarter that ended; default)")
    p.add_argument("--from", dest="date_from", metavar="YYYY-MM-DD", help="a range of days instead of --period")
    p.add_argument("--to", dest="date_to", metavar="YYYY-MM-DD")
    p.add_argument("--format", default="docx", choices=["docx", "xlsx", "pdf", "md", "json"])
    p.add_argument("--lang", default="vi", choices=["vi", "en"])
    p.add_argument("--output", "-o", help="file to write ('-': standard output, md and json only); "
                   "default: a name with the province, period and format in --output-dir")
    p.add_argument("--output-dir", help="folder for the default name (default: report.output_dir, or here)")
    p.add_argument("--simulated", action="store_true",
                   help="mark the report as made from simulated data (demonstrations, training)")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("rules", parents=[common], help="write Prometheus recording and alerting rules")
    p.add_argument("--config", required=True)
    p.add_argument("--output", "-o", default="-", help="file to write (default: standard output)")
    p.add_argument("--job", default="egov-agent", help="the Prometheus job that scrapes the agents")
    p.add_argument("--evaluation-interval", help="override every group's interval (e.g. 5s for a demonstration)")
    p.add_argument("--alert-for", help="override every alert's 'for' duration (e.g. 10s for a demonstration)")
    p.add_argument("--runbook-base", default="docs/runbooks",
                   help="where runbook_url points: the runbooks' folder or docs URL (default: the repository path "
                        "docs/runbooks; each alert links <base>/<Alert>.md)")
    p.set_defaults(func=cmd_rules)

    p = sub.add_parser("dashboards", parents=[common],
                       help="write the Grafana dashboards and provisioning files for a province's configuration")
    p.add_argument("--config", required=True, help="the province configuration the dashboards follow")
    p.add_argument("--output", "-o", default=DEFAULT_DASHBOARDS,
                   help=f"directory to write (default: {DEFAULT_DASHBOARDS} under the current directory)")
    p.add_argument("--job", default="egov-agent", help="the Prometheus job that scrapes the agents (agents up)")
    p.set_defaults(func=cmd_dashboards)

    p = sub.add_parser("demo", parents=[common], help="the simulated province and an agent monitoring it")
    p.add_argument("--web.listen-address", "--listen", dest="listen", action=_Store,
                   default=f"127.0.0.1:{DEFAULT_PORT}", metavar="HOST:PORT",
                   help=f"where the demo's agent serves /metrics (default 127.0.0.1:{DEFAULT_PORT})")
    p.add_argument("--province", default=str(DEFAULT_PROVINCE))
    p.add_argument("--down-ratio", type=float, default=0.03, help="share of simulated targets down at start")
    p.add_argument("--network", default="127.77.0.0/16", help="loopback range for the simulated devices")
    p.add_argument("--control", default="127.0.0.1:0", metavar="HOST:PORT",
                   help="the lab's fault-injection API (default: a free port on 127.0.0.1, in the log)")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("lab", parents=[common], help="start the simulated province on loopback")
    p.add_argument("--config", required=True, help="province configuration to simulate")
    p.add_argument("--write-config", required=True, help="where to write the agent configuration")
    p.add_argument("--control", default="127.0.0.1:0", help="HOST:PORT of the fault-injection API")
    p.add_argument("--network", default="127.77.0.0/16", help="loopback range for the simulated devices")
    p.add_argument("--down-ratio", type=float, default=0.03)
    p.add_argument("--parent-pid", type=int, default=0, metavar="PID",
                   help="stop when this process, the lab's parent, is gone (the demo passes its own)")
    p.set_defaults(func=cmd_lab)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        setup_logging(args.log_level, args.log_format, args.log_rate_limit)
    except ValueError as exc:
        print(f"error: --log.rate-limit: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    for old in dict.fromkeys(getattr(args, "old_spellings", None) or []):
        log.warning("%s is the old spelling of %s, which replaces it in the next release", old, OLD_SPELLINGS[old])
    try:
        return args.func(args)
    except ProbeNotAllowed as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except KeyboardInterrupt:
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
