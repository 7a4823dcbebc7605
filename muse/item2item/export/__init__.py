"""Item-encoder bundles: what ``muse i2i export`` writes from a checkpoint and the server loads.

Import the parts directly: :mod:`~muse.item2item.export.encoder_bundle_layout` (the bundle's
files and its recipe, no torch), :mod:`~muse.item2item.export.new_item_inputs` (a new item's
prompt and image as the graph's inputs, no torch), :mod:`~muse.item2item.export.encoder_graph`
(the ONNX export) and :mod:`~muse.item2item.export.encoder_bundle_writer` (a bundle from an
encoder or a training checkpoint). This package module itself imports nothing, so the server
never loads the writers or training code.
"""
