"""The tcp kind: a TCP connect to a service port."""

from collectors.api import KindDescriptor

DESCRIPTOR = KindDescriptor(
    kind="tcp",
    collector="collectors.tcp.probe:TcpCollector",
    models="collectors.tcp.models",
    simulator="collectors.tcp.lab:TcpSimulator",
    rules="collectors.tcp.rules:rules",
    panels="collectors.tcp.panels:panels",
    order=60,
)
