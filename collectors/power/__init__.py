"""The power kind: UPS and rack PDUs over SNMP."""
