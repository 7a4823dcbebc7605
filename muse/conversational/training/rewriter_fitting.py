"""Fine-tuning the LLM rewriter on rewrite targets (the synthetic dialogues carry them).

Causal-LM cross-entropy on the target's tokens only (the prompt is context, not something to
learn to write), AdamW, seeded batches. The rewriter's model is trained in place and left in
eval mode; ``save_rewriter`` writes the weights ``rewriter.checkpoint`` loads.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from features.dialogues import Turn
from muse.conversational.models.query_rewriter import LlmRewriter
from muse.core.atomic_write import atomic_file

IGNORED = -100  # cross_entropy's ignore_index: prompt and padding positions


def rewrite_batch(
    rewriter: LlmRewriter, dialogues: Sequence[Sequence[Turn]], targets: Sequence[str]
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """input_ids (B, T), attention_mask (B, T) and labels (B, T) (IGNORED outside the targets),
    right-padded, of each prompt followed by its target and end marker."""
    tokenizer = rewriter.tokenizer
    rows, label_rows = [], []
    for turns, target in zip(dialogues, targets, strict=True):
        prompt = tokenizer(rewriter.prompt(turns), add_special_tokens=False)["input_ids"]
        answer = tokenizer(rewriter.target(target), add_special_tokens=False)["input_ids"]
        if not answer or answer[-1] != rewriter.end_id:
            answer = [*answer, rewriter.end_id]
        rows.append(prompt + answer)
        label_rows.append([IGNORED] * len(prompt) + answer)
    width = max(len(row) for row in rows)
    input_ids = torch.full((len(rows), width), rewriter.pad_id, dtype=torch.long)
    attention = torch.zeros((len(rows), width), dtype=torch.long)
    labels = torch.full((len(rows), width), IGNORED, dtype=torch.long)
    for index, (row, label) in enumerate(zip(rows, label_rows, strict=True)):
        input_ids[index, : len(row)] = torch.tensor(row)
        attention[index, : len(row)] = 1
        labels[index, : len(label)] = torch.tensor(label)
    return input_ids, attention, labels


def fit_rewriter(
    rewriter: LlmRewriter,
    dialogues: Sequence[Sequence[Turn]],
    targets: Sequence[str],
    steps: int,
    batch_size: int = 8,
    learning_rate: float = 5e-4,
    seed: int = 0,
    progress: bool = False,
) -> list[float]:
    """Train ``rewriter``'s LM for ``steps`` batches; returns each step's loss."""
    if len(dialogues) != len(targets) or not dialogues:
        raise ValueError("fit_rewriter needs as many rewrite targets as dialogues, at least one")
    model = rewriter.model
    generator = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)
    torch.manual_seed(int(torch.randint(0, 2**31 - 1, (1,), generator=generator)))
    optimiser = torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad], lr=learning_rate
    )
    model.train()
    losses = []
    bar = tqdm(range(steps), desc="fine-tuning the rewriter", unit="step", disable=not progress)
    for _ in bar:
        chosen = rng.choice(len(dialogues), size=min(batch_size, len(dialogues)), replace=False)
        input_ids, attention, labels = rewrite_batch(
            rewriter, [dialogues[i] for i in chosen], [targets[i] for i in chosen]
        )
        device = rewriter.device
        logits = model(input_ids=input_ids.to(device), attention_mask=attention.to(device)).logits
        # Position t predicts token t + 1.
        loss = F.cross_entropy(
            logits[:, :-1].flatten(0, 1).float(),
            labels[:, 1:].flatten().to(device),
            ignore_index=IGNORED,
        )
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        losses.append(loss.detach().item())
        bar.set_postfix(loss=f"{losses[-1]:.3f}")
    model.eval()
    return losses


def save_rewriter(rewriter: LlmRewriter, path: str | Path) -> None:
    """The fine-tuned LM's weights, written atomically (``rewriter.checkpoint`` reads them)."""
    with atomic_file(path) as temporary:
        torch.save({"model": rewriter.model.state_dict()}, temporary)
