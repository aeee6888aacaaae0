"""A simulated video-conference MCU for ``mcu`` targets: an HTTP JSON API and an SNMP agent on loopback.

The MCU listens on the loopback address standing for its configured host. Over HTTP it serves
Jitsi Videobridge's statistics (``GET /colibri/stats``, the field names of JVB 2.x) and a generic
MCU status document (``GET /api/status``: conferences, ports, registrations, a meetings counter),
behind the credentials the target's ``auth`` names when they resolve in the lab's environment.
Over SNMPv2c it answers GET, GETNEXT and GETBULK for exactly the OIDs the target configures, the endpoint
ids as a table column (rows 1..n). Its figures move with time: a meeting starts every
``meeting_every`` seconds, one to four conferences run, and the registered endpoints are the lab's
SIP endpoints that currently answer (asked of the lab's SIP simulator, :class:`~collectors.simulation.Peers`).

States (``set_state``): ``up``; ``down`` (HTTP refused, SNMP silent); ``slow`` (answers
``slow_delay`` seconds late); ``error`` (HTTP 500, SNMP genErr); ``garbage`` (a body that is not
JSON, a datagram that is not SNMP); ``restart`` (the MCU reboots: its meetings counter starts again
from zero, then it is up).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import hmac
import json
import logging
import os
import random
import shutil
import tempfile
import threading
import time
import zlib
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from pyasn1.codec.ber import decoder, encoder
from pysnmp.proto import api, rfc1902, rfc1905
from pysnmp.proto.api.verdec import decode_message_version

from agent.domain.secrets import resolve
from collectors.lab_addresses import AddressPool
from collectors.simulation import DEFAULT_SEED, Peers, SimulatorBase
from collectors.snmp.lab import ensure_community

log = logging.getLogger(__name__)

STATES = ("up", "down", "slow", "error", "garbage", "restart")
_V2C = api.PROTOCOL_MODULES[api.SNMP_VERSION_2C]
_GET, _GETNEXT = _V2C.GetRequestPDU.tagSet, _V2C.GetNextRequestPDU.tagSet
_GETBULK = _V2C.GetBulkRequestPDU.tagSet
_GAUGES = ("active_conferences", "ports_in_use", "ports_total", "registered_endpoints", "largest_conference")


@dataclass
class Mcu:
    target_id: str
    host: str
    adapter: str
    started: float  # monotonic time of the (simulated) boot
    meetings_base: int  # the counter's value when the lab started (or 0 after a restart)
    counting_since: float
    ports_total: int
    state: str = "up"
    credentials: tuple[str, str] | None = None  # ("Basic"|"Bearer", expected credential)
    oids: dict[str, tuple[int, ...]] = field(default_factory=dict)
    community: bytes = b""
    http: ThreadingHTTPServer | None = None
    port: int = 0
    snmp: asyncio.DatagramTransport | None = None
    requests: int = 0
    changed: threading.Event = field(default_factory=threading.Event)


class McuSimulator(SimulatorBase):
    kind = "mcu"

    def __init__(self, pool: AddressPool, seed: int = DEFAULT_SEED, peers: Peers | None = None,
                 meeting_every: float = 20.0, slow_delay: float = 30.0) -> None:
        super().__init__(pool, seed, peers)
        self.meeting_every = meeting_every
        self.slow_delay = slow_delay
        self.mcus: dict[str, Mcu] = {}
        self._secret_dir: Path | None = None

    @staticmethod
    def prepare_environment() -> None:
        ensure_community()  # the MCU's SNMP agent answers the lab's community

    def registered(self) -> list[str]:
        """The lab's SIP endpoints that answer: what the MCU lists as registered (none without a lab)."""
        sip = self.peers.simulator("sip") if self.peers is not None else None
        registered = getattr(sip, "registered", None)  # the sip kind's simulator lists the endpoints that answer
        return list(registered()) if callable(registered) else []

    # -- what the MCU reports ---------------------------------------------------------------------

    def figures(self, mcu: Mcu, now: float | None = None) -> dict[str, Any]:
        now_ = time.monotonic() if now is None else now
        elapsed = now_ - mcu.started
        registered = self.registered()
        active = 1 + int(elapsed // 45) % 4 if registered else 0
        participants = min(mcu.ports_total, 2 * active + len(registered) // 4) if active else 0
        return {
            "active_conferences": active,
            "ports_in_use": participants,
            "ports_total": mcu.ports_total,
            "registered_endpoints": len(registered),
            "largest_conference": participants - 2 * (active - 1) if active else 0,
            "meetings_held": mcu.meetings_base + int((now_ - mcu.counting_since) // self.meeting_every),
            "endpoint_ids": registered,
            "uptime": elapsed,
        }

    def colibri_stats(self, mcu: Mcu) -> dict[str, Any]:
        """Jitsi Videobridge 2.x ``/colibri/stats`` (a subset of its keys, with their names and types)."""
        f = self.figures(mcu)
        sizes = [0] * 22
        if f["active_conferences"]:
            sizes[min(21, f["largest_conference"])] += 1
            sizes[2] += f["active_conferences"] - 1
        completed = max(0, f["meetings_held"] - f["active_conferences"])
        return {
            "current_timestamp": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3],
            "version": "2.3.lab-egov", "graceful_shutdown": False, "threads": 64,
            "conferences": f["active_conferences"], "participants": f["ports_in_use"],
            "largest_conference": f["largest_conference"], "conference_sizes": sizes,
            "total_conferences_created": f["meetings_held"], "total_conferences_completed": completed,
            "total_failed_conferences": 0, "total_partially_failed_conferences": 0,
            "total_participants": f["meetings_held"] * 5, "total_conference_seconds": completed * 2400,
            "videochannels": f["ports_in_use"], "endpoints_sending_video": f["ports_in_use"],
            "bit_rate_download": 1500 * f["ports_in_use"], "bit_rate_upload": 4200 * f["ports_in_use"],
            "packet_rate_download": 150 * f["ports_in_use"], "packet_rate_upload": 400 * f["ports_in_use"],
            "loss_rate_download": 0.0, "loss_rate_upload": 0.0, "rtt_aggregate": 12.5, "jitter_aggregate": 2.1,
        }

    def status_document(self, mcu: Mcu) -> dict[str, Any]:
        """A generic MCU's JSON status (nested objects, a list of registrations), for configured field paths."""
        f = self.figures(mcu)
        return {
            "system": {"model": "egov-lab MCU", "uptime_seconds": int(f["uptime"])},
            "conferences": {"active": f["active_conferences"], "largest": f["largest_conference"]},
            "ports": {"in_use": f["ports_in_use"], "total": f["ports_total"]},
            "registrations": [{"id": e, "protocol": "sip"} for e in f["endpoint_ids"]],
            "counters": {"conferences_held": f["meetings_held"]},
        }

    # -- the simulator interface of the lab -----------------------------------------------------

    async def add(self, target_id: str, params: dict[str, Any], up: bool) -> dict[str, Any]:
        adapter = str(params.get("adapter", "http"))
        configured = str(params.get("host") or urlsplit(str(params.get("url", ""))).hostname or target_id)
        host = self.pool.take(configured)
        rng = random.Random(f"{self.seed}:{target_id}")
        now = time.monotonic()
        mcu = Mcu(target_id, host, adapter, now - rng.uniform(3, 60) * 86400, rng.randint(800, 2400), now, 80)
        self.mcus[target_id] = mcu
        if adapter == "snmp":
            mcu.oids = {q: _oid(v) for q, v in (params.get("oids") or {}).items()}
            community = self._community(params.get("community"))
            mcu.community = community.encode()
            await self._open_snmp(mcu)
            out = {k: v for k, v in params.items() if k not in ("v3", "version")}
            out.update(host=host, port=mcu.port, community=f"file:{self._secret_file('community', community)}")
        else:
            mcu.credentials = _credentials(params.get("auth"))
            self._open_http(mcu)
            parts = urlsplit(str(params.get("url", "http://mcu/colibri/stats")))
            out = {**params, "url": urlunsplit(("http", f"{host}:{mcu.port}", parts.path or "/", parts.query, ""))}
            out.pop("ca_bundle", None)
            out.pop("tls_verify", None)
        if not up:
            await self.set_state(target_id, "down")
        return out

    async def set_state(self, target_id: str, state: str) -> None:
        mcu = self.mcus[target_id]
        if state not in STATES:
            raise ValueError(f"mcu targets can be {', '.join(STATES)}, not {state!r}")
        if state == "restart":
            mcu.started = mcu.counting_since = time.monotonic()
            mcu.meetings_base, state = 0, "up"
        if mcu.adapter == "http":
            if state == "down" and mcu.http is not None:
                await asyncio.to_thread(self._close_http, mcu)
            elif state != "down" and mcu.http is None:
                self._open_http(mcu)
        mcu.state = state
        mcu.changed.set()
        mcu.changed = threading.Event()

    def states(self) -> dict[str, str]:
        return {t: m.state for t, m in self.mcus.items()}

    async def close(self) -> None:
        for mcu in self.mcus.values():
            mcu.changed.set()
            if mcu.http is not None:
                await asyncio.to_thread(self._close_http, mcu)
            if mcu.snmp is not None:
                mcu.snmp.close()
                mcu.snmp = None
        if self._secret_dir is not None:
            shutil.rmtree(self._secret_dir, ignore_errors=True)
            self._secret_dir = None

    # -- secrets ----------------------------------------------------------------------------------

    def _community(self, reference: object) -> str:
        if isinstance(reference, str):
            with contextlib.suppress(ValueError):
                return resolve(reference).reveal()
        return ensure_community()

    def _secret_file(self, kind: str, value: str) -> Path:
        """The agent reads lab credentials from private files, so no configuration holds them in the clear."""
        if self._secret_dir is None:
            self._secret_dir = Path(tempfile.mkdtemp(prefix="egov-lab-mcu-"))
        path = self._secret_dir / f"{kind}-{zlib.crc32(value.encode()):08x}"
        if not path.exists():
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(value + "\n")
        return path

    # -- HTTP -------------------------------------------------------------------------------------

    def _open_http(self, mcu: Mcu) -> None:
        handler = type("Handler", (_Handler,), {"simulator": self, "mcu": mcu})
        server = _Server((mcu.host, mcu.port), handler)
        mcu.port = server.server_address[1]
        mcu.http = server
        threading.Thread(target=server.serve_forever, name=f"lab-mcu-{mcu.target_id}", daemon=True).start()

    @staticmethod
    def _close_http(mcu: Mcu) -> None:
        server, mcu.http = mcu.http, None
        if server is not None:
            mcu.changed.set()
            server.shutdown()
            server.server_close()

    # -- SNMP -------------------------------------------------------------------------------------

    async def _open_snmp(self, mcu: Mcu) -> None:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(lambda: _SnmpProtocol(self, mcu),
                                                           local_addr=(mcu.host, mcu.port))
        mcu.snmp = transport
        mcu.port = transport.get_extra_info("sockname")[1]

    def mib(self, mcu: Mcu) -> list[tuple[tuple[int, ...], Any]]:
        """The MCU's OIDs with their values now, sorted."""
        f = self.figures(mcu)
        rows: list[tuple[tuple[int, ...], Any]] = []
        for quantity, oid in mcu.oids.items():
            if quantity == "endpoint_ids":
                rows += [((*oid, i), rfc1902.OctetString(e)) for i, e in enumerate(f["endpoint_ids"], start=1)]
            elif quantity == "meetings_held":
                rows.append((oid, rfc1902.Counter32(f["meetings_held"] % 2**32)))
            elif quantity in _GAUGES:
                rows.append((oid, rfc1902.Gauge32(f[quantity])))
        return sorted(rows, key=lambda row: row[0])

    def respond(self, mcu: Mcu, data: bytes) -> bytes | None:
        if decode_message_version(data) != api.SNMP_VERSION_2C:
            return None
        message, _ = decoder.decode(data, asn1Spec=_V2C.Message())
        if bytes(_V2C.apiMessage.get_community(message)) != mcu.community:
            return None
        request = _V2C.apiMessage.get_pdu(message)
        response_message = _V2C.apiMessage.get_response(message)
        response = _V2C.apiMessage.get_pdu(response_message)
        varbinds = _V2C.apiPDU.get_varbinds(request)
        if mcu.state == "error":
            _V2C.apiPDU.set_error_status(response, 5)  # genErr
            _V2C.apiPDU.set_error_index(response, 1)
            _V2C.apiPDU.set_varbinds(response, varbinds)
            return encoder.encode(response_message)
        rows = self.mib(mcu)
        oids = [oid for oid, _ in rows]
        exact = dict(rows)
        out: list[tuple[Any, Any]] = []

        def following(oid: Any) -> tuple[Any, Any]:
            position = bisect_right(oids, tuple(oid))
            return rows[position] if position < len(rows) else (oid, rfc1905.endOfMibView)

        if request.tagSet == _GETBULK:  # RFC 3416 4.2.3: the non-repeaters once, then the rest row by row
            skip = max(0, int(_V2C.apiBulkPDU.get_non_repeaters(request)))
            repetitions = max(0, min(int(_V2C.apiBulkPDU.get_max_repetitions(request)), 100))
            out = [following(oid) for oid, _ in varbinds[:skip]]
            cursors = [oid for oid, _ in varbinds[skip:]]
            for _ in range(repetitions if cursors else 0):
                step = [following(oid) for oid in cursors]
                out += step
                cursors = [oid for oid, _ in step]
            _V2C.apiPDU.set_varbinds(response, out)
            return encoder.encode(response_message)
        for oid, _ in varbinds:
            key = tuple(oid)
            if request.tagSet == _GET:
                out.append((oid, exact.get(key, rfc1905.noSuchObject)))
            elif request.tagSet == _GETNEXT:
                position = bisect_right(oids, key)
                out.append(rows[position] if position < len(rows) else (oid, rfc1905.endOfMibView))
            else:
                return None  # SET: this lab MCU answers only what the collector asks
        _V2C.apiPDU.set_varbinds(response, out)
        return encoder.encode(response_message)


class _SnmpProtocol(asyncio.DatagramProtocol):
    def __init__(self, simulator: McuSimulator, mcu: Mcu) -> None:
        self.simulator = simulator
        self.mcu = mcu

    def datagram_received(self, data: bytes, addr: tuple) -> None:
        mcu = self.mcu
        if mcu.state == "down" or mcu.snmp is None:
            return
        if mcu.state == "garbage":
            response: bytes | None = b"\x30\x03garbage, not BER"
        else:
            try:
                response = self.simulator.respond(mcu, data)
            except Exception as exc:  # PyAsn1Error and friends: garbage must not stop the MCU
                log.debug("lab mcu %s: undecodable request: %s", mcu.target_id, exc)
                return
        if response is None:
            return
        mcu.requests += 1
        delay = self.simulator.slow_delay if mcu.state == "slow" else 0.0
        asyncio.get_running_loop().call_later(delay, _send, mcu.snmp, response, addr)


def _send(transport: asyncio.DatagramTransport, data: bytes, addr: tuple) -> None:
    if not transport.is_closing():
        transport.sendto(data, addr)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    simulator: McuSimulator
    mcu: Mcu

    def log_message(self, format: str, *args: object) -> None:
        log.debug("lab mcu %s: " + format, self.mcu.target_id, *args)

    def do_GET(self) -> None:
        mcu = self.mcu
        mcu.requests += 1
        if mcu.state == "slow":
            mcu.changed.wait(self.simulator.slow_delay)
        if not self._authorised():
            self._send(401, b'{"error": "unauthorised"}', [("WWW-Authenticate", 'Basic realm="mcu"')])
            return
        path = urlsplit(self.path).path
        if mcu.state == "error":
            self._send(500, b'{"error": "internal"}')
        elif mcu.state == "garbage":
            self._send(200, b"<html>MCU web console</html>", content_type="text/html")
        elif path == "/colibri/stats":
            self._send(200, json.dumps(self.simulator.colibri_stats(mcu)).encode())
        elif path == "/api/status":
            self._send(200, json.dumps(self.simulator.status_document(mcu)).encode())
        else:
            self._send(404, b'{"error": "not found"}')

    def _authorised(self) -> bool:
        expected = self.mcu.credentials
        if expected is None:
            return True
        given = self.headers.get("Authorization", "")
        return hmac.compare_digest(given.encode(), f"{expected[0]} {expected[1]}".encode())

    def _send(self, status: int, body: bytes, headers: Sequence[tuple[str, str]] = (),
              content_type: str = "application/json;charset=UTF-8") -> None:
        self.close_connection = True  # one request per connection: a "down" MCU refuses the next probe
        self.send_response(status)
        self.send_header("Connection", "close")
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)


def _credentials(auth: object) -> tuple[str, str] | None:
    """What the Authorization header must say, if the target's credentials resolve in the lab."""
    if not isinstance(auth, dict):
        return None
    try:
        if auth.get("kind") == "basic":
            password = resolve(auth.get("password")).reveal()
            token = base64.b64encode(f"{auth.get('username', '')}:{password}".encode()).decode()
            return ("Basic", token)
        if auth.get("kind") == "bearer":
            return ("Bearer", resolve(auth.get("token")).reveal())
    except ValueError:
        return None
    return None


def _oid(value: object) -> tuple[int, ...]:
    return tuple(int(p) for p in str(value).strip().lstrip(".").split("."))
