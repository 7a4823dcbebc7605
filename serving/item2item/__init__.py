"""The similar-items service: its servicer, transport-free engine, requests and config."""
