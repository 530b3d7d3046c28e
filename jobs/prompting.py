"""Prompt embeddings with compel: weights, BREAK and long prompts for the model's text encoders.

``jobs.pipelines.generate`` asks ``Warm.prompts.encode`` for the call's text arguments. For an SD 1.x/2.x pipeline
(one CLIP encoder, its last hidden state) and SDXL (two encoders, penultimate hidden states side by side, the
second's pooled output) the prompts become ``prompt_embeds`` (+ pooled and negative) built by compel from the
weighted fragments of ``webapp.prompting.weights``: a fragment weighted above 1 is pushed away from the empty
prompt, one below 1 is blended towards the prompt without it (compel's mask mode). A prompt longer than the
tokenizer's window is encoded in windows of its length, each with its own start and end tokens, and the windows
are concatenated, as A1111 does (compel's ``truncate_long_prompts=False``); ``BREAK`` starts a new window. All
prompts of a call are padded to the longest with empty-prompt windows, as A1111 pads a batch.

Other pipelines (SD3 with its T5 encoder, anything else) get the words alone, weights dropped
(``plain_text``): compel has no support for their encoders, so a weight is not faked there.
A call whose prompts are all plain (no weight, no BREAK, within the window) keeps the pipeline's own encoding:
compel gives the same embeddings for them (a test checks), but the pipeline's path is the one its authors test.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from webapp.prompting.weights import Fragments, PromptSyntaxError, is_plain, parse_weights, plain_text

if TYPE_CHECKING:
    from diffusers import DiffusionPipeline


def parsed(prompt: str) -> list[Fragments]:
    """The prompt's weighted chunks; text the input check never saw (a trigger word, a style) that does not parse
    is taken literally rather than failing the picture."""
    try:
        return parse_weights(prompt)
    except PromptSyntaxError:
        return [[(prompt, 1.0)]]


def encoder_kind(pipe: DiffusionPipeline) -> str | None:
    """``sd`` (one CLIP encoder), ``sdxl`` (two, the second pooled), or None (no compel support: plain text)."""
    if getattr(pipe, "transformer", None) is not None or getattr(pipe, "text_encoder", None) is None:
        return None
    if getattr(pipe, "text_encoder_2", None) is not None and getattr(pipe, "tokenizer_2", None) is not None:
        return "sdxl"
    return "sd" if getattr(pipe, "tokenizer", None) is not None else None


def _fits(pipe: DiffusionPipeline, chunks: list[Fragments]) -> bool:
    """Whether the words fit the first tokenizer's window (start and end tokens included)."""
    limit = pipe.tokenizer.model_max_length
    return len(pipe.tokenizer(plain_text(chunks), truncation=False, verbose=False).input_ids) <= limit


class PromptEncoder:
    """compel set up for one pipeline's text encoders (made once per warm pipeline)."""

    def __init__(self, pipe: DiffusionPipeline):
        from compel import Compel, ReturnedEmbeddingsType

        self.kind = encoder_kind(pipe)
        self.pipe = pipe
        self.compels = []
        if self.kind == "sd":
            self.compels = [Compel(tokenizer=pipe.tokenizer, text_encoder=pipe.text_encoder, truncate_long_prompts=False,
                                   dtype_for_device_getter=lambda _device: pipe.text_encoder.dtype)]
        elif self.kind == "sdxl":
            penultimate = ReturnedEmbeddingsType.PENULTIMATE_HIDDEN_STATES_NON_NORMALIZED
            self.compels = [
                Compel(tokenizer=pipe.tokenizer, text_encoder=pipe.text_encoder, truncate_long_prompts=False,
                       returned_embeddings_type=penultimate,
                       dtype_for_device_getter=lambda _device: pipe.text_encoder.dtype),
                Compel(tokenizer=pipe.tokenizer_2, text_encoder=pipe.text_encoder_2, truncate_long_prompts=False,
                       returned_embeddings_type=penultimate, requires_pooled=True,
                       dtype_for_device_getter=lambda _device: pipe.text_encoder_2.dtype)]

    def _one(self, compel, chunks: list[Fragments]) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(embeddings [1, tokens, width], pooled of the first window or None) of one prompt by one encoder."""
        from compel.prompt_parser import Conjunction, FlattenedPrompt

        windows = [FlattenedPrompt([(text, weight) for text, weight in fragments] or [("", 1.0)])
                   for fragments in chunks or [[]]]
        with torch.no_grad():
            embeds, _ = compel.build_conditioning_tensor_for_conjunction(Conjunction(windows))
            pooled = None
            if compel.requires_pooled:
                pooled = compel.conditioning_provider.get_pooled_embeddings(
                    [plain_text(chunks[:1]) if chunks else ""], device=compel.device)
        return embeds, pooled

    def encode(self, prompts: list[str], negatives: list[str] | None) -> dict[str, Any]:
        """The pipeline's text arguments for these prompts (and negatives; None: the pipeline's own default)."""
        every = [parsed(text) for text in prompts]
        negative_chunks = [parsed(text) for text in negatives] if negatives is not None else None
        if self.kind is None or all(is_plain(chunks) and _fits(self.pipe, chunks)
                                    for chunks in every + (negative_chunks or [])):
            return {"prompt": [_words(text, chunks) for text, chunks in zip(prompts, every, strict=True)],
                    "negative_prompt": None if negatives is None else [
                        _words(text, chunks) for text, chunks in zip(negatives, negative_chunks, strict=True)]}
        zeros = negatives is None and self.kind == "sdxl" and self.pipe.config.get("force_zeros_for_empty_prompt", True)
        sides = [every] if zeros else [every, negative_chunks or [[] for _ in prompts]]
        # every (encoder, side, prompt): embeddings and the pooled output of the encoder that has one
        encoded = [[[self._one(compel, chunks) for chunks in side] for side in sides] for compel in self.compels]
        longest = max(embeds.shape[1] for by_side in encoded for side in by_side for embeds, _ in side)
        side_embeds = []
        for index in range(len(sides)):
            per_encoder = [torch.cat([_pad(compel, embeds, longest) for embeds, _ in by_side[index]])
                           for compel, by_side in zip(self.compels, encoded, strict=True)]
            side_embeds.append(torch.cat(per_encoder, dim=-1))  # SDXL: the two encoders side by side
        found: dict[str, Any] = {"prompt_embeds": side_embeds[0],  # as SDXL's pipeline does for no negative prompt
                                 "negative_prompt_embeds": torch.zeros_like(side_embeds[0]) if zeros else side_embeds[1]}
        if self.kind == "sdxl":
            pooled = [torch.cat([pooled for _, pooled in side]) for side in encoded[-1]]
            found["pooled_prompt_embeds"] = pooled[0]
            found["negative_pooled_prompt_embeds"] = torch.zeros_like(pooled[0]) if zeros else pooled[1]
        return found


def _words(text: str, chunks: list[Fragments]) -> str:
    """The text as the pipeline's own encoder gets it: as written, or without its weights and escapes."""
    return text if chunks == [[(text, 1.0)]] or not text.strip() else plain_text(chunks)


def _pad(compel, embeds: torch.Tensor, longest: int) -> torch.Tensor:
    """Pad to ``longest`` tokens with windows of the empty prompt, as A1111 pads a batch's shorter prompts."""
    empty = compel.conditioning_provider.empty_z.to(embeds.device, embeds.dtype)
    while embeds.shape[1] < longest:
        embeds = torch.cat([embeds, empty.expand(embeds.shape[0], -1, -1)], dim=1)
    return embeds
