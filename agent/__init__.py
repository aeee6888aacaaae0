"""egov-agent: measures a province's e-government infrastructure against its IT plan's KPIs."""
