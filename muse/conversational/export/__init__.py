"""The conversational bundle: what the Converse service loads (see conversational_bundle_layout)."""
