"""See the package docstring of muse.conversational."""
