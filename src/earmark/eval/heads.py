"""Trainable heads over frozen per-second features (torch, CPU): the eval protocol's classifiers.

Inputs come *packed*: every second of every clip in a batch contributes its own number of patch tokens
(a 448 px frame has 16× the tokens of a 112 px one), so tokens are one (N, D) array with ``seg`` naming the
second each belongs to; no padding is ever computed. Heads:

- ``mlp``: each second's CLS feature -> MLP (no context across seconds).
- ``temporal``: CLS features -> two residual 1D convolutions over the seconds plus a clip-context term (the
  max over seconds, projected, added to every second) -> classifier.
- ``transformer``: CLS features -> one transformer encoder layer over the seconds -> classifier.
- ``gated``: token-importance gated pooling of each second's patch tokens (each token fused with the CLS token
  -> sigmoid initial importance; refined by attention against the CLS token; masked weighted sum over that
  second's patch tokens, CLS excluded; LayerNorm + Linear), then the temporal convolutions. Its gate values are
  exported (:meth:`Head.importance`) to compare with gradient importance.
- ``ave``: the gated pooling and temporal convolutions, then an output shaped like AVE's labels (one event
  class per clip, present in some seconds): per second an event/background probability, per clip one class
  distribution pooled over the seconds by learned confidence (a second seen sharply can name the class for
  the blurry ones), p(second t = class k) = p(event at t) · p(clip class = k), p(background) = 1 − p(event).

Audio features, when given, are concatenated to each second's embedding before the temporal layers
(the ``audio-concat`` strategy: audio as extra features, not as an index).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from .config import HEADS


def segment_sum(values: torch.Tensor, seg: torch.Tensor, n: int) -> torch.Tensor:
    out = values.new_zeros((n, *values.shape[1:]))
    return out.index_add_(0, seg, values)


def segment_softmax(scores: torch.Tensor, seg: torch.Tensor, n: int) -> torch.Tensor:
    """Softmax of ``scores`` within each segment (numerically safe: the segment's max is subtracted)."""
    top = scores.new_full((n,), -torch.inf).scatter_reduce(0, seg, scores, reduce="amax", include_self=True)
    e = torch.exp(scores - top[seg])
    return e / segment_sum(e, seg, n)[seg].clamp_min(1e-12)


@dataclass(frozen=True)
class Group:
    """``count`` consecutive seconds of a batch that all have ``length`` tokens, stored contiguously from token
    row ``start``; ``seconds`` (count,) names them in [0, B*T). Seconds encoded at one picture size have one
    token count, so a batch has a group per size (at most three in the protocol) and the pooling over a group is
    dense (``(count, length, D)`` views and plain reductions) instead of scatter/gather over ragged segments."""

    start: int
    count: int
    length: int
    seconds: torch.Tensor


@dataclass
class Batch:
    """Packed features of B clips × T seconds."""

    tokens: torch.Tensor  # (N, D) patch tokens
    seg: torch.Tensor  # (N,) second index in [0, B*T)
    cls: torch.Tensor  # (B*T, D)
    audio: torch.Tensor | None  # (B*T, A)
    y: torch.Tensor  # (B, T)
    groups: tuple[Group, ...] | None = None
    """When set, tokens are ordered group after group (see :class:`Group`) and the heads take the dense path;
    the result equals the ragged path's up to float rounding."""

    @property
    def shape(self) -> tuple[int, int]:
        return int(self.y.shape[0]), int(self.y.shape[1])


def segment_max(values: torch.Tensor, seg: torch.Tensor, n: int) -> torch.Tensor:
    out = values.new_full((n, *values.shape[1:]), -torch.inf)
    idx = seg.view(-1, *([1] * (values.dim() - 1))).expand_as(values)
    return out.scatter_reduce(0, idx, values, reduce="amax", include_self=True)


class GatedPooling(nn.Module):
    def __init__(self, dim: int, hidden: int, max_branch: bool = False) -> None:
        super().__init__()
        self.hidden = hidden
        # A max over the second's token values beside the gated sum: a detail that fills one token of 256 is
        # found from the first step instead of being diluted until the gates learn where to look.
        self.max_branch = nn.Sequential(nn.Linear(dim, hidden), nn.GELU()) if max_branch else None
        self.tok_kv = nn.Linear(dim, 3 * hidden)  # token -> (fusion, key, value) in one matrix product
        self.cls_cq = nn.Linear(dim, 2 * hidden)  # CLS -> (fusion, query)
        self.gate = nn.Linear(hidden, 1)
        self.norm = nn.LayerNorm(hidden)
        self.out = nn.Linear(hidden, hidden)
        self.scale = 1.0 / math.sqrt(hidden)

    def forward(self, tokens: torch.Tensor, seg: torch.Tensor, cls: torch.Tensor, norm: nn.LayerNorm,
                groups: tuple[Group, ...] | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Pool each second's ``tokens`` (raw features; ``norm`` is the head's input LayerNorm) given its ``cls``
        (already normalised) -> (pooled (B*T, hidden), initial gates (N,), refined weights (N,))."""
        if groups is not None:
            return self._dense(tokens, cls, norm, groups)
        tokens = norm(tokens)
        n, h = cls.shape[0], self.hidden
        tf, tk, tv = self.tok_kv(tokens).split(h, -1)
        cf, cq = self.cls_cq(cls).split(h, -1)
        fused = F.gelu(tf + cf[seg])
        initial = torch.sigmoid(self.gate(fused)).squeeze(-1)
        attn = segment_softmax((cq[seg] * tk).sum(-1) * self.scale, seg, n)
        w = initial * attn
        w = w / segment_sum(w, seg, n)[seg].clamp_min(1e-12)
        pooled = self.out(self.norm(segment_sum(w[:, None] * tv, seg, n)))
        if self.max_branch is not None:
            pooled = pooled + segment_max(self.max_branch(tokens), seg, n)
        return pooled, initial, w

    def _dense(self, tokens: torch.Tensor, cls: torch.Tensor, norm: nn.LayerNorm, groups: tuple[Group, ...]
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The same function over size groups (every second of a group has the same token count), with less
        per-token work than the ragged path:

        - the input LayerNorm's affine is folded into the token projections (they are linear): only the
          parameter-free standardisation touches every token, and it needs no gradient;
        - keys and values are linear in the token, so the attention score is the token times the query mapped
          back through the key matrix (the key bias is constant within a second and cancels in the softmax), and
          the value projection is applied once to the weighted mean token (the weights sum to 1);
        - the per-token projections (fusion, max branch) are computed group by group, so the backward pass never
          scatters a group's gradient into a zero-filled batch-sized tensor.
        """
        h = self.hidden
        x_all = F.layer_norm(tokens, norm.normalized_shape, eps=norm.eps)
        gamma, beta = norm.weight, norm.bias
        wt = self.tok_kv.weight * gamma  # (3h, D): W·diag(γ), applied to standardised tokens
        bt = self.tok_kv.bias + self.tok_kv.weight @ beta
        wf, wk, wv = wt.split(h, 0)
        bf, _, bv = bt.split(h, 0)
        if self.max_branch is not None:
            lin = self.max_branch[0]
            wm, bm = lin.weight * gamma, lin.bias + lin.weight @ beta
        cf_all, cq_all = self.cls_cq(cls).split(h, -1)
        pooled, initial, weights = [], [], []
        for g in groups:
            x = x_all[g.start:g.start + g.count * g.length].view(g.count, g.length, -1)
            cf, cq = cf_all[g.seconds], cq_all[g.seconds]
            ini = torch.sigmoid(self.gate(F.gelu(F.linear(x, wf, bf) + cf[:, None, :]))).squeeze(-1)
            attn = torch.softmax(torch.bmm(x, (cq @ wk)[:, :, None]).squeeze(-1) * self.scale, -1)
            w = ini * attn
            w = w / w.sum(-1, keepdim=True).clamp_min(1e-12)
            p = self.out(self.norm(F.linear(torch.bmm(w[:, None, :], x).squeeze(1), wv, bv)))
            if self.max_branch is not None:
                p = p + F.gelu(F.linear(x, wm, bm)).amax(1)
            pooled.append(p)
            initial.append(ini.reshape(-1))
            weights.append(w.reshape(-1))
        order = torch.cat([g.seconds for g in groups])
        out = torch.cat(pooled)[torch.argsort(order)]  # back to second order (every second is in one group)
        return out, torch.cat(initial), torch.cat(weights)


class Head(nn.Module):
    def __init__(self, kind: str, dim: int, n_classes: int, hidden: int = 64, audio_dim: int = 0,
                 dropout: float = 0.1) -> None:
        super().__init__()
        if kind not in HEADS:
            raise ValueError(kind)
        self.kind = kind
        self.in_norm = nn.LayerNorm(dim)
        gated = kind in ("gated", "ave")
        self.pool = GatedPooling(dim, hidden, max_branch=kind == "ave") if gated else None
        self.embed = nn.Linear(dim, hidden) if not gated else None
        self.audio = nn.Sequential(nn.LayerNorm(audio_dim), nn.Linear(audio_dim, hidden)) if audio_dim else None
        width = hidden * (2 if audio_dim else 1)
        self.mix = nn.Linear(width, hidden)
        self.drop = nn.Dropout(dropout)
        if kind in ("temporal", "gated", "ave"):
            self.convs = nn.ModuleList([nn.Conv1d(hidden, hidden, 3, padding=1) for _ in range(2)])
            self.context = nn.Linear(hidden, hidden)
        elif kind == "transformer":
            self.layer = nn.TransformerEncoderLayer(hidden, nhead=4, dim_feedforward=2 * hidden, dropout=dropout,
                                                    batch_first=True)
        elif kind == "mlp":
            self.mlp = nn.Sequential(nn.GELU(), nn.Linear(hidden, hidden), nn.GELU())
        if kind == "ave":
            self.presence = nn.Linear(hidden, 1)
            self.confidence = nn.Linear(hidden, 1)
            self.classify = nn.Linear(hidden, n_classes - 1)  # the event classes; background is the last label
        else:
            self.classify = nn.Linear(hidden, n_classes)
        self.last_gates: tuple[torch.Tensor, torch.Tensor] | None = None

    def forward(self, b: Batch) -> torch.Tensor:
        bsz, t = b.shape
        cls = self.in_norm(b.cls)
        if self.pool is not None:
            e, initial, refined = self.pool(b.tokens, b.seg, cls, self.in_norm, b.groups)
            self.last_gates = (initial, refined)
        else:
            e = self.embed(cls)
        if self.audio is not None and b.audio is not None:
            e = torch.cat([e, self.audio(b.audio)], -1)
        e = self.drop(F.gelu(self.mix(e)))
        if self.kind in ("temporal", "gated", "ave"):
            x = e.view(bsz, t, -1).transpose(1, 2)
            for conv in self.convs:
                x = x + F.gelu(conv(x))
            # Clip context: what the clip's best seconds saw reaches every second (an AVE clip has one class,
            # so a class seen sharply at an anchor should name the blurry seconds too).
            x = x + self.context(x.amax(2))[:, :, None]
            e = x.transpose(1, 2).reshape(bsz * t, -1)
        elif self.kind == "transformer":
            e = self.layer(e.view(bsz, t, -1)).reshape(bsz * t, -1)
        else:
            e = self.mlp(e)
        if self.kind == "ave":
            return self._ave_log_probs(e.view(bsz, t, -1))
        return self.classify(e).view(bsz, t, -1)

    def _ave_log_probs(self, h: torch.Tensor) -> torch.Tensor:
        """(B, T, H) -> (B, T, classes + 1) log-probabilities: event classes from the clip, presence per second."""
        presence = self.presence(h).squeeze(-1)  # (B, T) logit of "an event is on at t"
        weights = torch.softmax(self.confidence(h).squeeze(-1), -1)  # (B, T) which seconds name the class
        clip = torch.log_softmax((weights[..., None] * self.classify(h)).sum(1), -1)  # (B, K)
        event = F.logsigmoid(presence)[..., None] + clip[:, None, :]
        return torch.cat([event, F.logsigmoid(-presence)[..., None]], -1)

    def importance(self, b: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        """The gated head's per-token (initial, refined) importance for a batch (refined sums to 1 per second)."""
        if self.pool is None:
            raise ValueError(f"the {self.kind} head has no token gates")
        with torch.no_grad():
            self.forward(b)
        assert self.last_gates is not None
        return self.last_gates


def gradient_importance(head: Head, b: Batch) -> torch.Tensor:
    """|gradient × input| per token of the predicted class's logit, summed over features (for comparison)."""
    tokens = b.tokens.clone().requires_grad_(True)
    logits = head(Batch(tokens, b.seg, b.cls, b.audio, b.y, b.groups))
    chosen = logits.argmax(-1, keepdim=True)
    logits.gather(-1, chosen).sum().backward()
    return (tokens.grad * tokens).abs().sum(-1).detach()
