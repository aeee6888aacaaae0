"""``egov-agent run`` as a long-running service: HTTP endpoint, signals, reload and systemd notification.

- SIGTERM/SIGINT stop within seconds: probe loops cancelled, collectors closed, the listener closed.
- SIGHUP and ``POST /-/reload`` (with ``--web.enable-lifecycle``) re-read the configuration and the web
  configuration; a file that does not validate is refused with its errors logged (and returned to the
  HTTP caller) and the running configuration stays in force.
- Under systemd (``Type=notify``): READY=1 once every target has been probed once, RELOADING=1 and
  READY=1 around a reload, STOPPING=1, STATUS= lines, and WATCHDOG=1 sent by a task of the asyncio
  loop itself, so a loop stuck in a blocking call stops the pings and systemd restarts the agent.
"""

from __future__ import annotations

import asyncio
import faulthandler
import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, NamedTuple

from agent.app.http import AgentHTTPServer, Endpoints, ReloadGuard, parse_listen, serve_in_thread
from agent.app.notify import Notifier
from agent.app.webconfig import WebConfigSource
from agent.app.webserver import Limits
from agent.config.yamlsource import ConfigError
from agent.domain.logs import flush_suppressed
from agent.domain.netaddr import ProbeNotAllowed

if TYPE_CHECKING:  # the agent's own modules load after the listener opens
    from agent.app.runtime import Agent

log = logging.getLogger("egov-agent")
RELOAD_HTTP_TIMEOUT = 120.0  # seconds POST /-/reload waits for the reload to finish
STATUS_EVERY = 5.0
STOP_DEADLINE = 15.0  # seconds from SIGTERM to a forced exit (systemd's TimeoutStopSec is 20 s)
LINGER_SECONDS = 2.0  # seconds collectors' worker threads get to end after the agent stopped


def _title(agent: Agent) -> str:
    province = agent.loaded.config.province
    return f"{province.name_vi} ({province.code})"


class Service:
    def __init__(self, agent: Agent, server: AgentHTTPServer, http_thread: threading.Thread,
                 notifier: Notifier, before_exit: Callable[[], None] | None = None,
                 first_round_done: threading.Event | None = None) -> None:
        self.agent = agent
        self.server = server
        self.http_thread = http_thread
        self.notifier = notifier
        self.before_exit = before_exit
        self.stopped = threading.Event()  # serve() is done: the stop deadline no longer applies
        # Set once the first collection round is under way; /-/ready reads it from the HTTP threads.
        self.first_round_done = first_round_done or threading.Event()
        self._status = ""

    @property
    def ready(self) -> bool:
        return self.first_round_done.is_set()

    # -- reload --------------------------------------------------------------------------------
    async def reload(self, why: str) -> tuple[int, str]:
        """Re-read both configuration files; (HTTP status, text) for ``POST /-/reload``."""
        log.info("reloading the configuration (%s)", why)
        if self.ready:  # before READY=1, systemd is still waiting for the start: nothing to announce
            self.notifier.reloading()
        problems: list[str] = [f"{p} (web config)" for p in self.server.web.reload()]
        status = 200
        try:
            await self.agent.reload()
            self.server.endpoints.title = _title(self.agent)
        except ConfigError as exc:
            problems += [str(p) for p in exc.problems]
            for problem in exc.problems:
                log.error("configuration refused, the running one stays in force: %s", problem)
        except ProbeNotAllowed as exc:
            problems.append(str(exc))
            log.error("configuration refused, the running one stays in force: %s", exc)
        except Exception as exc:  # a bug: keep running what works, say so
            log.exception("reload failed, the running configuration stays in force")
            problems.append(f"internal error ({type(exc).__name__}); see the agent's log")
            status = 500
        finally:
            if self.ready:
                self.notifier.ready(self._status_text())
        if problems:
            return (status if status != 200 else 400,
                    "configuration refused, the running one stays in force:\n" + "\n".join(problems))
        return 200, f"configuration reloaded: {len(self.agent.targets)} targets\n"

    def reload_from_http(self, loop: asyncio.AbstractEventLoop) -> tuple[int, str]:
        future = asyncio.run_coroutine_threadsafe(self.reload("POST /-/reload"), loop)
        try:
            return future.result(RELOAD_HTTP_TIMEOUT)
        except TimeoutError:
            return 503, "reload still running\n"
        except RuntimeError:  # the loop is shutting down
            return 503, "the agent is stopping\n"

    # -- systemd -------------------------------------------------------------------------------
    def _status_text(self) -> str:
        scheduler = self.agent.scheduler
        up = scheduler.up_count() if scheduler is not None else 0
        reload = "" if self.agent.status.success else "; last reload FAILED, previous configuration in force"
        phase = "" if self.ready else "first collection round; "
        return f"{phase}{up}/{len(self.agent.targets)} targets up{reload}"

    def _healthy(self) -> bool:
        return self.http_thread.is_alive() and self.agent.exposition.alive()

    async def keepalive(self) -> None:
        """WATCHDOG=1 from this loop (a blocked loop sends none) and STATUS= when it changes."""
        interval = self.notifier.watchdog_interval or STATUS_EVERY
        since_status = STATUS_EVERY
        while True:
            if self.notifier.watchdog_interval:
                if self._healthy():
                    self.notifier.watchdog()
                else:
                    log.error("a worker thread died (http or render): withholding the watchdog ping")
            since_status += interval
            if since_status >= STATUS_EVERY:
                since_status = 0.0
                text = self._status_text()
                if text != self._status:
                    self._status = text
                    self.notifier.status(text)
            await asyncio.sleep(interval)

    async def first_round(self) -> None:
        # Render before /-/ready turns 200: the rendering a scraper reads then shows the whole first round
        # (the refresh thread's last one may be from before most of it, with its pause still running).
        try:
            await asyncio.to_thread(self.agent.exposition.refresh)
        except Exception:  # a render that fails must not keep the agent unready; the refresh thread logs its own
            log.exception("rendering /metrics at the end of the first round failed")
        self.first_round_done.set()
        self._status = self._status_text()
        self.notifier.ready(self._status)

    # -- main ----------------------------------------------------------------------------------
    async def main(self) -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        reloads: set[asyncio.Task] = set()

        def on_sighup() -> None:
            task = loop.create_task(self.reload("SIGHUP"))
            reloads.add(task)
            task.add_done_callback(reloads.discard)

        def on_stop(name: str) -> None:
            if not stop.is_set():
                log.info("%s received: stopping", name)
                self.notifier.stopping()
                threading.Thread(target=_exit_if_stuck, args=(self.stopped, self.before_exit),
                                 name="stop-deadline", daemon=True).start()
            stop.set()

        signals = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
        previous = {sig: signal.getsignal(sig) for sig in signals}  # the caller's (the demo's), given back after
        loop.add_signal_handler(signal.SIGTERM, on_stop, "SIGTERM")
        loop.add_signal_handler(signal.SIGINT, on_stop, "SIGINT")
        loop.add_signal_handler(signal.SIGHUP, on_sighup)
        self.server.endpoints.reload = lambda: self.reload_from_http(loop)
        keepalive = loop.create_task(self.keepalive(), name="keepalive")
        try:
            await self.agent.run(stop, self.first_round)
        finally:
            self.server.endpoints.reload = None
            for sig in signals:
                loop.remove_signal_handler(sig)
                handler = previous[sig]
                if handler is not None:
                    signal.signal(sig, handler)
            for task in (keepalive, *reloads):
                task.cancel()
            await asyncio.gather(keepalive, *reloads, return_exceptions=True)


def _exit_if_stuck(stopped: threading.Event, before_exit: Callable[[], None] | None = None) -> None:
    """A stop must end within STOP_DEADLINE whatever a collector does: past it, show where every thread is
    (for the bug report) and exit, after ``before_exit`` (the demo stops its lab there)."""
    if stopped.wait(STOP_DEADLINE):
        return  # serve() returned: whatever its caller does next is not the agent's stop
    log.error("stopping took longer than %gs: exiting now; thread stacks follow on stderr", STOP_DEADLINE)
    faulthandler.dump_traceback(all_threads=True)
    _forced_exit(1, before_exit)


def _forced_exit(code: int, before_exit: Callable[[], None] | None) -> None:
    """os._exit skips every finally and atexit handler of the process: run the caller's cleanup first."""
    try:
        if before_exit is not None:
            before_exit()
    finally:
        flush_suppressed()
        logging.shutdown()
        os._exit(code)


def _join_lingering_threads(budget: float, before_exit: Callable[[], None] | None = None) -> None:
    """Collectors' worker threads are not daemons (the interpreter would wait for them at exit): give them
    ``budget`` seconds to end, then leave without them rather than hang the stop."""
    deadline = time.monotonic() + budget
    for thread in threading.enumerate():
        if thread is threading.current_thread() or thread.daemon:
            continue
        thread.join(max(0.0, deadline - time.monotonic()))
        if thread.is_alive():
            log.warning("thread %s still running at exit: not waiting for it", thread.name)
            _forced_exit(0, before_exit)


class Listener(NamedTuple):
    server: AgentHTTPServer
    thread: threading.Thread  # serving it


def open_endpoint(listen: str, web: WebConfigSource, limits: Limits | None = None,
                  reloads: ReloadGuard | None = None) -> Listener | None:
    """The listener, opened before the configuration loads so that ``/-/healthy`` answers within a second of
    exec (the rest answers 503 until :func:`serve` attaches the agent); None if it cannot be opened.
    ``limits`` bound its connections; ``reloads`` says whether and how often HTTP may reload. The web
    configuration (TLS, basic auth) applies from the first request."""
    host, port = parse_listen(listen)
    try:
        server = AgentHTTPServer((host, port), Endpoints(None, "", lambda: False), web, limits, reloads)
    except OSError as exc:
        log.error("cannot listen on %s: %s", listen, exc.strerror or exc)
        return None
    thread = serve_in_thread(server)
    shown = host if ":" not in host else f"[{host}]"
    log.info("listening on %s://%s:%d/metrics (basic auth %s)", web.settings.scheme, shown,
             server.server_address[1], "on" if web.settings.auth else "off")
    return Listener(server, thread)


def close_endpoint(server: AgentHTTPServer) -> None:
    server.shutdown()
    server.server_close()


def serve(agent: Agent, listener: Listener, before_exit: Callable[[], None] | None = None) -> bool:
    """Attach the agent to the endpoint :func:`open_endpoint` opened and run until SIGTERM. ``before_exit``
    runs before any forced exit (a stop past STOP_DEADLINE, threads that linger), which skips the caller's
    own finally."""
    ready = threading.Event()  # the Service sets it after the first round; /-/ready answers 200 from then on
    server, thread = listener
    try:
        from exporters.status_page import render_for
        from exporters.unit_page import render_unit_for
    except BaseException:
        close_endpoint(server)
        raise
    endpoints = server.endpoints
    endpoints.title = _title(agent)
    endpoints.ready = ready.is_set
    endpoints.status = lambda: render_for(agent)
    endpoints.unit_page = lambda unit_id: render_unit_for(agent, unit_id)
    endpoints.first_round_pending = lambda: agent.store.first_round_pending
    agent.exposition.registry.register(server.stats)  # a collector by duck typing (prometheus_client's Protocol)
    endpoints.exposition = agent.exposition  # last: from here on the endpoint answers as the agent
    notifier = Notifier()
    service = Service(agent, server, thread, notifier, before_exit, ready)
    agent.exposition.start()
    try:
        try:
            asyncio.run(service.main())
        finally:
            notifier.stopping()
            agent.exposition.stop()
            close_endpoint(server)
            notifier.close()
            log.info("stopped")
            flush_suppressed()
        _join_lingering_threads(LINGER_SECONDS, before_exit)
    finally:
        service.stopped.set()
    return True
