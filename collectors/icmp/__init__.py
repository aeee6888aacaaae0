"""The icmp kind: ICMP echo to links and devices."""

from collectors.api import KindDescriptor

DESCRIPTOR = KindDescriptor(
    kind="icmp",
    collector="collectors.icmp.probe:IcmpCollector",
    models="collectors.icmp.models",
    simulator="collectors.icmp.lab:IcmpSimulator",
    panels="collectors.icmp.panels:panels",
    order=10,
)
