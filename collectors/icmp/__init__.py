"""The icmp kind: ICMP echo to links and devices."""
