"""The `learned` probe (shipped weights), its real-sound training set (earmark.realsound) and `train-probe --dataset
sounds`: the shipped file itself, real media written with PyAV, and real Debian package sounds where installed."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

import earmark
from conftest import EVENT_SECONDS
from earmark import realsound as rs
from earmark.cli import main
from earmark.errors import ConfigError
from earmark.media.write import write_media
from earmark.probes import get_probe
from earmark.probes.learned import LearnedProbe, context_features, learned_weights

torch = pytest.importorskip("torch", reason="the learned probe needs torch (pip install -e '.[probes]')")

# benchmarks/learned_probe.py and the docstrings name this command; the shipped file must be its output.
DOCUMENTED = {"dataset": "sounds", "seed": 0, "context_s": 10.0, "clips": 600, "hidden": 32, "epochs": 40,
              "n_mels": 32, "embed": "logmel-stats", "snr_db": [-6.0, 12.0]}


def run(capsys, *args) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_shipped_weights_load_with_weights_only_and_have_the_documented_shape():
    path = learned_weights()
    assert path.is_file() and path.stat().st_size < 5 * 2**20
    ck = torch.load(path, map_location="cpu", weights_only=True)
    assert ck["format"] == "earmark.linear-probe"
    assert (ck["n_in"], ck["hidden"], ck["n_mels"], ck["context_s"]) == (128, 32, 32, 10.0)
    shapes = {k: tuple(v.shape) for k, v in ck["state_dict"].items()}
    assert shapes == {"0.weight": (32, 128), "0.bias": (32,), "2.weight": (1, 32), "2.bias": (1,)}
    assert ck["mean"].shape == ck["std"].shape == (128,)
    cfg = json.loads(ck["config"])
    assert {k: cfg[k] for k in DOCUMENTED} == DOCUMENTED
    metrics = json.loads(ck["metrics"])
    assert metrics["val"]["clips"] == 120 and metrics["val"]["auc"] > 0.9


def test_learned_probe_runs_on_a_real_file_and_is_deterministic(events_mp4):
    a = earmark.index(events_mp4, probe="learned")
    b = earmark.index(events_mp4, probe="learned")
    assert a.probe == "learned" and a.raw_unit == "logit" and len(a) == 12
    assert np.isfinite(a.raw).all()
    assert np.array_equal(a.raw, b.raw) and np.array_equal(a.scores, b.scores)
    # A tone burst, a noise burst and a chirp over room tone: each is an event to it.
    assert sorted(x.index for x in earmark.anchors(a, k=3)) == EVENT_SECONDS
    # The config records no install path: the weights default to the shipped file.
    assert a.probe_config["weights"] is None and a.probe_config["context_s"] == 10.0


def test_learned_probe_is_listed_as_ready_and_names_its_extra_when_torch_is_missing(capsys, monkeypatch):
    code, out, _ = run(capsys, "probes", "--json")
    rows = {r["name"]: r for r in json.loads(out)}
    assert code == 0 and rows["learned"]["available"] is True and rows["learned"]["needs_weights"] is False
    code, text, _ = run(capsys, "probes")
    assert code == 0 and any(line.startswith("learned") and line.rstrip().endswith("yes")
                             for line in text.splitlines())
    from earmark import _extras

    monkeypatch.setattr(_extras, "importable", lambda package: package != "torch")
    assert LearnedProbe.unavailable() == 'needs the torch package: pip install -e ".[probes]"'
    with pytest.raises(ConfigError, match=r"^probe 'learned' needs the torch package: pip install -e \"\.\[probes\]\""):
        get_probe("learned")


def test_learned_probe_takes_another_checkpoint_and_rejects_a_bad_one(tmp_path, events_mp4):
    with pytest.raises(ConfigError, match="does not exist"):
        get_probe("learned", weights=str(tmp_path / "none.pt"))
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(ConfigError, match=f"{junk}: not a torch checkpoint"):
        earmark.index(events_mp4, probe="learned", weights=str(junk))


def test_context_features_subtract_the_median_of_the_neighbours():
    f = np.random.default_rng(0).standard_normal((9, 3)).astype(np.float32)
    out = context_features(f, radius=2, block=4)  # blocks smaller than the file: the same answer
    want = np.stack([f[i] - np.median(f[max(0, i - 2): i + 3], 0) for i in range(9)])
    assert out.shape == (9, 6)
    np.testing.assert_array_equal(out[:, :3], f)
    np.testing.assert_allclose(out[:, 3:], want, rtol=0, atol=1e-6)


# ------------------------------------------------------------------------------------------- data builder


def _pool(seed: int = 5) -> rs.Pool:
    """Stand-ins for decoded recordings (the builder's arithmetic does not care what they are)."""
    rng = np.random.default_rng(seed)
    events = [np.sin(np.arange(n) * f) for n, f in ((16_000, 0.3), (30_000, 0.05), (12_000, 0.9))]
    return rs.Pool(events, [rng.standard_normal(70 * rs.SR) * 0.1], [rng.standard_normal(rs.SR) * 0.1],
                   {"event": ["a.ogg", "b.ogg", "c.ogg"], "music": ["m.wav"], "speech": ["s.wav"]})


def test_mixtures_are_deterministic_and_the_truth_is_where_the_events_are():
    pool = _pool()
    for bed in rs.BEDS:
        a = rs.make_clip(np.random.default_rng([7, 1]), bed, pool.events, pool.music, pool.speech, snr_db=(0, 0))
        b = rs.make_clip(np.random.default_rng([7, 1]), bed, pool.events, pool.music, pool.speech, snr_db=(0, 0))
        assert np.array_equal(a.audio, b.audio) and a.truth == b.truth and a.snr_db == [0.0] * 5
        assert a.audio.dtype == np.float32 and a.audio.shape == (60 * rs.SR,)
        # 1–3 s of each recording, or all of a shorter one (the 0.75 s stand-in)
        assert len(a.truth) == 5 and all(0 < s < e <= 60 and 0.75 <= e - s <= 3.0 + 1e-9 for s, e in a.truth)
    c = rs.make_clip(np.random.default_rng([8, 1]), "music", pool.events, pool.music, pool.speech)
    assert c.truth != a.truth
    y = rs.window_targets([(2.1, 3.9)], np.arange(6.0), 1.0)
    assert y.tolist() == [0, 0, 1, 1, 0, 0]
    assert rs.window_targets([(2.9, 4.0)], np.arange(6.0), 1.0).tolist() == [0, 0, -1, 1, 0, 0]


def test_the_training_set_builder_gives_the_same_arrays_for_the_same_seed(monkeypatch):
    from earmark.train.linear import TrainProbeConfig, sound_features

    monkeypatch.setattr(rs, "load_pool", lambda names: _pool())
    monkeypatch.setattr(rs, "split_of", lambda path, share=2: "val" if Path(path).stem == "c" else "rest")
    cfg = TrainProbeConfig(dataset="sounds", clips=2, context_s=10.0, seed=3)
    a, b = sound_features(cfg), sound_features(cfg)
    c = sound_features(dataclasses.replace(cfg, seed=4))
    assert sorted(a) == ["train", "val"] and a["train"][0].shape == (2, 60, 128) and a["val"][2] == 1
    for split in a:
        assert np.array_equal(a[split][0], b[split][0]) and np.array_equal(a[split][1], b[split][1])
    assert not np.array_equal(a["train"][0], c["train"][0])
    assert set(np.unique(a["train"][1])) <= {-1.0, 0.0, 1.0} and (a["train"][1] == 1).sum() >= 10


def test_a_missing_package_is_one_line_naming_the_apt_get_install(capsys, monkeypatch, tmp_path):
    gone = dataclasses.replace(rs.SOUND_SETS["tuxpaint-objects"], root=str(tmp_path / "stamps"))
    monkeypatch.setitem(rs.SOUND_SETS, "tuxpaint-objects", gone)
    with pytest.raises(ConfigError) as e:
        rs.require(rs.TRAIN_SETS)
    assert str(e.value) == (f"{tmp_path / 'stamps'}: not found; the tuxpaint-objects sounds need: "
                            "apt-get install tuxpaint-stamps-default")
    out = tmp_path / "p.pt"
    code, _, err = run(capsys, "train-probe", "--dataset", "sounds", "--out", out)
    assert code == 1 and err.strip().splitlines() == [f"earmark: error: {e.value}"]
    assert not out.exists()
    code, _, err = run(capsys, "train-probe", "--dataset", "sounds", "--root", tmp_path, "--out", out)
    assert code == 1 and "--root does nothing with --dataset sounds" in err
    code, _, err = run(capsys, "train-probe", "--dataset", "synth", "--out", out)
    assert code == 1 and "--dataset synth needs --root DIR" in err


# ------------------------------------------------------------------------------------------- real sounds

STAMPS = Path(rs.SOUND_SETS["tuxpaint-objects"].root)
MOH = Path(rs.SOUND_SETS["asterisk-moh"].root)
OBJECT = STAMPS / "household/tools/saw.ogg"  # in the val fifth: never in the shipped probe's training
MUSIC = MOH / "macroform-cold_day.wav"


@pytest.mark.skipif(not (OBJECT.exists() and MUSIC.exists()),
                    reason="needs Debian's tuxpaint-stamps-default and asterisk-moh-opsound-wav (apt-get install "
                           "tuxpaint-stamps-default asterisk-moh-opsound-wav; .ci/run installs them)")
def test_a_real_object_sound_over_real_music_gets_the_top_window(tmp_path):
    music = rs.load(MUSIC, 60.0)[30 * rs.SR:]  # 30 s of music, from 0:30
    saw = rs.active(rs.load(OBJECT))
    assert rs.split_of(OBJECT, 5) == "val"
    clip = rs.make_clip(np.random.default_rng(11), "music", [saw], [music], [], n_events=1, snr_db=(0.0, 0.0),
                        clip_s=24.0)
    (start, end), = clip.truth
    path = write_media(tmp_path / "saw_over_music.wav", 24.0, clip.audio, rs.SR, video=None)
    tl = earmark.index(path, probe="learned")
    top = int(np.argmax(tl.scores))
    assert tl.starts[top] < end and start < tl.starts[top] + tl.window_s, (top, clip.truth)
    a = earmark.anchors(tl, k=1)[0]
    assert a.source == "audio" and a.start_s < end and start < a.end_s
