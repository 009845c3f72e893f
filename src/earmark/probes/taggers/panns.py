"""``panns``: a PANNs CNN14 checkpoint (``Cnn14_mAP=0.431.pth`` or ``Cnn14_16k_mAP=0.438.pth``), read with
``torch.load(weights_only=True)`` into earmark's own CNN14 (:mod:`earmark.probes.panns`); its embedding is the
2048-d ``fc1`` output."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..base import register_probe
from ..weights import weights_file
from .base import TaggerProbe, class_names_for, resample


@register_probe
class PannsProbe(TaggerProbe):
    name = "panns"
    summary = "AudioSet tagger (PANNs CNN14, torch checkpoint) -> eventness, with top labels per window"
    needs = "extra 'eval' (torch) and --probe-weights FILE (a PANNs Cnn14*.pth)"
    weights_help = "FILE (a PANNs Cnn14_mAP=0.431.pth or Cnn14_16k_mAP=0.438.pth)"

    requires = (("torch", "eval"),)

    def load(self) -> Any:
        from ..panns import load_cnn14

        model = load_cnn14(str(weights_file(self.config.weights, "panns", self.weights_help)))
        names = class_names_for(str(self.config.weights), self.config.class_map, model.classes)
        return model, names

    def class_names(self) -> list[str]:
        return list(self.config.labels) or self.model[1]

    def infer(self, waves: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        import torch

        model = self.model[0]
        x = np.stack([resample(w, model.sample_rate) for w in _same_length(waves)])
        with torch.no_grad():
            logits, emb = model(torch.from_numpy(x))
        return logits.double().numpy(), emb.float().numpy()


def _same_length(waves: list[np.ndarray]) -> list[np.ndarray]:
    n = max(len(w) for w in waves)
    return [np.pad(w, (0, n - len(w))) for w in waves]
