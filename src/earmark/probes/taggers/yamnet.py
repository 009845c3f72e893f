"""``yamnet``: YAMNet as ONNX (TF-Hub's signature: a 16 kHz waveform in; per 0.96 s frame ``scores`` (frames, 521)
and ``embeddings`` out) run by onnxruntime, with its class map CSV (``index,mid,display_name``)."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np

from ...errors import ConfigError
from ..base import register_probe
from ..weights import weights_file
from .base import TaggerProbe, class_names_for

YAMNET_FRAME = 15_360  # 0.96 s at 16 kHz: YAMNet's analysis frame


@lru_cache(maxsize=2)
def load_yamnet(path: str) -> tuple[Any, str, str, str | None]:
    """(session, input name, scores output, embeddings output or None) of a YAMNet-like ONNX model."""
    from ..weights import onnx_session

    sess = onnx_session(path)
    ins = sess.get_inputs()
    if len(ins) != 1 or "float" not in ins[0].type or len(ins[0].shape) not in (1, 2):
        got = ", ".join(f"{i.name} {i.type} {i.shape}" for i in ins)
        raise ConfigError(f"{path}: expected a YAMNet-like model (one float waveform input), this one takes {got}")
    outs = {o.name: o for o in sess.get_outputs()}
    scores = next((n for n in outs if "score" in n.lower()), None) or next(iter(outs))
    emb = next((n for n in outs if "embed" in n.lower()), None)
    return sess, ins[0].name, scores, emb


@register_probe
class YamnetProbe(TaggerProbe):
    name = "yamnet"
    summary = "AudioSet tagger (YAMNet, ONNX) -> eventness, with top labels per window"
    needs = "extra 'probes' (onnxruntime) and --probe-weights FILE (yamnet.onnx + its class map CSV)"
    weights_help = "FILE (a YAMNet .onnx: 16 kHz waveform in, scores and embeddings out)"

    requires = (("onnxruntime", "probes"),)

    def load(self) -> Any:
        path = str(weights_file(self.config.weights, "yamnet", self.weights_help))
        sess, inp, scores, emb = load_yamnet(path)
        probe = sess.run([scores], {inp: np.zeros(self._shape(sess, YAMNET_FRAME), np.float32)})[0]
        if probe.ndim != 2:
            raise ConfigError(f"{path}: output {scores!r} has shape {probe.shape}, expected (frames, classes)")
        return sess, inp, scores, emb, class_names_for(path, self.config.class_map, probe.shape[1])

    @staticmethod
    def _shape(sess: Any, n: int) -> tuple[int, ...]:
        return (n,) if len(sess.get_inputs()[0].shape) == 1 else (1, n)

    def class_names(self) -> list[str]:
        return list(self.config.labels) or self.model[4]

    def infer(self, waves: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        sess, inp, scores, emb, _ = self.model
        probs, embs = [], []
        for w in waves:  # YAMNet takes one waveform; a 1 s window is one or two 0.96 s frames
            w = np.pad(w, (0, max(0, YAMNET_FRAME - len(w)))).astype(np.float32)
            out = sess.run([scores] + ([emb] if emb else []), {inp: w.reshape(self._shape(sess, len(w)))})
            probs.append(np.asarray(out[0], np.float64).max(0))  # the window's loudest frame per class
            embs.append(np.asarray(out[1], np.float32).mean(0) if emb else np.asarray(out[0], np.float32).mean(0))
        p = np.clip(np.stack(probs), 1e-7, 1 - 1e-7)
        return np.log(p / (1 - p)), np.stack(embs)  # scores are probabilities already: back to logits
