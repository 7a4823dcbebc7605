"""The conversational service: Converse over a transport-free engine with session state."""
