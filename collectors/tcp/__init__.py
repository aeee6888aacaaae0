"""The tcp kind: a TCP connect to a service port."""
