"""Dialogues → retrieval examples: the dialogue so far at a user turn, rewritten, and its target."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
from tqdm import tqdm

from features.dialogues import Dialogue, Turn, user_turn_prefixes
from muse.conversational.models.query_rewriter import QueryRewriter
from muse.conversational.models.rewritten_query import RewrittenQuery

REWRITE_BATCH = 16


class DialogueExamples(NamedTuple):
    """Q examples: queries (the rewriter's output), target_rows (Q,) int64 catalogue rows,
    dialogue (Q,) int64 index into the dialogue list, turn (Q,) int64 the 1-based user turn,
    last (Q,) bool whether it is the dialogue's last user turn."""

    queries: list[RewrittenQuery]
    target_rows: np.ndarray
    dialogue: np.ndarray
    turn: np.ndarray
    last: np.ndarray

    def __len__(self) -> int:
        return len(self.queries)

    def subset(self, chosen: np.ndarray) -> DialogueExamples:
        return DialogueExamples(
            [self.queries[i] for i in chosen.tolist()],
            self.target_rows[chosen],
            self.dialogue[chosen],
            self.turn[chosen],
            self.last[chosen],
        )


def dialogue_examples(
    dialogues: Sequence[Dialogue],
    rewriter: QueryRewriter,
    row_of_item: dict[int, int],
    every_turn: bool,
    progress: bool = False,
    description: str = "rewriting",
) -> DialogueExamples:
    """One example per user turn (``every_turn``) or per dialogue (its last user turn)."""
    prefixes: list[tuple[Turn, ...]] = []
    targets, owner, turn_numbers, is_last = [], [], [], []
    for index, dialogue in enumerate(dialogues):
        steps = [prefix.turns for prefix in user_turn_prefixes(dialogue)]
        chosen = list(enumerate(steps, start=1)) if every_turn else [(len(steps), steps[-1])]
        for number, prefix in chosen:
            prefixes.append(prefix)
            targets.append(row_of_item[dialogue.target_item_id])
            owner.append(index)
            turn_numbers.append(number)
            is_last.append(number == len(steps))
    queries: list[RewrittenQuery] = []
    bar = tqdm(total=len(prefixes), desc=description, unit="query", disable=not progress)
    for start in range(0, len(prefixes), REWRITE_BATCH):
        chunk = prefixes[start : start + REWRITE_BATCH]
        queries += rewriter.rewrite(chunk)
        bar.update(len(chunk))
    bar.close()
    return DialogueExamples(
        queries,
        np.asarray(targets, dtype=np.int64),
        np.asarray(owner, dtype=np.int64),
        np.asarray(turn_numbers, dtype=np.int64),
        np.asarray(is_last, dtype=bool),
    )
