"""The mcu kind: the video-conference MCU and its endpoints (SNMP or its HTTP API)."""

from collectors.api import KindDescriptor

DESCRIPTOR = KindDescriptor(
    kind="mcu",
    collector="collectors.mcu.probe:McuCollector",
    models="collectors.mcu.models",
    simulator="collectors.mcu.lab:McuSimulator",
    rules="collectors.mcu.rules:rules",
    panels="collectors.mcu.panels:panels",
    order=50,
)
