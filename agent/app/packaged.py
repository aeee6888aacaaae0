"""Where the files shipped beside the code are: ``config/`` in a checkout, ``agent/shipped/`` in a wheel.

pyproject.toml maps config/provinces, config/systemd and config/alertmanager into the wheel as the
packages ``agent.shipped.*``, so ``egov-agent demo`` finds its province from a wheel installed anywhere,
and a checkout (or an editable install) uses the files being edited.
"""

from __future__ import annotations

from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1]
CHECKOUT = PACKAGE.parent


def shipped(kind: str) -> Path:
    """The folder of shipped ``kind`` files (``provinces``, ``systemd``, ``alertmanager``)."""
    checkout = CHECKOUT / "config" / kind
    if (CHECKOUT / "pyproject.toml").is_file() and checkout.is_dir():
        return checkout
    return PACKAGE / "shipped" / kind
