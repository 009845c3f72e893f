"""``clap``: a CLAP model folder (``ClapModel`` + ``ClapProcessor``, e.g. ``laion/clap-htsat-unfused``), zero-shot:
the window's audio embedding against text prompts for ``labels`` (default: AVE's 28 classes + Silence); its
embedding is the normalised audio embedding."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np

from ..base import register_probe
from .base import TaggerProbe, load_pretrained, resample

AVE_LABELS = (
    "Accordion", "Acoustic guitar", "Baby cry, infant cry", "Banjo", "Bark", "Bus", "Cat", "Chainsaw",
    "Church bell", "Clock", "Female speech, woman speaking", "Fixed-wing aircraft, airplane", "Flute",
    "Frying (food)", "Goat", "Helicopter", "Horse", "Male speech, man speaking", "Mandolin", "Motorcycle",
    "Race car, auto racing", "Rodents, rats, mice", "Shofar", "Toilet flush", "Train horn", "Truck", "Ukulele",
    "Violin, fiddle", "Silence",
)
"""CLAP's default zero-shot vocabulary: the AVE event classes, plus Silence (ignored by ``score=max``)."""


@lru_cache(maxsize=2)
def load_clap(path: str) -> tuple[Any, Any]:
    """(processor, model) of a CLAP folder; clear errors for anything else."""
    return load_pretrained(path, "clap", "a CLAP model", "ClapProcessor", "ClapModel", "the CLAP model")


def _features(out: Any) -> Any:
    """transformers 4 returns the projected features as a tensor, 5 as ``pooler_output`` of an output object."""
    return out if hasattr(out, "shape") else out.pooler_output


@register_probe
class ClapProbe(TaggerProbe):
    name = "clap"
    default_activation = "softmax"
    summary = "CLAP zero-shot: audio vs text prompts for a label set (default AVE's classes) -> eventness + labels"
    needs = "extra 'eval' (torch, transformers) and --probe-weights FOLDER (a CLAP model)"
    weights_help = "FOLDER (a local CLAP model folder, e.g. laion/clap-htsat-unfused)"

    requires = (("transformers", "eval"), ("torch", "eval"))

    def load(self) -> Any:
        import torch

        proc, model = load_clap(str(self.config.weights))
        names = self.class_names()
        text = proc.tokenizer([self.config.prompt.format(n) for n in names], padding=True, return_tensors="pt")
        with torch.no_grad():
            t = torch.nn.functional.normalize(_features(model.get_text_features(**text)), dim=-1)
        return proc, model, t

    def class_names(self) -> list[str]:
        return list(self.config.labels or AVE_LABELS)

    def infer(self, waves: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        import torch

        proc, model, text = self.model
        fe = proc.feature_extractor
        rate = int(fe.sampling_rate)
        fused = bool(getattr(model.config.audio_config, "enable_fusion", False))
        inp = fe([resample(w, rate) for w in waves], sampling_rate=rate, return_tensors="pt",
                 truncation="fusion" if fused else "rand_trunc")  # windows are shorter than max_length: no crop
        with torch.no_grad():
            a = torch.nn.functional.normalize(_features(model.get_audio_features(**inp)), dim=-1)
            logits = model.logit_scale_a.exp() * a @ text.T
        return logits.double().numpy(), a.float().numpy()
