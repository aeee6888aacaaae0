"""The installed package's version (the source tree's when not installed)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("egov-agent")
except PackageNotFoundError:  # running from a source tree without installing
    __version__ = "0.0.0+source"
