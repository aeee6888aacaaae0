"""The sip kind: SIP OPTIONS to video-conference endpoints and gateways."""
