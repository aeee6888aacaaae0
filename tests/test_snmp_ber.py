"""The fast BER codec (collectors/snmp_ber.py) against pysnmp's own decoder, on generated and mutated
messages: for every message the codec either gives exactly what pysnmp gives or refuses it (and the
fast path then asks pysnmp). Never a value pysnmp would not have given, never a message accepted
that pysnmp calls malformed. Bounded loops, fixed seeds: the same messages on every run."""

from __future__ import annotations

import random

import pytest
from pyasn1.codec.ber import encoder
from pysnmp.proto import api, rfc1902, rfc1905

from collectors.snmp import ber
from collectors.snmp.v2c import pysnmp_decode

V2C = api.PROTOCOL_MODULES[api.SNMP_VERSION_2C]
PDUS = {ber.RESPONSE: V2C.GetResponsePDU, ber.GET: V2C.GetRequestPDU, ber.GETNEXT: V2C.GetNextRequestPDU,
        ber.GETBULK: V2C.GetBulkRequestPDU, ber.REPORT: V2C.ReportPDU, ber.TRAP2: V2C.SNMPv2TrapPDU,
        ber.SET: V2C.SetRequestPDU, ber.INFORM: V2C.InformRequestPDU}
U32 = 2**32 - 1


def random_oid(rng: random.Random) -> tuple[int, ...]:
    first = rng.choice((0, 1, 2, 1, 1))
    second = rng.randrange(40) if first < 2 else rng.choice((rng.randrange(40), rng.randrange(2**20)))
    arcs = [rng.choice((rng.randrange(128), rng.randrange(2**14), rng.randrange(2**32), 0, 1, 127, 128, U32))
            for _ in range(rng.randrange(0, 18))]
    return (first, second, *arcs)


def random_value(rng: random.Random):
    kind = rng.randrange(14)
    edge = rng.random() < 0.3
    if kind == 0:
        return rfc1902.Integer(rng.choice((-(2**31), 2**31 - 1, 0, -1)) if edge else rng.randrange(-(2**31), 2**31))
    if kind in (1, 2):
        size = rng.choice((0, 1, 127, 128, 255, 256, 1000)) if edge else rng.randrange(40)
        return rfc1902.OctetString(bytes(rng.randrange(256) for _ in range(size)))
    if kind == 3:
        return rfc1902.ObjectIdentifier(random_oid(rng))
    if kind == 4:
        return rfc1902.IpAddress(bytes(rng.randrange(256) for _ in range(4)))
    if kind in (5, 6, 7, 8):
        cls = (rfc1902.Counter32, rfc1902.Gauge32, rfc1902.TimeTicks, rfc1902.Unsigned32)[kind - 5]
        return cls(rng.choice((0, U32, 2**31, 2**31 - 1)) if edge else rng.randrange(2**32))
    if kind == 9:
        return rfc1902.Counter64(rng.choice((0, 2**64 - 1, 2**63)) if edge else rng.randrange(2**64))
    if kind == 10:
        return rfc1902.Opaque(bytes(rng.randrange(256) for _ in range(rng.randrange(12))))
    nulls = (rfc1905.noSuchObject, rfc1905.noSuchInstance, rfc1905.endOfMibView, rfc1902.Null(""))
    return nulls[kind - 11 + rng.randrange(2)]


def random_message(rng: random.Random) -> bytes:
    tag = ber.RESPONSE if rng.random() < 0.7 else rng.choice(list(PDUS))
    pdu = PDUS[tag]()
    bulk = tag == ber.GETBULK
    (V2C.apiBulkPDU if bulk else V2C.apiPDU).set_defaults(pdu)
    V2C.apiPDU.set_request_id(pdu, rng.choice((rng.randrange(-(2**31), 2**31), rng.randrange(ber.ID_LOW, ber.ID_HIGH),
                                               0, 2**31 - 1, -(2**31))))
    varbinds = [(random_oid(rng), random_value(rng)) for _ in range(rng.choice((0, 1, 8, 8, rng.randrange(60))))]
    # an index past the varbinds (1 in 20) is malformed for pysnmp: the codec must refuse those
    index = rng.randrange(len(varbinds) + 1) if rng.random() < 0.95 else rng.choice((len(varbinds) + 1, 2**31 - 1))
    if bulk:
        V2C.apiBulkPDU.set_non_repeaters(pdu, rng.randrange(10))
        V2C.apiBulkPDU.set_max_repetitions(pdu, index)
    else:
        V2C.apiPDU.set_error_status(pdu, rng.choice((0, 0, 0, 2, 5, 16, 18)))
        V2C.apiPDU.set_error_index(pdu, index)
    (V2C.apiBulkPDU if bulk else V2C.apiPDU).set_varbinds(pdu, varbinds)
    message = V2C.Message()
    V2C.apiMessage.set_defaults(message)
    community = bytes(rng.randrange(256) for _ in range(rng.choice((0, 6, 12, 32, 200))))
    V2C.apiMessage.set_community(message, community)
    V2C.apiMessage.set_pdu(message, pdu)
    return encoder.encode(message)


def mutate(data: bytes, rng: random.Random) -> bytes:
    """Byte flips, truncation, a changed length or tag, long-form or indefinite lengths, junk."""
    out = bytearray(data)
    kind = rng.randrange(8)
    if kind == 0:
        for _ in range(rng.randint(1, 3)):
            out[rng.randrange(len(out))] = rng.randrange(256)
    elif kind == 1:
        if len(out) > 1:
            del out[rng.randrange(1, len(out)):]
    elif kind == 2:
        i = rng.randrange(1, len(out))
        out[i] = (out[i] + rng.choice((-2, -1, 1, 2, 0x80))) % 256
    elif kind == 3:
        out += bytes(rng.randrange(256) for _ in range(rng.randint(1, 4)))
    elif kind == 4:  # a tag into another known one
        tags = [i for i, b in enumerate(out) if b in (0x02, 0x04, 0x05, 0x06, 0x40, 0x41, 0x42, 0x43, 0x44, 0x46,
                                                      0x80, 0x81, 0x82, 0x30, 0xA2, 0x24)]
        if tags:
            out[rng.choice(tags)] = rng.choice((0x02, 0x04, 0x05, 0x06, 0x40, 0x41, 0x42, 0x43, 0x44, 0x45, 0x46,
                                                0x47, 0x80, 0x81, 0x82, 0x83, 0x30, 0x24, 0x22, 0xA2, 0xA4, 0x1F))
    elif kind == 5:  # a short length made long-form (0x81 n, still valid BER) or indefinite (0x80)
        i = rng.randrange(1, len(out))
        if out[i] < 0x80:
            out[i:i + 1] = rng.choice((bytes((0x81, out[i])), bytes((0x82, 0, out[i])), b"\x80"))
    elif kind == 6:  # an INTEGER content padded (a non-minimal encoding) or emptied
        ints = [i for i in range(len(out) - 1) if out[i] in (0x02, 0x41, 0x42, 0x43, 0x46) and out[i + 1] < 0x7F]
        if ints:
            i = rng.choice(ints)
            if rng.random() < 0.5:
                out[i + 1] += 1
                out[i + 2:i + 2] = rng.choice((b"\x00", b"\xff"))
            else:
                del out[i + 2:i + 2 + out[i + 1]]
                out[i + 1] = 0
    else:
        i = rng.randrange(len(out))
        out[i:i] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 3)))
    return bytes(out)


def reference(data: bytes) -> ber.Message | None:
    try:
        return pysnmp_decode(data)
    except Exception:
        return None


def fast(data: bytes) -> ber.Message | None:
    try:
        return ber.decode(data)
    except ber.Refused:
        return None


def test_generated_messages_decode_exactly_as_pysnmp() -> None:
    rng = random.Random(15)
    rejected = 0
    for _ in range(1500):
        data = random_message(rng)
        expected = reference(data)
        if expected is None:  # an error-index past the varbinds: pysnmp's malformed, so the codec refuses
            assert fast(data) is None, data.hex()
            rejected += 1
        else:
            assert ber.decode(data) == expected, data.hex()  # canonical BER of a v2c message: never refused
    assert 20 < rejected < 150, rejected


def test_mutated_messages_decode_as_pysnmp_or_are_refused() -> None:
    rng = random.Random(1515)
    seeds = [random_message(rng) for _ in range(300)]
    accepted = refused = both_reject = 0
    for n in range(8000):
        data = seeds[n % len(seeds)]
        for _ in range(rng.choice((1, 1, 2, 3))):
            data = mutate(data, rng)
            if not data:
                break
        got, expected = fast(data), reference(data)
        if got is not None:
            assert got == expected, data.hex()
            accepted += 1
        elif expected is None:
            both_reject += 1
        else:
            refused += 1
    # The mutations must exercise all three outcomes, or the test proves little.
    assert accepted > 500 and both_reject > 1000 and refused > 20, (accepted, refused, both_reject)


@pytest.mark.parametrize("hex_message", [
    # Counter32 of 2^32, Integer32 of 2^31, a negative Counter64, an IpAddress of 3 octets, NULL with content,
    # a v1 message, a Trap-v1 PDU, an indefinite length, a constructed OCTET STRING, an OID arc with 0x80
    "301e020101040170a216020101020100020100300b300906042b06010141050100000000",
    "301d020101040170a215020101020100020100300a300806042b0601010205" "0080000000",
    "3019020101040170a211020101020100020100300630040600" "4600",
    "301c020101040170a214020101020100020100300930070602" "2b0640030a0001",
    "301a020101040170a212020101020100020100300730050601" "2b05" "0100",
    "301a020100040170a212020101020100020100300730050601" "2b0500",
    "3080020101040170a212020101020100020100300730050601" "2b05000000",
    "301e020101040170a216020101020100020100300b30090604" "2b060101" "240104" "41",
    "301b020101040170a213020101020100020100300830060602" "2b80" "0500",
])
def test_unusual_encodings_agree_or_are_refused(hex_message: str) -> None:
    data = bytes.fromhex(hex_message)
    got, expected = fast(data), reference(data)
    assert got is None or got == expected


def test_a_request_template_is_what_pysnmp_reads() -> None:
    rng = random.Random(7)
    for _ in range(200):
        oids = [random_oid(rng) for _ in range(rng.randrange(1, 40))]
        bulk = rng.random() < 0.5
        shape = (rng.randrange(5), rng.randrange(len(oids) + 1)) if bulk else ()
        template = ber.request(bytes(rng.randrange(256) for _ in range(rng.randrange(60))),
                               ber.GETBULK if bulk else ber.GET, oids, *shape)
        request_id = rng.randrange(ber.ID_LOW, ber.ID_HIGH + 1)
        message = pysnmp_decode(template.with_id(request_id))
        assert message.request_id == request_id
        assert message.pdu == (ber.GETBULK if bulk else ber.GET)
        assert [name for name, _, _ in message.varbinds] == oids
        assert all(tag == ber.NULL for _, tag, _ in message.varbinds)
        assert ber.decode(template.with_id(request_id)) == message


def test_encoded_messages_are_the_bytes_pyasn1_writes() -> None:
    """The lab answers with ``ber.encode``: what pysnmp reads back, byte for byte what pyasn1 writes (but
    for negative INTEGERs, where pyasn1 writes a needless leading 0xff: -2^31 in 5 octets)."""
    rng = random.Random(99)
    for _ in range(1000):
        data = random_message(rng)
        message = reference(data)
        if message is None:
            continue
        encoded = ber.encode(message)
        assert reference(encoded) == message, data.hex()
        negative = message.request_id < 0 or any(tag == ber.INTEGER and value < 0  # type: ignore[operator]
                                                 for _, tag, value in message.varbinds)
        assert negative or encoded == data, data.hex()


def test_an_agent_reads_a_getbulk_whose_repetitions_exceed_its_varbinds() -> None:
    """pysnmp's manager side calls max-repetitions > varbinds malformed; an agent (the lab) must not."""
    data = ber.request(b"public", ber.GETBULK, [(1, 3, 6, 1, 2, 1, 2, 2, 1, 2)], 0, 25).with_id(ber.ID_LOW)
    assert fast(data) is None and reference(data) is None
    message = ber.decode(data, as_agent=True)
    assert (message.pdu, message.error_status, message.error_index) == (ber.GETBULK, 0, 25)
