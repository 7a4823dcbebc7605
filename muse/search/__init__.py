"""GSU search: exact cosine top-K of candidates against a user's lifelong history.

One implementation, shared by the ranking model (training, evaluation) and the scoring server.
"""

from muse.search.embedding_table import EmbeddingTable
from muse.search.search_result import SearchResult

__all__ = ["EmbeddingTable", "SearchResult"]
