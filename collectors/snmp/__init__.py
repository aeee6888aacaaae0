"""The snmp kind: routers and switches over SNMP (a v2c fast path, pysnmp for the rest)."""

from collectors.api import KindDescriptor

DESCRIPTOR = KindDescriptor(
    kind="snmp",
    collector="collectors.snmp.probe:SnmpCollector",
    models="collectors.snmp.models",
    simulator="collectors.snmp.lab:SnmpSimulator",
    panels="collectors.snmp.panels:panels",
    order=20,
)
