"""PANNs CNN14 (Kong et al. 2020, "PANNs: Large-Scale Pretrained Audio Neural Networks"), as the ``panns`` probe's
model: earmark's own implementation of the published architecture, whose parameter names match the released
checkpoints (``Cnn14_mAP=0.431.pth``: 32 kHz, 1024-point STFT; ``Cnn14_16k_mAP=0.438.pth``: 16 kHz, 512), so
``torch.load(weights_only=True)`` + ``load_state_dict`` reads them unchanged.

Front end: a framed DFT as two fixed 1-D convolutions (the checkpoint's own kernels, window included), power,
its own mel matrix, 10·log10. Then a BatchNorm over mel bins, six blocks of two 3×3 conv + BN + ReLU with 2×2
average pooling (none after the last), mean over frequency, max + mean over time, ``fc1`` + ReLU (the 2048-d
embedding) and ``fc_audioset`` (logits; the paper's sigmoid is applied by the probe). Widths, mel bins, FFT size
and class count are read from the checkpoint's tensor shapes, so smaller CNN14-shaped checkpoints load too
(the tests use a tiny random one).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ..errors import ConfigError

BLOCKS = 6
WIDTHS = (64, 128, 256, 512, 1024, 2048)
RATE_BY_FFT = {256: 8_000, 512: 16_000, 1024: 32_000}
"""The released CNN14 variants: 10 ms hop and a 32 ms window at each sample rate."""


class _Block(nn.Module):
    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1, bias=False)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.bn2 = nn.BatchNorm2d(c_out)

    def forward(self, x: torch.Tensor, pool: bool) -> torch.Tensor:
        x = F.relu(self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x))))))
        return F.avg_pool2d(x, 2) if pool else x


class _Stft(nn.Module):
    def __init__(self, n_fft: int) -> None:
        super().__init__()
        n = np.arange(n_fft)
        k = np.arange(n_fft // 2 + 1)[:, None]
        window = 0.5 - 0.5 * np.cos(2 * np.pi * n / n_fft)  # periodic Hann
        self.conv_real = nn.Conv1d(1, len(k), n_fft, bias=False)
        self.conv_imag = nn.Conv1d(1, len(k), n_fft, bias=False)
        with torch.no_grad():
            self.conv_real.weight.copy_(torch.from_numpy(window * np.cos(2 * np.pi * k * n / n_fft))[:, None].float())
            self.conv_imag.weight.copy_(torch.from_numpy(-window * np.sin(2 * np.pi * k * n / n_fft))[:, None].float())


class _Spectrogram(nn.Module):
    def __init__(self, n_fft: int) -> None:
        super().__init__()
        self.stft = _Stft(n_fft)


class _Logmel(nn.Module):
    def __init__(self, n_fft: int, n_mels: int, rate: int) -> None:
        super().__init__()
        from .dsp import mel_filterbank

        self.melW = nn.Parameter(torch.from_numpy(mel_filterbank(rate, n_fft, n_mels, 50.0, rate / 2 - 1000.0))
                                 .float(), requires_grad=False)


class Cnn14(nn.Module):
    """CNN14 with the released checkpoints' parameter names; ``forward(wave (B, n))`` -> (logits, embedding)."""

    def __init__(self, classes: int = 527, n_mels: int = 64, n_fft: int = 1024, widths: tuple[int, ...] = WIDTHS,
                 embed: int | None = None) -> None:
        super().__init__()
        if n_fft not in RATE_BY_FFT:
            raise ValueError(f"n_fft must be one of {sorted(RATE_BY_FFT)}")
        self.classes, self.n_fft = classes, n_fft
        self.sample_rate = RATE_BY_FFT[n_fft]
        self.hop = self.sample_rate // 100
        self.spectrogram_extractor = _Spectrogram(n_fft)
        self.logmel_extractor = _Logmel(n_fft, n_mels, self.sample_rate)
        self.bn0 = nn.BatchNorm2d(n_mels)
        c_in = 1
        for i, w in enumerate(widths, 1):
            setattr(self, f"conv_block{i}", _Block(c_in, w))
            c_in = w
        embed = embed or widths[-1]
        self.fc1 = nn.Linear(widths[-1], embed)
        self.fc_audioset = nn.Linear(embed, classes)

    def logmel(self, wave: torch.Tensor) -> torch.Tensor:
        """(B, n) samples -> (B, 1, frames, mels) log-mel in dB (centred frames, reflect padding)."""
        pad = self.n_fft // 2
        x = F.pad(wave[:, None, :], (pad, pad), mode="reflect")
        st = self.spectrogram_extractor.stft
        re = F.conv1d(x, st.conv_real.weight, stride=self.hop)
        im = F.conv1d(x, st.conv_imag.weight, stride=self.hop)
        power = (re * re + im * im).transpose(1, 2)  # (B, frames, bins)
        mel = power @ self.logmel_extractor.melW
        return 10.0 * torch.log10(mel.clamp_min(1e-10))[:, None]

    def forward(self, wave: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.logmel(wave)
        x = self.bn0(x.transpose(1, 3)).transpose(1, 3)  # normalise each mel bin
        for i in range(1, BLOCKS + 1):
            x = getattr(self, f"conv_block{i}")(x, pool=i < BLOCKS)
        x = x.mean(3)  # over frequency -> (B, C, T)
        x = x.amax(2) + x.mean(2)
        emb = F.relu(self.fc1(x))
        return self.fc_audioset(emb), emb


def load_cnn14(path: str | Path) -> Cnn14:
    """A CNN14 from a PANNs checkpoint (``{'model': state_dict, ...}`` or a bare state dict), read with
    ``torch.load(weights_only=True)``; clear errors naming the file for anything else."""
    import pickle

    p = Path(path)
    try:
        ck = torch.load(p, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError) as e:
        raise ConfigError(f"{p}: not a torch checkpoint the panns probe can read "
                          f"({str(e).splitlines()[0][:100]})") from None
    sd = ck.get("model", ck) if isinstance(ck, dict) else None
    need = ("fc_audioset.weight", "logmel_extractor.melW", "spectrogram_extractor.stft.conv_real.weight",
            *(f"conv_block{i}.conv1.weight" for i in range(1, BLOCKS + 1)))
    if not isinstance(sd, dict) or any(k not in sd for k in need):
        keys = ", ".join(list(sd)[:4]) if isinstance(sd, dict) else type(ck).__name__
        raise ConfigError(f"{p}: not a PANNs CNN14 checkpoint (expected keys like conv_block1..6, fc1, "
                          f"fc_audioset, logmel_extractor.melW; found {keys} ...)")
    n_fft = int(sd["spectrogram_extractor.stft.conv_real.weight"].shape[-1])
    if n_fft not in RATE_BY_FFT:
        raise ConfigError(f"{p}: a CNN14 with a {n_fft}-point STFT; the released ones use {sorted(RATE_BY_FFT)}")
    widths = tuple(int(sd[f"conv_block{i}.conv1.weight"].shape[0]) for i in range(1, BLOCKS + 1))
    model = Cnn14(classes=int(sd["fc_audioset.weight"].shape[0]), n_mels=int(sd["logmel_extractor.melW"].shape[1]),
                  n_fft=n_fft, widths=widths, embed=int(sd["fc1.weight"].shape[0]))
    state = {k: v for k, v in sd.items() if not k.startswith("spec_augmenter")}
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise ConfigError(f"{p}: the weights do not fit CNN14 ({str(e).splitlines()[0][:140]})") from None
    return model.eval()
