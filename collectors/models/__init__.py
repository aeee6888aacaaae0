"""Collector kinds' configuration models, kept apart from the libraries their probes need.

Validating a configuration (``check-config``, a reload) needs each kind's Settings and Params, not
pysnmp, pycurl or httpx: the registry (collectors/__init__.py) reads the models here and imports a
collector itself only when an agent runs it.
"""
