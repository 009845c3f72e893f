"""``ast``: the Audio Spectrogram Transformer, a transformers folder (``ASTForAudioClassification`` + its feature
extractor, ``from_pretrained(path, local_files_only=True)``), e.g. ``MIT/ast-finetuned-audioset-10-10-0.4593``;
its embedding is the mean of the last hidden state."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np

from ..base import SAMPLE_RATE, register_probe
from .base import TaggerProbe, load_pretrained


@lru_cache(maxsize=2)
def load_ast(path: str) -> tuple[Any, Any]:
    """(feature extractor, model) of an AST audio-classification folder; clear errors for anything else."""
    return load_pretrained(path, "audio-spectrogram-transformer", "an AST audio-classification model",
                           "AutoFeatureExtractor", "AutoModelForAudioClassification", "the tagger")


@register_probe
class AstProbe(TaggerProbe):
    name = "ast"
    summary = "AudioSet tagger (AST) class probabilities -> eventness, with top labels per window"
    needs = "extra 'eval' (torch, transformers) and --probe-weights FOLDER (an AST model)"
    weights_help = "FOLDER (a local AST model folder)"

    requires = (("transformers", "eval"), ("torch", "eval"))

    def load(self) -> Any:
        return load_ast(str(self.config.weights))

    def class_names(self) -> list[str]:
        cfg = self.model[1].config
        return [cfg.id2label[i] for i in range(cfg.num_labels)]

    def infer(self, waves: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        import torch

        fe, model = self.model
        inp = fe(waves, sampling_rate=SAMPLE_RATE, return_tensors="pt")
        with torch.no_grad():
            out = model(**inp, output_hidden_states=True)
        emb = out.hidden_states[-1].mean(1)
        return out.logits.double().numpy(), emb.float().numpy()
