"""The ranking task (MUSE and its baselines): models, batch, training task and bundle export.

``models/`` the GSU selection, ESU and tower; ``batch.py`` what a model reads; ``training/`` the
task the generic loop (:mod:`muse.training`) trains; ``export/`` the ONNX bundle the server loads.
"""
