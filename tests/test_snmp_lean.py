"""The v2c fast path's fallback decoder does not bring pysnmp's v1arch/v3arch dispatchers into the agent."""

from __future__ import annotations

import subprocess
import sys

# A reply the fast codec refuses (an indefinite BER length) that pysnmp reads: the
# fallback decodes it, and only pysnmp's message codec is imported for that.
CODE = """
import sys
from pysnmp.proto import api
from pyasn1.codec.ber import encoder
from collectors.snmp import v2c
module = api.PROTOCOL_MODULES[api.SNMP_VERSION_2C]
pdu = module.GetResponsePDU()
module.apiPDU.set_defaults(pdu)
module.apiPDU.set_request_id(pdu, 7)
module.apiPDU.set_varbinds(pdu, [((1, 3, 6, 1, 2, 1, 1, 3, 0), module.TimeTicks(42))])
message = module.Message()
module.apiMessage.set_defaults(message)
module.apiMessage.set_community(message, "public")
module.apiMessage.set_pdu(message, pdu)
plain = encoder.encode(message)
odd = b"\\x30\\x80" + plain[2:] + b"\\x00\\x00"  # the same message, its outer length indefinite
print(v2c.decode(odd).request_id, v2c.decode(plain).request_id,
      sorted(m for m in sys.modules if m.startswith(("pysnmp.hlapi", "collectors.snmp.replies"))))
"""


def test_a_refused_reply_is_decoded_without_the_snmp_engines() -> None:
    done = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["7", "7", "[]"]
