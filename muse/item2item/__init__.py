"""The item-to-item task (NoteLLM-2): one embedding per item from its image and text.

``models/`` the item encoder (LLM backbone, frozen vision encoder, Q-Former connector, mICL
prompt, late fusion); ``batch.py`` what the encoder reads; ``training/`` the NT-Xent loss and
pair retrieval; ``index/`` the similar-item index.
"""
