"""A minimal BER codec for the SNMPv2c messages of the steady-state poll, without pyasn1 objects.

pyasn1 builds a typed object tree per message: profiled on the agent, its type objects and BER
decoding were over half of the SNMP CPU. A v2c answer to a GET or GETBULK has one fixed shape, so
this module reads it straight from the bytes into plain values, and writes a request once per
device, leaving only the request id to patch in (``encode`` writes whole messages: the lab's answers).

It is strict on purpose: any message outside the shape it knows (another version or PDU, an
indefinite or a constructed string encoding, a high tag number, a value type or range it does not
know, a trailing byte) raises ``Refused``; the caller then decodes it with pysnmp, which either
accepts it (the same values) or calls it malformed. It never guesses. ``tests/test_snmp_ber.py``
checks it against pysnmp's decoder on generated and mutated messages.

Decoded values: INTEGER, Counter32, Gauge32, TimeTicks, Counter64 as ``int``; OCTET STRING,
IpAddress, Opaque as ``bytes``; OBJECT IDENTIFIER as a tuple of ints; NULL and the exceptions
noSuchObject, noSuchInstance, endOfMibView as ``None``. The tag (the identifier octet) says which.
"""

from __future__ import annotations

from typing import NamedTuple

# Identifier octets (class | form | number).
INTEGER, OCTET_STRING, NULL, OBJECT_IDENTIFIER, SEQUENCE = 0x02, 0x04, 0x05, 0x06, 0x30
IP_ADDRESS, COUNTER32, GAUGE32, TIMETICKS, OPAQUE, COUNTER64 = 0x40, 0x41, 0x42, 0x43, 0x44, 0x46
NO_SUCH_OBJECT, NO_SUCH_INSTANCE, END_OF_MIB_VIEW = 0x80, 0x81, 0x82
GET, GETNEXT, RESPONSE, SET, GETBULK, INFORM, TRAP2, REPORT = 0xA0, 0xA1, 0xA2, 0xA3, 0xA5, 0xA6, 0xA7, 0xA8
V2C = 1

_INT32 = (-(2**31), 2**31 - 1)
_UINT32 = (0, 2**32 - 1)
# The ranges pysnmp's types enforce (rfc1902, rfc1905): a value outside is malformed there.
_INT_RANGES = {INTEGER: _INT32, COUNTER32: _UINT32, GAUGE32: _UINT32, TIMETICKS: _UINT32, COUNTER64: (0, 2**64 - 1)}
_STRING_SIZES = {OCTET_STRING: (0, 65535), IP_ADDRESS: (4, 4), OPAQUE: (0, 2**31)}
_NULLS = frozenset((NULL, NO_SUCH_OBJECT, NO_SUCH_INSTANCE, END_OF_MIB_VIEW))
_PDUS = frozenset((GET, GETNEXT, RESPONSE, SET, GETBULK, INFORM, TRAP2, REPORT))
_MAX_BINDINGS = 2**31 - 1
_MAX_INT_OCTETS = 16  # longer INTEGER contents are refused, not read (pysnmp's ranges stop at 9)
_MAX_ARC_OCTETS = 5  # an arc of 32 bits takes 5 octets of 7 bits

Oid = tuple[int, ...]
Value = int | bytes | Oid | None
VarBind = tuple[Oid, int, Value]


class Refused(ValueError):
    """The bytes are not a message this codec reads: decode them with pysnmp (which may accept them)."""


class Message(NamedTuple):
    version: int
    community: bytes
    pdu: int  # the PDU's tag: RESPONSE for an answer
    request_id: int
    error_status: int  # non-repeaters for a GETBULK request
    error_index: int  # max-repetitions for a GETBULK request
    varbinds: list[VarBind]


def _length(data: bytes, pos: int, end: int) -> tuple[int, int]:
    """(content start, content end) of the TLV whose length octets start at ``pos``."""
    if pos >= end:
        raise Refused("truncated length")
    first = data[pos]
    pos += 1
    if first < 0x80:
        size = first
    elif 0x81 <= first <= 0x84:
        count = first - 0x80
        if pos + count > end:
            raise Refused("truncated length")
        size = int.from_bytes(data[pos:pos + count], "big")
        pos += count
    else:  # 0x80: indefinite length; more than 4 length octets: not for a datagram
        raise Refused("unsupported length form")
    stop = pos + size
    if stop > end:
        raise Refused("content past its container")
    return pos, stop


def _expect(data: bytes, pos: int, end: int, tag: int) -> tuple[int, int]:
    if pos >= end or data[pos] != tag:
        raise Refused(f"expected tag {tag:#x}")
    return _length(data, pos + 1, end)


def _integer(data: bytes, start: int, stop: int, bounds: tuple[int, int]) -> int:
    if not 0 < stop - start <= _MAX_INT_OCTETS:
        raise Refused("INTEGER length")
    value = int.from_bytes(data[start:stop], "big", signed=True)
    if not bounds[0] <= value <= bounds[1]:
        raise Refused("INTEGER out of range")
    return value


def _read_integer(data: bytes, pos: int, end: int, bounds: tuple[int, int]) -> tuple[int, int]:
    start, stop = _expect(data, pos, end, INTEGER)
    return _integer(data, start, stop, bounds), stop


_OID_CACHE: dict[bytes, Oid] = {}
_OID_CACHE_SIZE = 1 << 17  # a device's few names repeat every poll: 2,620 routers × 8 names fit


def _oid(data: bytes, start: int, stop: int) -> Oid:
    raw = data[start:stop]
    oid = _OID_CACHE.get(raw)
    if oid is None:
        oid = _read_oid(raw)
        if len(_OID_CACHE) >= _OID_CACHE_SIZE:
            _OID_CACHE.clear()
        _OID_CACHE[raw] = oid
    return oid


def _read_oid(raw: bytes) -> Oid:
    if not raw:
        raise Refused("empty OBJECT IDENTIFIER")
    arcs: list[int] = []
    arc = 0
    octets = 0
    for byte in raw:
        if octets == 0 and byte == 0x80:
            raise Refused("leading 0x80 in an OID arc")
        arc = (arc << 7) | (byte & 0x7F)
        octets += 1
        if byte < 0x80:
            arcs.append(arc)
            arc = octets = 0
        elif octets >= _MAX_ARC_OCTETS:
            raise Refused("OID arc too long")
    if octets:
        raise Refused("truncated OID arc")
    head = arcs[0]
    if head < 40:
        return (0, *arcs)
    if head < 80:
        return (1, head - 40, *arcs[1:])
    return (2, head - 80, *arcs[1:])


def _value(data: bytes, pos: int, end: int) -> tuple[int, Value, int]:
    if pos >= end:
        raise Refused("missing value")
    tag = data[pos]
    start, stop = _length(data, pos + 1, end)
    bounds = _INT_RANGES.get(tag)
    if bounds is not None:
        return tag, _integer(data, start, stop, bounds), stop
    sizes = _STRING_SIZES.get(tag)
    if sizes is not None:
        if not sizes[0] <= stop - start <= sizes[1]:
            raise Refused("string size")
        return tag, data[start:stop], stop
    if tag in _NULLS:
        if stop != start:
            raise Refused("NULL with content")
        return tag, None, stop
    if tag == OBJECT_IDENTIFIER:
        return tag, _oid(data, start, stop), stop
    raise Refused(f"value tag {tag:#x}")


def decode(data: bytes, as_agent: bool = False) -> Message:
    """The v2c message in ``data``; raises ``Refused`` for anything else (see the module's docstring).

    ``as_agent``: read a request as an agent does (the lab's routers), where a GETBULK's
    max-repetitions may exceed its varbinds; a manager (pysnmp, the collectors) refuses that."""
    end = len(data)
    pos, stop = _expect(data, 0, end, SEQUENCE)
    if stop != end:
        raise Refused("bytes after the message")
    version, pos = _read_integer(data, pos, end, (V2C, V2C))
    start, pos = _expect(data, pos, end, OCTET_STRING)
    community = data[start:pos]
    if pos >= end or data[pos] not in _PDUS:
        raise Refused("PDU type")
    pdu = data[pos]
    pos, stop = _length(data, pos + 1, end)
    if stop != end:
        raise Refused("bytes after the PDU")
    request_id, pos = _read_integer(data, pos, end, _INT32)
    # error-status is unconstrained in pysnmp's PDU; non-repeaters (GETBULK) is 0..max-bindings.
    status_bounds = (0, _MAX_BINDINGS) if pdu == GETBULK else (-(2**127), 2**127)
    error_status, pos = _read_integer(data, pos, end, status_bounds)
    error_index, pos = _read_integer(data, pos, end, (0, _MAX_BINDINGS))
    pos, stop = _expect(data, pos, end, SEQUENCE)
    if stop != end:
        raise Refused("bytes after the varbinds")
    varbinds: list[VarBind] = []
    while pos < end:
        start, after = _expect(data, pos, end, SEQUENCE)
        name_start, name_stop = _expect(data, start, after, OBJECT_IDENTIFIER)
        name = _oid(data, name_start, name_stop)
        tag, value, value_stop = _value(data, name_stop, after)
        if value_stop != after:
            raise Refused("bytes after a varbind's value")
        varbinds.append((name, tag, value))
        pos = after
    if error_index > len(varbinds) and not (as_agent and pdu == GETBULK):  # pysnmp calls this malformed
        raise Refused("error-index past the varbinds")
    return Message(version, community, pdu, request_id, error_status, error_index, varbinds)


# -- requests -----------------------------------------------------------------------------------

ID_LOW, ID_HIGH = 2**24, 2**31 - 1  # request ids of exactly 4 content octets, so a template patches in place


def _tlv(tag: int, content: bytes) -> bytes:
    size = len(content)
    if size < 0x80:
        return bytes((tag, size)) + content
    octets = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes((tag, 0x80 | len(octets))) + octets + content


def _integer_content(value: int) -> bytes:
    """The minimal two's-complement octets of ``value`` (X.690 8.3.2)."""
    size = ((value if value >= 0 else ~value).bit_length() + 8) // 8
    return value.to_bytes(size, "big", signed=True)


def _encode_integer(value: int) -> bytes:
    return _tlv(INTEGER, _integer_content(value))


def _encode_value(tag: int, value: Value) -> bytes:
    if tag in _INT_RANGES:
        assert isinstance(value, int)
        return _tlv(tag, _integer_content(value))
    if tag in _STRING_SIZES:
        assert isinstance(value, bytes)
        return _tlv(tag, value)
    if tag == OBJECT_IDENTIFIER:
        assert isinstance(value, tuple)
        return encode_oid(value)
    if tag in _NULLS:
        return bytes((tag, 0))
    raise ValueError(f"no encoding for value tag {tag:#x}")


def encode(message: Message) -> bytes:
    """A v2c message (the lab's answers); the same bytes pyasn1's encoder writes for it."""
    varbinds = b"".join(_tlv(SEQUENCE, encode_oid(name) + _encode_value(tag, value))
                        for name, tag, value in message.varbinds)
    body = (_encode_integer(message.request_id) + _encode_integer(message.error_status)
            + _encode_integer(message.error_index) + _tlv(SEQUENCE, varbinds))
    return _tlv(SEQUENCE, _encode_integer(message.version) + _tlv(OCTET_STRING, message.community)
                + _tlv(message.pdu, body))


def encode_oid(oid: Oid) -> bytes:
    if len(oid) < 2 or oid[0] > 2 or (oid[0] < 2 and oid[1] >= 40) or min(oid) < 0:
        raise ValueError(f"not an encodable OID: {oid}")
    out = bytearray()
    for arc in (oid[0] * 40 + oid[1], *oid[2:]):
        chunk = [arc & 0x7F]
        arc >>= 7
        while arc:
            chunk.append(0x80 | (arc & 0x7F))
            arc >>= 7
        out += bytes(reversed(chunk))
    return _tlv(OBJECT_IDENTIFIER, bytes(out))


class Template(NamedTuple):
    """A request encoded once; ``with_id`` gives the datagram for one request id."""

    head: bytes
    tail: bytes

    def with_id(self, request_id: int) -> bytes:
        return self.head + request_id.to_bytes(4, "big") + self.tail


def request(community: bytes, pdu: int, oids: list[Oid], non_repeaters: int = 0, max_repetitions: int = 0,
            ) -> Template:
    """A v2c GET (or GETBULK, ``pdu=GETBULK``) of ``oids`` with NULL values, as a template."""
    varbinds = b"".join(_tlv(SEQUENCE, encode_oid(oid) + bytes((NULL, 0))) for oid in oids)
    marker = b"\x02\x04\x7f\xff\xff\xff"  # a 4-octet request id; its bytes are cut out below
    body = marker + _encode_integer(non_repeaters) + _encode_integer(max_repetitions) + _tlv(SEQUENCE, varbinds)
    whole = _tlv(SEQUENCE, _encode_integer(V2C) + _tlv(OCTET_STRING, community) + _tlv(pdu, body))
    at = whole.index(marker, len(whole) - len(body)) + 2
    return Template(whole[:at], whole[at + 4:])
