"""The generative retriever: a T5 encoder-decoder, trained from scratch as TIGER's, that writes a
query's semantic ID, decoded by beam search walking a real prefix trie of the catalogue's IDs.

What is unusual:

* The T5's own vocabulary is the ID vocabulary and serves the decoder only; the encoder reads
  ``inputs_embeds`` built here: the picture's image tokens (one Linear of its pooled features,
  masked out for a query without one) then the query's text tokens from this module's own table.
  Image tokens come first so text padding stays at the end and a query's relative positions do
  not depend on the widest query of its batch.
* Transformers 5's ``T5Config`` forces ``tie_word_embeddings`` back to True (the False passed in
  only stops the output rescaling), which would tie the LM head to the decoder's input table; the
  config is untied after construction and only the input tables are tied back together.
* ``generate`` passes a complete GenerationConfig of ours with ``do_sample=False``: transformers
  fills a generation field from the model's own ``generation_config`` only where ours leaves it
  unset, so every field that has a neutral value is set, and a model default that could still slip
  into one we must leave unset raises instead of silently changing the constrained search.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch
from torch import nn
from transformers import GenerationConfig, T5Config, T5ForConditionalGeneration
from transformers.modeling_outputs import BaseModelOutput

from muse.conversational.models.generative_retriever_config import GenerativeRetrieverConfig
from muse.conversational.models.prefix_trie import EOS_TOKEN, NO_ROW, PAD_TOKEN, PrefixTrie

TEXT_PAD_TOKEN = 0  # the text table's padding row (padding is masked out anyway)
# Hugging Face offsets beams that never held a real hypothesis by −1e9; a true log-probability
# of L + 2 tokens is nowhere near this.
DEAD_BEAM_SCORE = -1e8
# Keys of a GenerationConfig's dict that say nothing about how it decodes.
_BOOKKEEPING_KEYS = frozenset({"transformers_version"})


class QueryBatch(NamedTuple):
    """B queries: text_tokens (B, T) int64 right-padded text token ids; text_mask (B, T) bool,
    True for real tokens (each query at least one); image_features (B, F) float32 pooled vision
    features of the query's picture (anything where it has none); has_image (B,) bool."""

    text_tokens: torch.Tensor
    text_mask: torch.Tensor
    image_features: torch.Tensor
    has_image: torch.Tensor


class EncodedQueries(NamedTuple):
    """hidden (B, S, D) the encoder's last hidden states; mask (B, S) bool, its real positions."""

    hidden: torch.Tensor
    mask: torch.Tensor


class GeneratedIds(NamedTuple):
    """The constrained beam search's K beams per query (B queries), best first. CPU tensors.

    rows: (B, K) int64 catalogue rows, −1 where fewer than K valid IDs were found.
    log_probs: (B, K) float32 log p(ID | query), −inf where the row is −1: the sum over the
        L + 2 written tokens (the ID's L + 1, then EOS) of the model's log-softmax over the whole
        ID vocabulary, as Hugging Face accumulates it (length_penalty 0, so no length division).
        The trie masks tokens but never renormalises, so this is exactly the teacher-forced
        log-likelihood of the ID (see id_sequence_scores), not a trie-renormalised one.
    tokens: (B, K, L + 2) int64 the written tokens (the ID, then EOS), PAD where the row is −1.
    """

    rows: torch.Tensor
    log_probs: torch.Tensor
    tokens: torch.Tensor


def latest_tokens(
    tokens: torch.Tensor, mask: torch.Tensor, limit: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """tokens (B, T), mask (B, T) bool → each row's latest ``limit`` real tokens, in order and
    left-aligned: (B, min(T, limit)) each (the newest words of a long dialogue matter most)."""
    if tokens.shape[1] <= limit:
        return tokens, mask
    after = mask.flip(1).cumsum(1).flip(1)  # real tokens at or after each position
    keep = mask & (after <= limit)
    # A stable sort on "dropped" moves the kept tokens to the front, keeping their order.
    order = torch.sort((~keep).to(torch.int64), dim=1, stable=True).indices[:, :limit]
    return tokens.gather(1, order), keep.gather(1, order)


class GenerativeRetriever(nn.Module):
    """Query text tokens + picture → semantic ID tokens (T5, TIGER's sizes by default).

    ``text_vocab_size`` comes from the query tokenizer, ``image_feature_width`` (F) from the
    vision encoder, ``id_vocab_size`` (V) from the semantic ID map (PAD 0 is the decoder's start
    token, EOS 1 ends every ID).
    """

    def __init__(
        self,
        config: GenerativeRetrieverConfig,
        text_vocab_size: int,
        image_feature_width: int,
        id_vocab_size: int,
    ) -> None:
        super().__init__()
        if text_vocab_size < 1 or image_feature_width < 1:
            raise ValueError("text_vocab_size and image_feature_width must be ≥ 1")
        if id_vocab_size <= max(PAD_TOKEN, EOS_TOKEN) + 1:
            raise ValueError(f"id_vocab_size must exceed PAD and EOS, got {id_vocab_size}")
        self.config = config
        self.text_vocab_size = text_vocab_size
        self.image_feature_width = image_feature_width
        self.id_vocab_size = id_vocab_size
        settings: dict[str, Any] = dict(
            vocab_size=id_vocab_size,
            d_model=config.d_model,
            d_ff=config.d_ff,
            num_heads=config.num_heads,
            d_kv=config.d_kv,
            num_layers=config.encoder_layers,
            num_decoder_layers=config.decoder_layers,
            dropout_rate=config.dropout,
            tie_word_embeddings=False,  # T5 v1.1: no rescaling of the decoder output …
            pad_token_id=PAD_TOKEN,
            eos_token_id=EOS_TOKEN,
            decoder_start_token_id=PAD_TOKEN,
            is_encoder_decoder=True,
        )
        t5_config = T5Config(**settings)
        t5_config.tie_word_embeddings = False  # … and no tying of the LM head (see the module doc)
        self.model = T5ForConditionalGeneration(t5_config)
        # The encoder reads inputs_embeds: its table is the decoder's, not a second unused one.
        self.model.encoder.embed_tokens = self.model.shared
        self.model.decoder.embed_tokens = self.model.shared
        # Hugging Face starts an untied T5 head at std 1, logits of std √D: start near uniform.
        nn.init.normal_(self.model.lm_head.weight, std=config.d_model**-0.5)
        self.text_embeddings = nn.Embedding(
            text_vocab_size, config.d_model, padding_idx=TEXT_PAD_TOKEN
        )
        self.image_projection = nn.Linear(image_feature_width, config.image_tokens * config.d_model)

    def encoder_inputs(self, queries: QueryBatch) -> tuple[torch.Tensor, torch.Tensor]:
        """queries (B queries) → inputs_embeds (B, I + T, D) and their mask (B, I + T) bool: the
        I image tokens, then the latest ≤ max_query_tokens text tokens."""
        tokens, mask = latest_tokens(
            queries.text_tokens, queries.text_mask.bool(), self.config.max_query_tokens
        )
        text = self.text_embeddings(tokens)
        has_image = queries.has_image.bool()
        # Zeroed and masked: nothing of a query's absent picture can reach its ID.
        features = queries.image_features.to(text.dtype).masked_fill(~has_image[:, None], 0.0)
        count = self.config.image_tokens
        image = self.image_projection(features).view(features.shape[0], count, self.config.d_model)
        image_mask = has_image[:, None].expand(-1, count)
        return torch.cat([image, text], dim=1), torch.cat([image_mask, mask], dim=1)

    def encode(self, queries: QueryBatch) -> EncodedQueries:
        """queries (B queries) → EncodedQueries(hidden (B, S, D), mask (B, S)), S = I + T."""
        embeds, mask = self.encoder_inputs(queries)
        output = self.model.encoder(inputs_embeds=embeds, attention_mask=mask.long())
        return EncodedQueries(hidden=output.last_hidden_state, mask=mask)

    def decoder_logits(self, encoded: EncodedQueries, labels: torch.Tensor) -> torch.Tensor:
        """encoded (B queries), labels (B, L + 2) int64 (ID tokens, then EOS) → teacher-forced
        logits (B, L + 2, V): position t predicts labels[:, t] from the start token and labels[:, :t]."""
        start = labels.new_full((labels.shape[0], 1), PAD_TOKEN)
        output = self.model(
            encoder_outputs=BaseModelOutput(last_hidden_state=encoded.hidden),
            attention_mask=encoded.mask.long(),
            decoder_input_ids=torch.cat([start, labels[:, :-1]], dim=1),
            use_cache=False,
        )
        logits: torch.Tensor = output.logits
        return logits

    def forward(self, queries: QueryBatch, labels: torch.Tensor) -> torch.Tensor:
        """queries (B queries), labels (B, L + 2) int64 → teacher-forced logits (B, L + 2, V).

        The caller computes the loss (cross-entropy of the logits against ``labels``).
        """
        return self.decoder_logits(self.encode(queries), labels)

    def beam_search_config(self, num_beams: int, steps: int) -> GenerationConfig:
        """The complete GenerationConfig of a K-beam search writing ``steps`` tokens.

        Every field with a neutral value is set (the library's neutral values: top_k 50 and
        temperature 1.0 are what "no warping" reads as), so the model's own generation_config can
        fill nothing in. K = 1 is greedy search, where the beam-only flags stay neutral.
        """
        beam = num_beams > 1
        return GenerationConfig(
            max_new_tokens=steps,
            min_length=0,
            do_sample=False,  # explicit: a model's defaults must never turn sampling on
            num_beams=num_beams,
            num_return_sequences=num_beams,
            length_penalty=0.0 if beam else 1.0,  # the plain sum of log-probabilities
            early_stopping=beam,  # every beam ends at step L + 2: stop once K are finished
            temperature=1.0,
            top_k=50,
            top_p=1.0,
            typical_p=1.0,
            epsilon_cutoff=0.0,
            eta_cutoff=0.0,
            repetition_penalty=1.0,
            encoder_repetition_penalty=1.0,
            no_repeat_ngram_size=0,
            encoder_no_repeat_ngram_size=0,
            guidance_scale=1.0,
            renormalize_logits=False,  # log_probs stay the model's own (see GeneratedIds)
            remove_invalid_values=False,
            num_beam_groups=1,
            diversity_penalty=0.0,
            low_memory=False,
            use_cache=True,
            output_scores=True,  # beam search returns sequences_scores only with it
            output_logits=not beam,  # greedy search's scores are processed logits, not log-probs
            output_attentions=False,
            output_hidden_states=False,
            return_dict_in_generate=True,
            pad_token_id=PAD_TOKEN,
            eos_token_id=EOS_TOKEN,
            decoder_start_token_id=PAD_TOKEN,
        )

    def _check_model_defaults(self, ours: GenerationConfig) -> None:
        """Refuse model generation defaults that transformers would merge into our unset fields."""
        mine = ours.to_dict()
        slipped = sorted(
            key
            for key, value in self.model.generation_config.to_dict().items()
            if value is not None
            and mine.get(key) is None
            and not key.startswith("_")
            and key not in _BOOKKEEPING_KEYS
        )
        if slipped:
            raise ValueError(
                f"the T5's generation_config sets {slipped}, which generate would merge into the "
                "trie-constrained beam search; leave them unset"
            )

    @torch.no_grad()
    def generate(self, queries: QueryBatch, trie: PrefixTrie, num_beams: int) -> GeneratedIds:
        """queries (B queries) → the K = ``num_beams`` best valid IDs of each, best first.

        Hugging Face beam search (greedy search for K = 1) with ``prefix_allowed_tokens_fn``
        walking ``trie``; deterministic. Call in eval mode: dropout would make the beams random.
        """
        if self.training:
            raise RuntimeError("GenerativeRetriever.generate needs eval mode (dropout is on)")
        if num_beams < 1:
            raise ValueError(f"num_beams must be ≥ 1, got {num_beams}")
        steps = trie.id_length + 1  # the ID's L + 1 tokens, then EOS
        config = self.beam_search_config(num_beams, steps)
        self._check_model_defaults(config)
        embeds, mask = self.encoder_inputs(queries)

        def allowed(_batch_id: int, sequence: torch.Tensor) -> list[int]:
            # sequence (1 + t,): the start token, then the t tokens written so far.
            tokens = trie.allowed(sequence[1:].tolist())
            # A beam that left the trie (score −inf, as when fewer IDs than beams exist) pads.
            return tokens.tolist() if len(tokens) else [PAD_TOKEN]

        t5: Any = self.model  # transformers types generate's self as a protocol T5 misses
        output = t5.generate(
            inputs_embeds=embeds,
            attention_mask=mask.long(),
            generation_config=config,
            prefix_allowed_tokens_fn=allowed,
        )
        written = output.sequences[:, 1:].cpu()  # (B·K, ≤ L + 2), the start token dropped
        if num_beams > 1:
            scores = output.sequences_scores.float().cpu()
        else:
            scores = _greedy_log_probs(output.logits, written.to(output.logits[0].device)).cpu()
        return _valid_beams(written, scores, trie, queries.text_tokens.shape[0], num_beams, steps)


def _greedy_log_probs(logits: tuple[torch.Tensor, ...], written: torch.Tensor) -> torch.Tensor:
    """Raw logits per step ((B, V) each), written (B, steps) → (B,) Σ log-softmax of the tokens."""
    log_probs = torch.stack([step.float().log_softmax(-1) for step in logits], dim=1)
    return log_probs.gather(-1, written[:, : log_probs.shape[1], None]).squeeze(-1).sum(-1)


def _valid_beams(
    written: torch.Tensor,
    scores: torch.Tensor,
    trie: PrefixTrie,
    batch_size: int,
    num_beams: int,
    steps: int,
) -> GeneratedIds:
    """written (B·K, ≤ steps), scores (B·K,) → GeneratedIds with every beam a distinct real ID.

    Beams that left the trie, never held a hypothesis, or repeat a better beam's ID become −1.
    """
    tokens = torch.full((batch_size * num_beams, steps), PAD_TOKEN, dtype=torch.int64)
    tokens[:, : written.shape[1]] = written[:, :steps]
    tokens = tokens.view(batch_size, num_beams, steps)
    scores = scores.view(batch_size, num_beams)
    rows = torch.full((batch_size, num_beams), NO_ROW, dtype=torch.int64)
    log_probs = torch.full((batch_size, num_beams), float("-inf"), dtype=torch.float32)
    kept_tokens = torch.full_like(tokens, PAD_TOKEN)
    for query in range(batch_size):
        order = torch.argsort(scores[query], descending=True, stable=True).tolist()
        seen: set[int] = set()
        slot = 0
        for beam in order:
            score = float(scores[query, beam])
            row = trie.row_of(tokens[query, beam].tolist())
            if row == NO_ROW or row in seen or not score > DEAD_BEAM_SCORE:
                continue
            seen.add(row)
            rows[query, slot] = row
            log_probs[query, slot] = score
            kept_tokens[query, slot] = tokens[query, beam]
            slot += 1
    return GeneratedIds(rows=rows, log_probs=log_probs, tokens=kept_tokens)
