"""Model bundles: what ``muse export`` writes and the scoring server loads.

Import the parts directly: :mod:`muse.export.bundle_format` (the on-disk format, no torch, read by
the server) and :mod:`muse.export.bundle_writer` (builds a bundle from a model; imports torch).
This package module itself imports nothing, so the server can read bundles without pulling in
model or training code.
"""
