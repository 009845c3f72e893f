"""SynthAVE's de-engineered draws: a stripe period per clip, event sounds that need not name the class, and the
legacy settings that make the generator from before them byte for byte."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import subprocess
import sys
from collections import defaultdict
from dataclasses import asdict, fields, replace
from pathlib import Path

import numpy as np
import PIL
import pytest

from earmark.cli import main
from earmark.errors import ConfigError
from earmark.eval.datasets import DatasetError
from earmark.eval.synthave import (
    LEGACY_SETTINGS,
    N_SOUNDS,
    SynthConfig,
    clip_audio,
    clip_frames,
    glyph,
    make_synthave,
    paste,
    plan_clips,
)

REPO = Path(__file__).resolve().parents[1]
BEFORE = "51be452"
"""The last commit whose generator had no stripe-period range and a sound per class."""
LEGACY = SynthConfig(n=30, **LEGACY_SETTINGS)
DIGESTS = {  # sha256[:16] of (frames at s + 0.25 for every second, audio) made by BEFORE's generator, n=30, seed 0
    "train00000": ("4657c988dc7cef66", "3a9ca4bb6db9f08d"),
    "train00001": ("9a4e62ae3323c574", "d61e25804cf2c83c"),
    "train00002": ("214d0cafc42b2033", "00caa6610abd2e5e"),  # an event in 0-4 s, a distractor disc, two knocks
}
DIGEST_VERSIONS = ("2.4", "13.0")
"""numpy and Pillow (major.minor) the digests were recorded with: float rounding may differ with others."""


def _frames(cfg: SynthConfig, spec, i: int, frames_fn=clip_frames) -> np.ndarray:
    frame = frames_fn(cfg, spec, i)
    return np.stack([frame(0, s + 0.25) for s in range(cfg.duration_s)])


def _digest(a: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()[:16]


def _generator_before(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """BEFORE's ``synthave.py`` as a module (its relative imports pointed at today's package), or skip."""
    try:
        src = subprocess.run(["git", "-C", str(REPO), "show", f"{BEFORE}:src/earmark/eval/synthave.py"],
                             capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip(f"commit {BEFORE} is not in this checkout's history")
    path = tmp_path / "synthave_before.py"
    path.write_text(src.replace("from ..", "from earmark.").replace("from .", "from earmark.eval."))
    spec = importlib.util.spec_from_file_location("synthave_before", path)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)  # where its dataclasses look themselves up
    spec.loader.exec_module(module)
    return module


def test_legacy_settings_make_the_previous_generators_arrays(tmp_path, monkeypatch):
    """With LEGACY_SETTINGS every random stream is the old one: the same truth, frames and audio (exactly)."""
    old = _generator_before(tmp_path, monkeypatch)
    for cfg in (LEGACY, replace(LEGACY, size=224, av_offset_s=1.0, silent_event_fraction=0.3)):
        old_cfg = old.SynthConfig(**{f.name: getattr(cfg, f.name) for f in fields(old.SynthConfig)})
        new_plan, old_plan = plan_clips(cfg)[:3], old.plan_clips(old_cfg)[:3]
        for (spec, i), (old_spec, _) in zip(new_plan, old_plan):
            truth = asdict(spec)
            assert (truth.pop("stripe_period"), truth.pop("sound")) == (3.0, spec.class_index)
            assert truth == asdict(old_spec)
            assert np.array_equal(_frames(cfg, spec, i), _frames(old_cfg, old_spec, i, old.clip_frames))
            assert np.array_equal(clip_audio(cfg, spec, i), old.clip_audio(old_cfg, old_spec, i))


@pytest.mark.skipif(tuple(".".join(v.split(".")[:2]) for v in (np.__version__, PIL.__version__))
                    != DIGEST_VERSIONS, reason=f"digests recorded with numpy/Pillow {DIGEST_VERSIONS}")
def test_legacy_settings_match_the_recorded_digests():
    """The same without git history: digests of the previous generator's arrays, recorded before the change."""
    got = {spec.video_id: (_digest(_frames(LEGACY, spec, i)), _digest(clip_audio(LEGACY, spec, i)))
           for spec, i in plan_clips(LEGACY)[:3]}
    assert got == DIGESTS


def test_stripe_period_is_drawn_per_clip_in_the_range_and_follows_the_seed():
    cfg = SynthConfig(n=200)
    periods = np.array([spec.stripe_period for spec, _ in plan_clips(cfg)])
    assert periods.min() >= 2.5 and periods.max() <= 8.0 and len(set(periods)) == len(periods)
    # log-uniform: ln(4/2.5)/ln(8/2.5) = 40 % of clips below 4 px (only 448 reads them), 40 % at 5 px and up
    assert 0.3 < np.mean(periods < 4) < 0.5 and 0.3 < np.mean(periods >= 5) < 0.5
    assert [s.stripe_period for s, _ in plan_clips(cfg)] == periods.tolist()
    assert [s.stripe_period for s, _ in plan_clips(replace(cfg, seed=1))] != periods.tolist()
    narrow = [s.stripe_period for s, _ in plan_clips(replace(cfg, stripe_period_min=4.0, stripe_period_max=4.0))]
    assert set(narrow) == {4.0}


def _luma_period(img: np.ndarray) -> float:
    """The dominant stripe period of a picture (pixels), from its 2-D spectrum."""
    luma = img @ np.array([0.299, 0.587, 0.114])
    spec = np.abs(np.fft.fft2(luma - luma.mean(), s=(256, 256)))
    fy, fx = np.meshgrid(np.fft.fftfreq(256), np.fft.fftfreq(256), indexing="ij")
    k = np.unravel_index(np.argmax(spec), spec.shape)
    return 1.0 / float(np.hypot(fy[k], fx[k]))


def test_frames_draw_the_glyph_at_the_clips_period():
    cfg = SynthConfig(n=100, distractor_rate=0.0)
    plan = [(s, i) for s, i in plan_clips(cfg) if s.start_s >= 1 and s.end_s - s.start_s >= 2]
    for spec, i in (min(plan, key=lambda p: p[0].stripe_period), max(plan, key=lambda p: p[0].stripe_period)):
        t = spec.start_s + 0.5
        bare = clip_frames(cfg, replace(spec, start_s=0, end_s=0), i)(0, t).astype(float)
        shown = clip_frames(cfg, spec, i)(0, t).astype(float)
        ys, xs = np.nonzero(np.abs(shown - bare).max(-1) > 0)
        cy, cx = int(ys.mean()), int(xs.mean())
        est = _luma_period(shown[cy - 8:cy + 8, cx - 8:cx + 8])  # inside the 29 px disc
        assert abs(est - spec.stripe_period) < 0.2 * spec.stripe_period, (est, spec.stripe_period)


def test_coarse_glyphs_read_at_224_and_fine_ones_need_448():
    """Nearest-centroid orientation reading with the built-in gabor encoder (7 orientations, random phase, tilt
    and position): at 2.5 px only 448 reads the glyph; at 8 px 224 reads it as well."""
    import torch
    from PIL import Image

    from earmark.eval.encoders import GaborEncoder

    enc, rng = GaborEncoder(), np.random.default_rng(0)
    threads = torch.get_num_threads()

    def accuracy(period: float, size: int) -> float:
        pictures, y = [], np.tile(np.arange(7), 8)
        for c in y:
            canvas = np.full((448, 448, 3), 128.0)
            g, a = glyph(int(c), 29, rng.uniform(0, 2 * np.pi), rng.uniform(-0.08, 0.08), period)
            paste(canvas, g, a, *rng.uniform(190, 260, 2))
            pictures.append(np.asarray(Image.fromarray(canvas.astype(np.uint8)).resize((size, size), Image.BILINEAR)))
        torch.set_num_threads(1)  # as the eval encodes: two threads beside a busy process take 10x longer
        try:
            x = enc.encode(np.stack(pictures)).tokens.max(1)
        finally:
            torch.set_num_threads(threads)
        train, test = slice(0, 28), slice(28, None)
        centre = np.stack([x[train][y[train] == c].mean(0) for c in range(7)])
        sd = x[train].std(0) + 1e-6
        guess = np.argmin((((x[test][:, None] - centre[None]) / sd) ** 2).sum(-1), 1)
        return float(np.mean(guess == y[test]))

    fine, coarse = {s: accuracy(2.5, s) for s in (224, 448)}, {s: accuracy(8.0, s) for s in (224, 448)}
    assert fine[448] >= 0.75 and fine[224] <= 0.5, fine  # chance: 1 in 7
    assert coarse[448] >= 0.9 and coarse[224] >= 0.75, coarse


def test_shared_sounds_do_not_name_the_class():
    """Each run of 28 clips of a split hears every sound once, whatever the classes: a class has many sounds, a
    sound many classes, and a clip's audio is the same whichever class it is labelled."""
    plan = plan_clips(SynthConfig(n=400))
    by_class, by_sound = defaultdict(set), defaultdict(set)
    for spec, _ in plan:
        by_class[spec.class_index].add(spec.sound)
        by_sound[spec.sound].add(spec.class_index)
    assert max(len(v) for v in by_class.values()) >= 5  # a class, many sounds
    assert max(len(v) for v in by_sound.values()) >= 5  # a sound, many classes
    train = [spec.sound for spec, _ in plan if spec.split == "train"]
    runs = [train[a:a + N_SOUNDS] for a in range(0, len(train) - N_SOUNDS + 1, N_SOUNDS)]
    assert len(runs) == 11 and all(sorted(r) == list(range(N_SOUNDS)) for r in runs)
    assert np.mean([spec.sound == spec.class_index for spec, _ in plan]) < 0.1  # chance: 1 in 28
    half = plan_clips(SynthConfig(n=400, class_sound_fraction=0.5))
    assert 0.4 < np.mean([spec.sound == spec.class_index for spec, _ in half]) < 0.65
    assert all(spec.sound == spec.class_index for spec, _ in plan_clips(SynthConfig(n=400, class_sound_fraction=1)))
    spec, i = next((s, i) for s, i in plan if not s.silent and s.end_s > s.start_s)
    other = (spec.class_index + 1) % 28
    relabelled = replace(spec, class_index=other, category="another class")
    assert np.array_equal(clip_audio(SynthConfig(n=400), spec, i), clip_audio(SynthConfig(n=400), relabelled, i))


def test_each_new_draw_leaves_the_other_streams_alone():
    """The new draws come from their own stream: the label structure never moves, legacy stripes with shared
    sounds give the legacy frames, and a clip whose random sound is its own class's gives the legacy audio."""
    shared = SynthConfig(n=30, stripe_period_min=3.0, stripe_period_max=3.0)
    legacy_plan, shared_plan = plan_clips(LEGACY), plan_clips(shared)
    strip = ("stripe_period", "sound")
    assert [{k: v for k, v in asdict(s).items() if k not in strip} for s, _ in legacy_plan] == \
        [{k: v for k, v in asdict(s).items() if k not in strip} for s, _ in shared_plan]
    (a, i), (b, _) = legacy_plan[2], shared_plan[2]
    assert np.array_equal(_frames(LEGACY, a, i), _frames(shared, b, i))
    assert not np.array_equal(clip_audio(LEGACY, a, i), clip_audio(shared, b, i))  # its sound is another
    assert np.array_equal(clip_audio(LEGACY, a, i), clip_audio(shared, replace(b, sound=a.class_index), i))


def test_same_settings_same_arrays():
    cfg = SynthConfig(n=30, seed=4)
    (spec, i), (again, j) = plan_clips(cfg)[2], plan_clips(SynthConfig(n=30, seed=4))[2]
    assert spec == again and i == j
    assert np.array_equal(_frames(cfg, spec, i), _frames(cfg, again, j))
    assert np.array_equal(clip_audio(cfg, spec, i), clip_audio(cfg, again, j))


@pytest.mark.parametrize("settings, message", [
    ({"stripe_period_min": 5.0, "stripe_period_max": 4.0},
     "stripe_period_min must be <= stripe_period_max, got 5.0 > 4.0"),
    ({"stripe_period_min": 1.5}, r"stripe_period_min must be in \[2, 12\] px at 448 px, got 1.5"),
    ({"stripe_period_max": 20.0}, r"stripe_period_max must be in \[2, 12\] px at 448 px, got 20.0"),
    ({"class_sound_fraction": 1.5}, r"class_sound_fraction must be in \[0, 1\], got 1.5"),
])
def test_bad_settings_are_one_line_errors(settings, message):
    with pytest.raises(ConfigError, match=f"^{message}$"):
        SynthConfig(**settings).check()


def test_old_folders_read_as_made_with_the_legacy_settings(tmp_path, capsys):
    """A folder whose stored settings predate the new keys resumes with the legacy flags and is refused with
    today's defaults; the CLI's legacy flags write exactly those settings."""
    root = tmp_path / "old"
    assert main(["eval", "synth", "--make", str(root), "--n", "3", "--stripe-period", "3", "3",
                 "--class-sound-fraction", "1", "--workers", "1", "-q"]) == 0
    manifest = json.loads((root / "synthave.json").read_text())
    assert manifest["config"] == asdict(SynthConfig(n=3, **LEGACY_SETTINGS))
    for key in LEGACY_SETTINGS:  # as a folder made before these settings existed stores it
        del manifest["config"][key]
    (root / "synthave.json").write_text(json.dumps(manifest))
    first = sorted((root / "AVE").iterdir())[0]
    made = first.read_bytes()
    first.unlink()
    with pytest.raises(DatasetError, match="made with other settings"):
        make_synthave(root, SynthConfig(n=3), workers=1)
    make_synthave(root, SynthConfig(n=3, **LEGACY_SETTINGS), workers=1)
    assert first.read_bytes() == made
    capsys.readouterr()
    assert main(["eval", "synth", "--make", str(tmp_path / "bad"), "--stripe-period", "1", "3", "-q"]) == 1
    err = capsys.readouterr().err.strip()
    assert err == "earmark: error: stripe_period_min must be in [2, 12] px at 448 px, got 1.0"
    assert not (tmp_path / "bad").exists()
