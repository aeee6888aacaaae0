"""The dns kind: a name of the province (a portal's, the mail's) asked of a DNS server, its answer checked.

Light on purpose: importing the package loads no dnspython, so finding the kinds and ``check-config`` cost
nothing (the models are collectors/dns/models.py); the probe, the lab's simulator, the alert rules and the
dashboard panels each live in their own module, imported when used.
"""

from collectors.api import KindDescriptor

DESCRIPTOR = KindDescriptor(
    kind="dns",
    collector="collectors.dns.probe:DnsCollector",
    models="collectors.dns.models",
    simulator="collectors.dns.lab:DnsSimulator",
    rules="collectors.dns.rules:rules",
    panels="collectors.dns.panels:panels",
)
