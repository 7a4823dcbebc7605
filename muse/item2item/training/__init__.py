"""Item-to-item training: the contrastive loss over co-engaged item pairs (the task comes next)."""
