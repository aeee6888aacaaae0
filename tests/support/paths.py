"""Where the repository is and how to start the agent from it (tests, and the benchmarks under bench/)."""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
AGENT = [sys.executable, "-m", "agent.app.cli"]
