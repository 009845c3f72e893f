"""Semantic probes: AudioSet-style taggers whose class probabilities become eventness, with top labels per window.

Four model families, one module each, each loaded from a local path the user gives (``--probe-weights PATH``; never
the network); :mod:`.base` holds what they share (:class:`TaggerProbe`, :class:`TaggerConfig`):

- ``ast``: Audio Spectrogram Transformer, a transformers folder (``ASTForAudioClassification`` + its feature
  extractor, ``from_pretrained(path, local_files_only=True)``), e.g. ``MIT/ast-finetuned-audioset-10-10-0.4593``.
- ``clap``: a CLAP model folder (``ClapModel`` + ``ClapProcessor``, e.g. ``laion/clap-htsat-unfused``), zero-shot:
  the window's audio embedding against text prompts for ``labels`` (default: AVE's 28 classes + Silence).
- ``panns``: a PANNs CNN14 checkpoint (``Cnn14_mAP=0.431.pth`` or ``Cnn14_16k_mAP=0.438.pth``), read with
  ``torch.load(weights_only=True)`` into earmark's own CNN14 (:mod:`earmark.probes.panns`).
- ``yamnet``: YAMNet as ONNX (TF-Hub's signature: a 16 kHz waveform in; per 0.96 s frame ``scores`` (frames, 521)
  and ``embeddings`` out) run by onnxruntime, with its class map CSV (``index,mid,display_name``).

Each window's samples go to the model; probabilities (sigmoid for multi-label taggers, softmax for CLAP's
zero-shot and single-label models) become eventness by ``score``: ``max`` (the most probable class outside
``ignore_labels``, e.g. Silence), ``entropy`` (1 − normalised entropy) or ``margin`` (top-1 minus top-2). The
``top`` labels per window go to ``Timeline.labels``; a window's confidence is the top-1/top-2 margin (times
audio coverage), which anchor widening and the uniform fallback read. No audio or text is kept.

Every tagger also gives a per-window *embedding* (AST: mean of the last hidden state; CLAP: the normalised audio
embedding; PANNs: the 2048-d ``fc1`` output; YAMNet: its 1024-d embedding), which ``earmark train-probe --embed
TAGGER:PATH`` trains the ``linear`` probe on.

The probes receive 10 ms frames of samples (vector frame values), so long files are decoded in segments like every
audio probe; they hold the file's samples (float32, ~230 MB per hour) until the windows are tagged in batches.
"""

from . import ast, clap, panns, yamnet  # registers the probes ast, clap, panns, yamnet
from .ast import AstProbe, load_ast
from .base import (
    ACTIVATIONS,
    SCORES,
    Activation,
    Score,
    TaggerConfig,
    TaggerProbe,
    class_names_for,
    load_pretrained,
    read_class_map,
    resample,
)
from .clap import AVE_LABELS, ClapProbe, load_clap
from .panns import PannsProbe
from .yamnet import YAMNET_FRAME, YamnetProbe, load_yamnet

__all__ = ["ACTIVATIONS", "AVE_LABELS", "SCORES", "YAMNET_FRAME", "Activation", "AstProbe", "ClapProbe", "PannsProbe",
           "Score", "TaggerConfig", "TaggerProbe", "YamnetProbe", "ast", "clap", "class_names_for", "load_ast",
           "load_clap", "load_pretrained", "load_yamnet", "panns", "read_class_map", "resample", "yamnet"]
