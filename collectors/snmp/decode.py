"""One v1/v2c SNMP message decoded by pysnmp's own codec: the v2c fast path's fallback and reference.

Apart from ``collectors.snmp.replies`` because that module builds pysnmp's v1arch and v3arch
dispatchers (~16 MiB of pysnmp the v2c fast path never needs): a single reply the fast codec refuses
(a device's odd encoding, the lab's garbage) must not bring them into an agent without SNMPv3.
"""

from __future__ import annotations

from typing import Any

from pyasn1.codec.ber import decoder
from pysnmp.proto import api, error
from pysnmp.proto.api import verdec


def decode_reply(whole: bytes) -> tuple[int, bytes, Any, int, int, int, list[tuple[Any, Any]]]:
    """(SNMP version, community, PDU, request id, error status, error index, varbinds) of one v1/v2c
    message; raises on anything else.

    Every field is read here, so a corruption deep in the PDU fails now, as ``malformed``, and not
    later inside pysnmp's callback."""
    version = int(verdec.decode_message_version(whole))
    module = api.PROTOCOL_MODULES[version]  # KeyError for v3 (or any other number) on the v2c socket
    message, rest = decoder.decode(whole, asn1Spec=module.Message())
    if rest:
        raise error.ProtocolError(f"{len(rest)} bytes after the SNMP message")
    pdu = module.apiMessage.get_pdu(message)
    community = bytes(module.apiMessage.get_community(message))
    request_id = int(module.apiPDU.get_request_id(pdu))
    status = int(module.apiPDU.get_error_status(pdu))
    index = int(module.apiPDU.get_error_index(pdu))
    varbinds = []
    for name, value in module.apiPDU.get_varbinds(pdu):
        tuple(name)
        value.tagSet  # noqa: B018 - an absent or unchosen value raises here
        varbinds.append((name, value))
    return version, community, pdu, request_id, status, index, varbinds
