"""The one training loop: AdamW over shuffled mini-batches, for every small model earmark trains.

The eval protocol's heads, the linear probe's classifier and the transfer scorer's encoders differ in their
models and losses, not in how they are fitted, so they share :func:`adamw_epochs`. torch is imported only by the
callers (this module asks for nothing but the modules and a loss function).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np


def adamw_epochs(modules: Sequence[Any], n: int, batch_loss: Callable[[np.ndarray], Any], *, epochs: int,
                 batch_size: int, lr: float, weight_decay: float, rng: np.random.Generator,
                 after_epoch: Callable[[int], bool] | None = None) -> int:
    """Fit the parameters of ``modules`` (torch modules, in this order) with AdamW for at most ``epochs`` epochs.

    Each epoch visits the ``n`` examples once in an order drawn from ``rng`` (numpy, so runs are reproducible
    from a seed), ``batch_size`` at a time: ``batch_loss(idx)`` returns the scalar loss of the examples ``idx``
    (a numpy int64 array). The modules are put in training mode at the start of each epoch;
    ``after_epoch(epochs_done)`` may evaluate them (and leave them in eval mode) and returns True to stop early.
    Returns the number of epochs run. Seed torch before building the modules: their initial weights are theirs.
    """
    import torch

    opt = torch.optim.AdamW([p for m in modules for p in m.parameters()], lr=lr, weight_decay=weight_decay)
    done = 0
    for epoch in range(epochs):
        for m in modules:
            m.train()
        order = rng.permutation(n)
        for i in range(0, n, batch_size):
            loss = batch_loss(order[i:i + batch_size])
            opt.zero_grad()
            loss.backward()
            opt.step()
        done = epoch + 1
        if after_epoch is not None and after_epoch(done):
            break
    return done
