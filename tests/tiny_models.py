"""Tiny random models and tokenizers saved like downloads, shared by the tests that load them through earmark's
real loading code (text-image towers for questions and search, Qwen-style tokenizers for the VLM handoffs).
Nothing here downloads; every weight comes from a seeded random initialisation."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

QWEN_SPECIAL = ["<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>", "<|image_pad|>", "<|video_pad|>"]
"""Qwen-VL's special tokens, numbered from :data:`QWEN_SPECIAL_BASE` in the tiny tokenizers."""
QWEN_SPECIAL_BASE = 100


def word_tokenizer(d: str | Path, words: Sequence[str], *, special: Sequence[str] = (), special_base: int = 100,
                   punctuation: bool = True, digits: bool = False, pad: str = "[PAD]"):
    """A word-level fast tokenizer over ``words`` (ids in order), ``special`` tokens numbered from ``special_base``,
    saved to ``d`` and returned. Words split on whitespace, and on punctuation and single digits when asked (so
    that ``<12.5 seconds>`` reads back from its ids)."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {w: i for i, w in enumerate(words)}
    vocab.update({tok: special_base + i for i, tok in enumerate(special)})
    tk = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    parts = [pre_tokenizers.WhitespaceSplit()]
    if punctuation:
        parts.append(pre_tokenizers.Punctuation())
    if digits:
        parts.append(pre_tokenizers.Digits(individual_digits=True))
    tk.pre_tokenizer = pre_tokenizers.Sequence(parts) if len(parts) > 1 else parts[0]
    kw = {"additional_special_tokens": list(special)} if special else {}
    fast = PreTrainedTokenizerFast(tokenizer_object=tk, unk_token="[UNK]", pad_token=pad, **kw)
    fast.save_pretrained(d)
    return fast


def text_image_model(d: str | Path, kind: str, words: Sequence[str], *, vocab_size: int | None = None,
                     projection_dim: int = 32) -> Path:
    """A one-layer CLIP or SigLIP (``kind``) with random weights (seed 0), its PIL image processor (32 px) and a
    word-level tokenizer over ``words``, saved to ``d`` like a user's folder. 32-d towers, so CLIP's text
    projection can be square (``projection_dim=32``)."""
    import torch

    torch.manual_seed(0)
    text = dict(vocab_size=vocab_size or len(words), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                num_attention_heads=2, max_position_embeddings=16, pad_token_id=0, bos_token_id=1, eos_token_id=2)
    vision = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2, image_size=32,
                  patch_size=8)
    if kind == "clip":
        from transformers import CLIPConfig, CLIPModel
        from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

        CLIPModel(CLIPConfig(text_config=text, vision_config=vision, projection_dim=projection_dim)).save_pretrained(d)
        CLIPImageProcessorPil(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(d)
    elif kind == "siglip":
        from transformers import SiglipConfig, SiglipModel
        from transformers.models.siglip.image_processing_pil_siglip import SiglipImageProcessorPil

        SiglipModel(SiglipConfig(text_config=text, vision_config=vision)).save_pretrained(d)
        SiglipImageProcessorPil(size={"height": 32, "width": 32}).save_pretrained(d)
    else:
        raise ValueError(f"kind must be clip or siglip, got {kind!r}")
    word_tokenizer(d, words)
    return Path(d)
