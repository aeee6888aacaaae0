"""The snmp kind: routers and switches over SNMP (a v2c fast path, pysnmp for the rest)."""
