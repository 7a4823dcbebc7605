"""Ranking model bundles: what ``muse export`` writes from a ranking checkpoint and the server loads.

Import the parts directly: :mod:`~muse.ranking.export.bundle_layout` (the bundle's files, no
torch), :mod:`~muse.ranking.export.serving_recipe` (what the server computes before the graph),
:mod:`~muse.ranking.export.bundle_writer` (a bundle from a model) and
:mod:`~muse.ranking.export.checkpoint_export` (a bundle from a training checkpoint). This package
module itself imports nothing, so the server never loads the writers or training code.
"""
