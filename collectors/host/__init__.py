"""The host kind: the agent's own machine (CPU, memory, disks) via psutil."""

from collectors.api import KindDescriptor

DESCRIPTOR = KindDescriptor(
    kind="host",
    collector="collectors.host.probe:HostCollector",
    models="collectors.host.models",
    simulator="collectors.host.lab:HostSimulator",
    panels="collectors.host.panels:panels",
    order=70,
    network=False,  # reads the agent's own machine: no address to allow
)
