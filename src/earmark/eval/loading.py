"""Which dataset a run reads: the AVE folder as given, or a generated one (SynthAVE, RealStamp), made when
missing. The generators' registry sits above them (they import :mod:`.generate`, not the reverse)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..types import Progress
from .config import EvalConfig
from .datasets import Dataset, load_ave
from .generate import load_generated


def generator(dataset: str) -> tuple[Any, Callable[..., Path], str, str]:
    """(config class, maker, manifest file name, dataset name) of a generated dataset (``synth``, ``realstamp``)."""
    if dataset == "synth":
        from . import synthave

        return synthave.SynthConfig, synthave.make_synthave, synthave.MANIFEST, "synthave"
    from . import realstamp

    return realstamp.RealStampConfig, realstamp.make_realstamp, realstamp.MANIFEST, "realstamp"


def load_dataset(cfg: EvalConfig, work: Path, progress: Progress | None = None) -> tuple[Dataset, dict]:
    """The AVE root as given, or a generated folder (SynthAVE, RealStamp; made when missing)."""
    meta: dict[str, Any] = {"name": cfg.dataset}
    if cfg.dataset == "ave":
        if not cfg.root:
            raise ConfigError("eval ave needs --root DIR (the AVE folder with Annotations.txt and the videos)")
        ds = load_ave(cfg.root, strict=cfg.strict, limit=cfg.limit)
        return ds, meta
    config_cls, make, manifest_name, name = generator(cfg.dataset)
    root = Path(cfg.root) if cfg.root else work / name
    # Resumable and checked: a folder made with other settings is refused, finished clips are kept.
    make(root, config_cls.from_dict(cfg.generator), workers=cfg.workers,
         progress=progress)
    ds, m = load_generated(root, manifest_name, f"earmark.{name}", strict=cfg.strict, limit=cfg.limit)
    meta.update(root=str(root), generator_config=m["config"])
    return ds, meta
