"""The mcu kind: the video-conference MCU and its endpoints (SNMP or its HTTP API)."""
