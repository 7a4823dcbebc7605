"""Item encoders for item-to-item retrieval: NoteLLM-2 and its ablations, behind one interface.

Build::

    prompt = ItemPrompt(config.prompt, tokenizer)        # or load_tokenizer(path)
    batch = prompt.encode(items, images)                 # ItemBatch
    model = NoteLlm2(config)                             # ItemEncoderConfig
    output = model(batch)                                # ItemEmbeddings(multimodal, visual)

Stages, each a frozen config + a module: ``Backbone`` (``BackboneConfig``: random Llama/Qwen2 or
a model on disk, truncated to N layers), ``VisionEncoder`` (``VisionEncoderConfig``: frozen
EfficientNet-Lite0 or a tiny conv), ``Connector`` (``ConnectorConfig``: Q-Former + MLP),
``ItemPrompt`` (``PromptConfig``: mICL / single / text-only), ``LateFusion``.
"""
