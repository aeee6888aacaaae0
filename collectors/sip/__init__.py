"""The sip kind: SIP OPTIONS to video-conference endpoints and gateways."""

from collectors.api import KindDescriptor

DESCRIPTOR = KindDescriptor(
    kind="sip",
    collector="collectors.sip.probe:SipCollector",
    models="collectors.sip.models",
    simulator="collectors.sip.lab:SipSimulator",
    panels="collectors.sip.panels:panels",
    order=40,
)
