"""The generative retriever on a tiny random T5 (d_model 32, 2 + 2 layers, 2 heads): trie-constrained
beam search returns only real items, with the exact teacher-forced log p(ID | query)."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from transformers import GenerationConfig

from muse.conversational.models.generative_retriever import (
    GenerativeRetriever,
    QueryBatch,
    latest_tokens,
)
from muse.conversational.models.generative_retriever_config import GenerativeRetrieverConfig
from muse.conversational.models.id_sequence_scores import exhaustive_id_scores
from muse.conversational.models.prefix_trie import EOS_TOKEN, NO_ROW, PAD_TOKEN, PrefixTrie

TEXT_VOCAB = 40
FEATURE_WIDTH = 8
LEVELS = 2
CODEBOOK = 4
MAX_COLLISION = 2
ID_VOCAB = 2 + LEVELS * CODEBOOK + MAX_COLLISION + 1
CONFIG = GenerativeRetrieverConfig(
    d_model=32,
    d_ff=64,
    num_heads=2,
    d_kv=16,
    encoder_layers=2,
    decoder_layers=2,
    image_tokens=2,
    max_query_tokens=8,
)


def _catalogue(seed: int = 0, count: int = 12) -> np.ndarray:
    """(N, L + 1) unique IDs in the semantic ID layout (collision tokens below MAX_COLLISION + 1)."""
    rng = np.random.default_rng(seed)
    seen: dict[tuple[int, ...], int] = {}
    rows: list[list[int]] = []
    while len(rows) < count:
        code = tuple(rng.integers(0, CODEBOOK, size=LEVELS).tolist())
        if seen.get(code, 0) > MAX_COLLISION:
            continue
        collision = seen.get(code, 0)
        seen[code] = collision + 1
        tokens = [2 + level * CODEBOOK + c for level, c in enumerate(code)]
        rows.append([*tokens, 2 + LEVELS * CODEBOOK + collision])
    return np.array(rows, dtype=np.int64)


def _queries(seed: int = 0, count: int = 3) -> QueryBatch:
    """``count`` queries of different lengths, every other one with a picture."""
    generator = torch.Generator().manual_seed(seed)
    width = 6
    tokens = torch.randint(1, TEXT_VOCAB, (count, width), generator=generator)
    lengths = torch.tensor([width - (i % width) for i in range(count)])
    mask = torch.arange(width)[None, :] < lengths[:, None]
    return QueryBatch(
        text_tokens=tokens.masked_fill(~mask, 0),
        text_mask=mask,
        image_features=torch.randn(count, FEATURE_WIDTH, generator=generator),
        has_image=torch.arange(count) % 2 == 0,
    )


def _model(seed: int = 0) -> GenerativeRetriever:
    torch.manual_seed(seed)
    return GenerativeRetriever(CONFIG, TEXT_VOCAB, FEATURE_WIDTH, ID_VOCAB).eval()


def _select(queries: QueryBatch, rows: list[int]) -> QueryBatch:
    index = torch.tensor(rows)
    return QueryBatch(*(part[index] for part in queries))


def test_forward_gives_teacher_forced_logits_per_label() -> None:
    model = _model()
    ids = torch.as_tensor(_catalogue())
    labels = torch.cat([ids[:3], torch.full((3, 1), EOS_TOKEN)], dim=1)
    logits = model(_queries(), labels)
    assert logits.shape == (3, LEVELS + 2, ID_VOCAB)
    assert model.model.lm_head.weight is not model.model.shared.weight  # untied head
    assert model.model.decoder.embed_tokens is model.model.shared


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("num_beams", [1, 3, 12, 20])
def test_every_beam_is_a_distinct_real_item_with_its_exact_log_probability(
    seed: int, num_beams: int
) -> None:
    model, ids = _model(seed), _catalogue(seed)
    trie = PrefixTrie.from_sequences(ids)
    queries = _queries(seed, count=4)
    generated = model.generate(queries, trie, num_beams)
    assert generated.rows.shape == generated.log_probs.shape == (4, num_beams)
    assert generated.tokens.shape == (4, num_beams, LEVELS + 2)
    exact = exhaustive_id_scores(model, queries, torch.as_tensor(ids))
    found = min(num_beams, len(ids))
    for query in range(4):
        rows = generated.rows[query].tolist()
        assert all(0 <= row < len(ids) for row in rows[:found])
        assert len(set(rows[:found])) == found and rows[found:] == [NO_ROW] * (num_beams - found)
        for slot, row in enumerate(rows[:found]):
            assert generated.tokens[query, slot, :-1].tolist() == ids[row].tolist()
            assert generated.tokens[query, slot, -1] == EOS_TOKEN
        assert torch.all(generated.tokens[query, found:] == PAD_TOKEN)
        scores = generated.log_probs[query]
        assert torch.all(torch.isneginf(scores[found:]))
        assert torch.all(scores[:found][:-1] >= scores[:found][1:])  # best first
        assert torch.allclose(scores[:found], exact[query, rows[:found]], atol=1e-4)


def test_as_many_beams_as_items_return_the_exact_ranking() -> None:
    # With K ≥ N beams no valid prefix is ever pruned, so beam search is exhaustive.
    model, ids = _model(3), _catalogue(3, count=10)
    queries = _queries(3, count=3)
    generated = model.generate(queries, PrefixTrie.from_sequences(ids), num_beams=len(ids))
    exact = exhaustive_id_scores(model, queries, torch.as_tensor(ids))
    assert generated.rows.tolist() == torch.argsort(exact, dim=1, descending=True).tolist()


def test_the_models_sampling_defaults_change_nothing() -> None:
    model, ids = _model(4), _catalogue(4)
    trie, queries = PrefixTrie.from_sequences(ids), _queries(4)
    expected = model.generate(queries, trie, num_beams=5)
    model.model.generation_config = GenerationConfig(
        do_sample=True, temperature=5.0, top_k=1, top_p=0.5, length_penalty=3.0, num_beams=2
    )
    for seed in (0, 1):
        torch.manual_seed(seed)  # sampling would draw differently under each seed
        generated = model.generate(queries, trie, num_beams=5)
        for expected_part, part in zip(expected, generated, strict=True):
            assert torch.equal(expected_part, part)
    assert torch.all(generated.rows >= 0)


def test_a_model_default_we_cannot_neutralise_is_refused() -> None:
    model, ids = _model(), _catalogue()
    model.model.generation_config.forced_bos_token_id = 3
    with pytest.raises(ValueError, match="forced_bos_token_id"):
        model.generate(_queries(), PrefixTrie.from_sequences(ids), num_beams=3)


def test_generate_warns_and_logs_nothing(recwarn: pytest.WarningsRecorder) -> None:
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    library = logging.getLogger("transformers")
    library.addHandler(handler)
    try:
        model, ids = _model(5), _catalogue(5)
        for num_beams in (1, 4):
            model.generate(_queries(5), PrefixTrie.from_sequences(ids), num_beams)
    finally:
        library.removeHandler(handler)
    assert [r.getMessage() for r in records if r.levelno >= logging.WARNING] == []
    assert [str(w.message) for w in recwarn] == []


def test_image_features_matter_only_for_queries_with_a_picture() -> None:
    model, ids = _model(6), _catalogue(6)
    trie = PrefixTrie.from_sequences(ids)
    queries = _queries(6, count=4)  # queries 0 and 2 have a picture
    changed = queries._replace(image_features=queries.image_features * 3.0 + 1.0)
    labels = torch.cat([torch.as_tensor(ids[:4]), torch.full((4, 1), EOS_TOKEN)], dim=1)
    with torch.no_grad():
        before, after = model(queries, labels), model(changed, labels)
    without = ~queries.has_image
    assert torch.equal(before[without], after[without])
    assert not torch.allclose(before[queries.has_image], after[queries.has_image], atol=1e-3)
    first, second = model.generate(queries, trie, 4), model.generate(changed, trie, 4)
    assert torch.equal(first.rows[without], second.rows[without])
    assert torch.equal(first.log_probs[without], second.log_probs[without])


def test_a_query_gets_the_same_beams_alone_and_in_a_batch() -> None:
    model, ids = _model(7), _catalogue(7)
    trie, queries = PrefixTrie.from_sequences(ids), _queries(7, count=5)
    batched = model.generate(queries, trie, num_beams=6)
    for query in range(5):
        alone = model.generate(_select(queries, [query]), trie, num_beams=6)
        assert alone.rows[0].tolist() == batched.rows[query].tolist()
        assert torch.allclose(alone.log_probs[0], batched.log_probs[query], atol=1e-4)


def test_a_few_steps_of_cross_entropy_reduce_the_loss() -> None:
    model, ids = _model(8).train(), _catalogue(8)
    queries = _queries(8, count=4)
    labels = torch.cat([torch.as_tensor(ids[:4]), torch.full((4, 1), EOS_TOKEN)], dim=1)
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(15):
        logits = model(queries, labels)
        loss = F.cross_entropy(logits.flatten(0, 1), labels.flatten())
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def test_generate_refuses_training_mode() -> None:
    model, ids = _model().train(), _catalogue()
    with pytest.raises(RuntimeError, match="eval mode"):
        model.generate(_queries(), PrefixTrie.from_sequences(ids), num_beams=2)


def test_a_long_query_keeps_its_latest_tokens() -> None:
    tokens = torch.tensor([[1, 2, 3, 4, 5, 0], [6, 7, 0, 0, 0, 0]])
    mask = tokens != 0
    kept, kept_mask = latest_tokens(tokens, mask, limit=3)
    assert kept[kept_mask.bool()].tolist() == [3, 4, 5, 6, 7]
    assert kept.tolist()[0] == [3, 4, 5] and kept_mask.tolist() == [[True] * 3, [True, True, False]]
    assert latest_tokens(tokens, mask, limit=6)[0] is tokens


def test_config_refuses_bad_sizes() -> None:
    with pytest.raises(ValueError, match="image_tokens"):
        GenerativeRetrieverConfig(image_tokens=0)
    with pytest.raises(ValueError, match="dropout"):
        GenerativeRetrieverConfig(dropout=1.0)
