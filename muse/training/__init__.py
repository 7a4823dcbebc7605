"""The generic training loop, shared by every task.

``train_task(task, settings, run_dir, resume=False)`` (:mod:`muse.training.trainer`) trains any
:class:`~muse.training.training_task.TrainingTask` with the generic ``[training]`` settings
(:mod:`muse.training.training_config`): seeded init, AdamW on dense layers and row-wise Adagrad on
ID tables, DistributedModelParallel under torchrun, atomic checkpoints with exact resume after
kill -9, early stopping on the task's validation score, tqdm progress, TensorBoard, and
``config.toml`` / ``metrics.json`` / ``checkpoints/{last,best}.pt`` in the run directory.

Tasks own their training code (ranking: :mod:`muse.ranking.training`); nothing here imports a
task. This package module itself imports nothing, so a task's config can embed
``TrainingConfig`` without loading torch.
"""
