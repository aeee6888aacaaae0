"""The http kind: portals and web applications over HTTP(S) via pycurl."""

from collectors.api import KindDescriptor

DESCRIPTOR = KindDescriptor(
    kind="http",
    collector="collectors.http.probe:HttpCollector",
    models="collectors.http.models",
    simulator="collectors.http.lab:HttpSimulator",
    rules="collectors.http.rules:rules",
    panels="collectors.http.panels:panels",
    order=30,
)
