"""The conversational task: semantic item IDs, a trie-constrained generative retriever, test-time
reranking (arXiv 2508.18132, TIGER's semantic IDs).

``semantic_ids/`` residual quantisation of item embeddings into ID tokens; ``models/`` the query
rewriter, the generative retriever with its prefix trie, and the reranker; ``training/`` the
retriever's training task and the dialogue evaluation.
"""
