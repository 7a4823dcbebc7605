"""Model bundles, generically: what ``muse export`` writes and the server loads.

:mod:`muse.export.bundle_format` holds the on-disk format every task shares (manifest, format
version, task, checksums; no torch). Each task writes its own files: ranking's writer lives in
:mod:`muse.ranking.export`. This package module itself imports nothing.
"""
