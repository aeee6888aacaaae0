"""What the tests share beside their fixtures: real peers, the agent as a process, exposition parsing and
the province builder. Tests import from here, never from ``conftest`` (which holds fixtures and hooks only)."""
