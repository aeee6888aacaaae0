"""The http kind: portals and web applications over HTTP(S) via pycurl."""
