"""Item-to-item training: NT-Xent over co-engaged pairs on the generic loop, Recall@k, embeddings.

``training_job.train(config)`` runs ``item_pair_task.ItemPairTask`` (``muse train`` with
``task = "item_to_item"``); ``item_embeddings`` embeds a catalogue with a run's best weights
(``muse i2i embed``).
"""
