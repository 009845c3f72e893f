"""Writing a SynthAVE folder: the clips (on the parallel runner, resumable), the AVE label files and the manifest."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from ...types import Progress
from ..generate import finish_folder, open_folder, run_jobs, write_clip
from .clips import classes, plan_clips
from .picture import clip_frames
from .sound import SAMPLE_RATE, clip_audio
from .spec import LEGACY_SETTINGS, SynthConfig

MANIFEST = "synthave.json"


def make_synthave(out_dir: str | Path, config: SynthConfig | None = None, *, workers: int | None = None,
                  progress: Progress | None = None) -> Path:
    """Write a SynthAVE folder in the AVE layout (resumable: finished clips are kept).

    >>> make_synthave("synthave", SynthConfig(n=60, snr_db=10))   # doctest: +SKIP

    Writes ``Annotations.txt``, ``trainSet.txt``, ``valSet.txt``, ``testSet.txt``, ``AVE/<id>.mp4`` and
    ``synthave.json`` (the config and every clip's truth). A folder made with other settings is refused; one
    made before a setting existed counts as made with :data:`LEGACY_SETTINGS` (add them to resume it):

    >>> make_synthave("old-folder", SynthConfig(n=60, **LEGACY_SETTINGS))   # doctest: +SKIP
    """
    cfg = config or SynthConfig()
    cfg.check()
    root = Path(out_dir)
    videos = open_folder(root, MANIFEST, "earmark.synthave", asdict(cfg), asdict(SynthConfig()),
                         missing=LEGACY_SETTINGS)
    todo = plan_clips(cfg)
    run_jobs(write_clip, [(clip_audio, clip_frames, cfg, spec, i, str(videos), SAMPLE_RATE) for spec, i in todo],
             workers, progress)
    rows = [(spec.split, f"{spec.category}&{spec.video_id}&good&{spec.start_s}&{spec.end_s}") for spec, _ in todo]
    finish_folder(root, MANIFEST, rows, {"kind": "earmark.synthave", "version": 1, "config": asdict(cfg),
                                         "classes": list(classes()), "segments": cfg.duration_s,
                                         "clips": [asdict(spec) for spec, _ in todo]})
    return root
