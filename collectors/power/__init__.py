"""The power kind: UPS and rack PDUs over SNMP."""

from collectors.api import KindDescriptor

DESCRIPTOR = KindDescriptor(
    kind="power",
    collector="collectors.power.probe:PowerCollector",
    models="collectors.power.models",
    simulator="collectors.power.lab:PowerSimulator",
    rules="collectors.power.rules:rules",
    panels="collectors.power.panels:panels",
    order=80,
)
