"""The ``muse`` command line: the only layer that imports every other one (serving included)."""
