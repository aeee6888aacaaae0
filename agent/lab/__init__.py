"""The simulated province: real peers on loopback standing in for a province's network.

``egov-agent lab`` reads a province configuration, starts a simulated peer for every target it can
simulate (on its own loopback address), and writes an agent configuration that is the province's
own with each target's address replaced by its simulator's. Units, KPIs and citations stay those
of the province. A small HTTP control API marks targets down or up while the lab runs, which is
how tests and the demo inject faults.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import os
import random
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

from agent.config.loading import load_config
from agent.config.yamlsource import load_document
from agent.lab.apps import AppsLab, ensure_source_secrets
from collectors import REGISTRY, resolve
from collectors.lab_addresses import LAB_NETWORK, AddressPool
from collectors.simulation import DEFAULT_SEED, Simulator, SimulatorClass

log = logging.getLogger(__name__)
CLOSE_TIMEOUT = 10.0  # seconds for one simulator to close before the lab gives up on it and goes on


def simulator_class(kind: str) -> SimulatorClass | None:
    """The simulator a kind's descriptor names, imported now; None for a kind the lab cannot simulate."""
    descriptor = REGISTRY.descriptor(kind)
    if descriptor is None or descriptor.simulator is None:
        return None
    found: SimulatorClass = resolve(descriptor.simulator)
    return found


class Lab:
    """Every simulator is the one its kind's descriptor names, constructed when the province first needs it
    (a target of the kind, or another simulator asking for it: :meth:`simulator`)."""

    def __init__(self, province_config: Path, down_ratio: float = 0.03, seed: int = DEFAULT_SEED,
                 network: ipaddress.IPv4Network = LAB_NETWORK) -> None:
        self.province_config = province_config
        self.down_ratio = down_ratio
        self.seed = seed
        self.random = random.Random(seed)
        self.pool = AddressPool(network)  # labs side by side need their own ranges (their nftables rules)
        self.simulators: dict[str, Simulator] = {}  # kind -> its simulator, in the order they were needed
        self._started: set[str] = set()
        self._constructing = threading.Lock()  # a simulator may ask for another from a server thread of its own
        self._fates: dict[str, bool] = {}
        self.owner: dict[str, Simulator] = {}  # target id -> simulator
        # Lab services stand in for what is not a target: the systems behind the province's sources:.
        self.services = [AppsLab(self.pool, seed)]
        self._closed = False

    def simulator(self, kind: str) -> Simulator | None:
        """The lab's simulator of ``kind``, constructed on first ask (what :class:`~collectors.simulation.Peers`
        promises the simulators); None if the kind has none."""
        with self._constructing:
            found = self.simulators.get(kind)
            if found is None:
                cls = simulator_class(kind)
                if cls is None:
                    return None
                found = self.simulators[kind] = cls(self.pool, self.seed, self)
            return found

    async def _started_simulator(self, kind: str) -> Simulator | None:
        simulator = self.simulator(kind)
        if simulator is not None and kind not in self._started:
            self._started.add(kind)
            await simulator.start()
        return simulator

    async def start(self) -> dict[str, Any]:
        """Start every simulator; return the agent configuration (as data) pointing at them. Should any
        fail to start, what was started is closed (its nftables table deleted) before the error propagates."""
        try:
            return await self._start()
        except BaseException:
            await self.close()
            raise

    async def _start(self) -> dict[str, Any]:
        prepare_environment(self.province_config)
        loaded = load_config(self.province_config)  # refuse to simulate an invalid province
        data = load_document(self.province_config).data
        self._plan_fates(data.get("targets", []))
        for target in data.get("targets", []):
            simulator = await self._started_simulator(target["collector"])
            if simulator is None:
                continue
            up = self._fate(target)
            target["params"] = await simulator.add(target["id"], dict(target.get("params", {})), up)
            self.owner[target["id"]] = simulator
        for service in self.services:
            await service.start(data, loaded.source.parent)
        manual = data.get("manual")
        if manual:
            manual["file"] = str(loaded.resolve_path(manual["file"]))
        data.setdefault("report", {})["simulated"] = True  # a report from the lab says so on its first page
        return data

    def _plan_fates(self, targets: list[dict[str, Any]]) -> None:
        """Choose which addresses start down: round(down_ratio × n) of each collector's addresses, so the
        demo's figures do not swing with the draw. Fates are per address: a router's ICMP and SNMP
        targets share it, so a dead router takes both down and its unit's link with them."""
        groups: dict[str, list[str]] = {}
        for target in targets:
            key = _address_key(target)
            if key not in self._fates and _simulates(target["collector"]):
                self._fates[key] = True
                groups.setdefault(target["collector"], []).append(key)
        for keys in groups.values():
            for key in self.random.sample(keys, round(self.down_ratio * len(keys))):
                self._fates[key] = False

    def _fate(self, target: dict[str, Any]) -> bool:
        return self._fates.get(_address_key(target), True)

    async def set_state(self, target_id: str, state: str) -> None:
        simulator = self.owner.get(target_id)
        if simulator is None:
            raise KeyError(target_id)
        await simulator.set_state(target_id, state)
        log.info("lab: %s is now %s", target_id, state)

    def states(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for simulator in list(self.simulators.values()):
            out.update(simulator.states())
        return out

    async def close(self) -> None:
        """Close every simulator and service, each even if another's close fails or hangs (then it is logged
        and given up after CLOSE_TIMEOUT). Those that change the machine (``close_first``: ICMP's nftables
        table) go first, so that nothing they made outlives the lab."""
        if self._closed:
            return
        self._closed = True
        order = sorted(list(self.simulators.items()), key=lambda item: not item[1].close_first)
        parts: list[tuple[str, Any]] = [*order, *((type(s).__name__, s) for s in self.services)]
        for name, part in parts:
            try:
                await asyncio.wait_for(part.close(), CLOSE_TIMEOUT)
            except TimeoutError:
                log.error("lab: closing %s took longer than %gs: giving up on it", name, CLOSE_TIMEOUT)
            except Exception:
                log.exception("lab: closing %s failed", name)


def _simulates(kind: str) -> bool:
    descriptor = REGISTRY.descriptor(kind)
    return descriptor is not None and descriptor.simulator is not None


def _address_key(target: dict[str, Any]) -> str:
    return str((target.get("params") or {}).get("host") or target["id"])


def prepare_environment(province_config: Path | None = None) -> None:
    """Secrets the province configuration names and the lab itself provides: those of the kinds it
    simulates (their ``prepare_environment``: the SNMP community...), and the credentials of the application
    systems its sources read. Without a configuration (or with one that does not parse), every kind's."""
    for kind in _kinds(province_config):
        cls = simulator_class(kind)
        if cls is not None:
            cls.prepare_environment()
    ensure_source_secrets(province_config)


def _kinds(province_config: Path | None) -> list[str]:
    """The kinds the province's collectors and targets name, or every kind."""
    try:
        data = load_document(province_config).data if province_config is not None else None
    except Exception:  # an invalid configuration is reported by the lab's own validation
        data = None
    if not isinstance(data, dict):
        return list(REGISTRY.descriptors)
    named = [*(data.get("collectors") or {})]
    named += [t.get("collector") for t in data.get("targets") or [] if isinstance(t, dict)]
    return [kind for kind in dict.fromkeys(named) if isinstance(kind, str)]


def write_config(data: dict[str, Any], path: Path) -> None:
    """Atomically, so that the file's existence tells a waiting process the lab is ready."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".lab-", suffix=".yml")
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write("# Generated by egov-agent lab: the province's configuration pointed at simulators on loopback.\n")
        yaml.safe_dump(data, out, allow_unicode=True, sort_keys=False)
    os.replace(tmp, path)


class _ControlHandler(BaseHTTPRequestHandler):
    lab: Lab
    loop: asyncio.AbstractEventLoop

    def log_message(self, format: str, *args: object) -> None:
        log.debug("lab control: " + format, *args)

    def _reply(self, status: int, payload: object) -> None:
        body = json.dumps(payload, ensure_ascii=False).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        if self.path.rstrip("/") == "/targets":
            self._reply(200, self.lab.states())
        else:
            self._reply(404, {"error": "not found"})

    def do_POST(self) -> None:
        # POST /targets/<id>/<state>
        parts = self.path.strip("/").split("/")
        if len(parts) != 3 or parts[0] != "targets":
            self._reply(404, {"error": "use POST /targets/<id>/<state>"})
            return
        future = asyncio.run_coroutine_threadsafe(self.lab.set_state(parts[1], parts[2]), self.loop)
        try:
            future.result(timeout=30)  # the lab's loop may be busy serving several agents
        except KeyError:
            self._reply(404, {"error": f"no simulated target {parts[1]!r}"})
        except ValueError as exc:
            self._reply(400, {"error": str(exc)})
        except Exception as exc:  # a simulator failed: answer, rather than drop the connection
            log.exception("lab control: setting %s to %s failed", parts[1], parts[2])
            self._reply(500, {"error": f"{type(exc).__name__}: {exc}"})
        else:
            self._reply(200, {parts[1]: parts[2]})


def start_control(lab: Lab, loop: asyncio.AbstractEventLoop, host: str, port: int) -> ThreadingHTTPServer:
    handler = type("Handler", (_ControlHandler,), {"lab": lab, "loop": loop})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="lab-control", daemon=True).start()
    return server


async def run_lab(province_config: Path, write_to: Path, control: tuple[str, int], down_ratio: float,
                  stop: asyncio.Event, network: ipaddress.IPv4Network = LAB_NETWORK) -> None:
    lab = Lab(province_config, down_ratio, network=network)
    server: ThreadingHTTPServer | None = None
    try:  # whatever ends the lab (a stop, an error at start such as its control port in use), it closes
        data = await lab.start()
        server = start_control(lab, asyncio.get_running_loop(), *control)
        host, port = str(server.server_address[0]), server.server_address[1]  # an AF_INET server: (str, int)
        write_config(data, write_to)
        (write_to.parent / (write_to.name + ".control")).write_text(f"http://{host}:{port}\n")
        print(f"lab ready: {len(lab.owner)} simulated targets, agent config {write_to}, "
              f"control http://{host}:{port}", flush=True)
        await stop.wait()
    finally:
        try:
            if server is not None:
                server.shutdown()
                server.server_close()
        finally:
            await lab.close()
