"""egov-agent: measures a province's e-government infrastructure against its IT plan's KPIs."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("egov-agent")
except PackageNotFoundError:  # running from a source tree without installing
    __version__ = "0.0.0+source"
