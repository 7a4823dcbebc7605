"""The ranking service: its servicer, transport-free engine, request features and client."""
