"""Which SNMP reply belongs to which request: the receive path shared by the snmp, power and mcu collectors.

pysnmp matches an answer to its request by request id (v1arch) or msgID (the v3arch engine) alone,
and draws both from a counter. So one device answering with a shifted id (buggy firmware, or a
spoofer on the WAN who saw one of our ids) completed another device's request: 8 healthy routers
read down, and once a reboot was counted on all of them. Here a reply is accepted only

* from the transport address its request went to,
* for v2c (v1arch), with the community and SNMP version the request carried and as a Response PDU,
* for a request id (v2c) or msgID (v3, and v2c through the engine) drawn at random from the 31-bit
  range, so an id cannot be guessed from another one.

The v3arch engine already checks the rest (RFC 3412 7.2.12b: security model, name, level, context
engine id and name; USM: the keys and the time window); what it lacked is the source and the ids.

Anything else is dropped and counted by reason (``DROP_REASONS``) and the request keeps waiting for
its real reply: a stranger's packet can neither complete nor fail another device's request. Any
byte string may arrive on the socket, so decoding failures of every kind (pyasn1 raises TypeError
and KeyError as well as its own errors on some corruptions) count as ``malformed``, never reach
the event loop as a traceback.
"""

from __future__ import annotations

import contextlib
from typing import Any

from pysnmp.carrier.asyncio.dispatch import AsyncioDispatcher
from pysnmp.carrier.error import CarrierError
from pysnmp.hlapi.v1arch import asyncio as v1arch
from pysnmp.hlapi.v3arch import asyncio as v3arch
from pysnmp.proto import api, error, rfc1902
from pysnmp.proto.mpmod.cache import Cache
from pysnmp.proto.rfc3412 import MsgAndPduDispatcher

from collectors.snmp.decode import decode_reply
from collectors.snmp.drops import (
    Address,
    OnDrop,
    fresh_id,
    source_key,
)


def _decode_reply(whole: bytes) -> tuple[int, bytes, Any, int]:
    """(SNMP version, community, PDU, request id) of one v1/v2c message; raises on anything else."""
    version, community, pdu, request_id, _, _, _ = decode_reply(whole)
    return version, community, pdu, request_id


def _is_response(version: int, pdu: Any) -> bool:
    return bool(pdu.tagSet == api.PROTOCOL_MODULES[version].GetResponsePDU.tagSet)


class TransportDispatcher(AsyncioDispatcher):
    """pysnmp's asyncio transport dispatcher, quiet about datagrams that arrive after it closed.

    The socket hands each datagram to the loop with call_soon; one already queued when the collector
    closes (a reload, the end of a round of tests) found its transport unregistered and raised
    CarrierError, a traceback in the log per late answer."""

    def _callback_function(self, incomingTransport: Any, transportAddress: Any, incomingMessage: Any) -> None:
        with contextlib.suppress(CarrierError):
            super()._callback_function(incomingTransport, transportAddress, incomingMessage)


class MatchingDispatcher(v1arch.SnmpDispatcher):
    """pysnmp's v1/v2c dispatcher on one shared socket, with random request ids and replies matched
    to their request by source address, community and version as well as request id."""

    def __init__(self, transports: Any, on_drop: OnDrop) -> None:
        super().__init__(transports)
        self._on_drop = on_drop

    def send_pdu(self, authData: Any, transportTarget: Any, reqPdu: Any, cbFun: Any = None,
                 cbCtx: Any = None) -> int:
        module = api.PROTOCOL_MODULES[authData.mpModel]
        request_id = fresh_id(self._pendingReqs)
        module.apiPDU.set_request_id(reqPdu, request_id)
        super().send_pdu(authData, transportTarget, reqPdu, cbFun, cbCtx)
        state = self._pendingReqs.get(request_id)
        if state is not None:  # no reply can arrive before this: the socket is read by this same loop
            state["expected"] = (int(authData.mpModel), bytes(rfc1902.OctetString(authData.communityName)))
        return request_id

    def _recv_callback(self, snmpEngine: Any, transportDomain: Any, transportAddress: Any,
                       wholeMsg: bytes) -> bytes:
        source = source_key(transportAddress)
        try:
            version, community, pdu, request_id = _decode_reply(wholeMsg)
        except Exception:  # bytes from the network: whatever fails to decode is malformed
            self._on_drop("malformed", source)
            return b""
        state = self._pendingReqs.get(request_id)
        if state is None or not _is_response(version, pdu):
            self._on_drop("unknown_request", source)
            return b""
        if source_key(state["transportTarget"].transport_address) != source:
            self._on_drop("wrong_source", source)
            return b""
        if state.get("expected") != (version, community):
            self._on_drop("wrong_community", source)
            return b""
        del self._pendingReqs[request_id]
        self.transport_dispatcher.job_finished(id(self))
        if state["cbFun"]:
            state["cbFun"](self, request_id, None, pdu, state["cbCtx"])
        return b""


class _Inbound:
    """The source of the datagram the engine is processing now, for the caches' source check."""

    source: Address | None = None


class _MatchingCache(Cache):
    """The v3arch engine's outstanding-request cache, with random msgIDs and a reply accepted only from
    the address its request went to (the engine looks entries up by msgID alone)."""

    def __init__(self, inbound: _Inbound, on_drop: OnDrop) -> None:
        super().__init__()
        self._inbound = inbound
        self._on_drop = on_drop

    def new_message_id(self) -> int:
        return fresh_id(self._Cache__msgIdIndex)

    def pop_by_message_id(self, msgId: Any) -> Any:
        entry = self._Cache__msgIdIndex.get(msgId)
        source = self._inbound.source
        if entry is not None and source is not None and source_key(entry[0]["transportAddress"]) != source:
            self._on_drop("wrong_source", source)
            raise error.ProtocolError("reply from another address than the request went to")
        if entry is None and source is not None:
            self._on_drop("unknown_request", source)
        return super().pop_by_message_id(msgId)

    def pop_by_send_pdu_handle(self, sendPduHandle: Any) -> None:
        """Release of a request that timed out or was cancelled: not a reply, so no source to check."""
        msg_id = self._Cache__sendPduHandleIdx.get(sendPduHandle)
        if msg_id is not None:
            Cache.pop_by_message_id(self, msg_id)


class _MatchingMessageDispatcher(MsgAndPduDispatcher):
    def __init__(self, inbound: _Inbound, on_drop: OnDrop) -> None:
        super().__init__()
        self._inbound = inbound
        self._on_drop = on_drop

    def receive_message(self, snmpEngine: Any, transportDomain: Any, transportAddress: Any,
                        wholeMsg: bytes) -> Any:
        source = self._inbound.source = source_key(transportAddress)
        garbage = self._garbage_seen(snmpEngine)
        try:
            return super().receive_message(snmpEngine, transportDomain, transportAddress, wholeMsg)
        except Exception:  # the rest must not reach the loop as a traceback
            garbage = -1
            return None
        finally:
            self._inbound.source = None
            # pysnmp drops undecodable messages itself, counting them without saying whose they were.
            if garbage < 0 or self._garbage_seen(snmpEngine) != garbage:
                self._on_drop("malformed", source)

    @staticmethod
    def _garbage_seen(snmpEngine: Any) -> int:
        parse_errors, bad_versions = snmpEngine.get_mib_builder().import_symbols(
            "__SNMPv2-MIB", "snmpInASNParseErrs", "snmpInBadVersions")
        return int(parse_errors.syntax) + int(bad_versions.syntax)


def matching_engine(on_drop: OnDrop) -> v3arch.SnmpEngine:
    """A v3arch SnmpEngine whose message processing (v1, v2c and v3) uses random msgIDs and accepts a
    reply only from the address its request went to."""
    inbound = _Inbound()
    engine = v3arch.SnmpEngine(msgAndPduDsp=_MatchingMessageDispatcher(inbound, on_drop))
    engine.register_transport_dispatcher(TransportDispatcher())
    for model in engine.message_processing_subsystems.values():
        model._cache = _MatchingCache(inbound, on_drop)
    return engine
