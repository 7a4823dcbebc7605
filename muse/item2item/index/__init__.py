"""The similar-item index: nearest items by embedding, exact or approximate (faiss), in a bundle."""
