"""One training batch of the conversational task: B rewritten queries and their target items."""

from __future__ import annotations

from typing import NamedTuple

import torch

from muse.conversational.models.generative_retriever import QueryBatch
from muse.item2item.batch import ItemBatch


class ConversationBatch(NamedTuple):
    """queries: the retriever's input (B queries); query_items: the same queries as the encoder
    reads them; targets: the B target items (ItemBatch); labels: (B, L + 2) int64 the targets'
    semantic ID tokens then EOS, what the retriever learns to write."""

    queries: QueryBatch
    query_items: ItemBatch
    targets: ItemBatch
    labels: torch.Tensor
