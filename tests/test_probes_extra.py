"""Visual probes (motion, cut, novelty), hybrid, the no-audio fallback, Silero VAD, the linear probe and
`earmark probes`: real media written with PyAV, the real ONNX / torch loading code, tiny models in temp dirs."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

import earmark
from conftest import EVENT_SECONDS, SR
from earmark.cli import main
from earmark.errors import ConfigError, EarmarkWarning, NoAudioStreamError
from earmark.media.write import VideoSpec, write_media
from earmark.probes import get_probe, probe_names
from earmark.probes.visual import thumbnail_times

W, H, FPS = 96, 64, 10.0
MOTION_S = (3.0, 4.0)  # a white square crosses the picture
CUT_S = 6.0  # the scene changes for good


def _scene(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (H // 8, W // 8, 3), dtype=np.uint8)
    return np.kron(base, np.ones((8, 8, 1), np.uint8))  # blocky texture: survives compression


SCENE_A, SCENE_B = _scene(1), (_scene(2) // 2 + 120).astype(np.uint8)


def visual_frame(i: int, t: float) -> np.ndarray:
    img = (SCENE_A if t < CUT_S else SCENE_B).copy()
    if MOTION_S[0] <= t < MOTION_S[1]:
        x = int((t - MOTION_S[0]) / (MOTION_S[1] - MOTION_S[0]) * (W - 16))
        img[24:40, x:x + 16] = 255
    return img


@pytest.fixture(scope="session")
def visual_video(media_dir):
    """10 s, no audio: motion in [3, 4), a cut at 6 s."""
    path = media_dir / "visual.mp4"
    if not path.exists():
        write_media(path, 10.0, None, video=VideoSpec(width=W, height=H, fps=FPS, gop=10), frame_fn=visual_frame)
    return path


@pytest.fixture(scope="session")
def visual_noise_video(media_dir):
    """The same picture with steady noise for sound: audio present but saying nothing."""
    path = media_dir / "visual_noise.mp4"
    if not path.exists():
        audio = (0.05 * np.random.default_rng(3).standard_normal(10 * SR)).astype(np.float32)
        write_media(path, 10.0, audio, SR, video=VideoSpec(width=W, height=H, fps=FPS, gop=10),
                    frame_fn=visual_frame)
    return path


def run(capsys, *args) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def top(tl, k: int) -> list[int]:
    return sorted(int(i) for i in np.argsort(-tl.scores, kind="stable")[:k])


# ------------------------------------------------------------------------------------------- visual


def test_thumbnail_times_are_centred_and_inside():
    assert thumbnail_times(2.0, 2.0).tolist() == [0.25, 0.75, 1.25, 1.75]
    assert thumbnail_times(1.1, 1.0).tolist() == [0.5]
    with pytest.raises(ConfigError, match="fps must be > 0"):
        thumbnail_times(1.0, 0.0)


def test_motion_cut_and_novelty_find_what_each_is_for(visual_video):
    motion = earmark.index(visual_video, probe="motion")
    cut = earmark.index(visual_video, probe="cut")
    novelty = earmark.index(visual_video, probe="novelty")
    for tl in (motion, cut, novelty):
        assert len(tl) == 10 and tl.audio_stream is None and np.all(tl.coverage == 1.0)
    assert top(motion, 2) == [3, 6]  # the moving square, and the cut (everything changes)
    assert top(cut, 1) == [6]
    assert cut.scores[6] > 5 * max(abs(cut.scores[3]), 1.0)  # a small square barely moves the colours
    assert top(novelty, 1) == [6]
    assert motion.raw_unit == "mean |Δgrey|" and cut.probe == "cut"
    # Deterministic: the same file and settings give the same values.
    np.testing.assert_array_equal(earmark.index(visual_video, probe="cut").raw, cut.raw)


def test_visual_probe_settings_change_the_sampling(visual_video):
    tl = earmark.index(visual_video, probe="motion", fps=4.0, size=32)
    assert tl.probe_config["fps"] == 4.0 and tl.probe_config["size"] == 32
    assert top(tl, 2) == [3, 6]
    with pytest.raises(ConfigError, match="size must be between 8 and 1024, got 4"):
        earmark.index(visual_video, probe="motion", size=4)


def test_no_audio_falls_back_to_the_visual_probe_with_a_notice(visual_video):
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        tl = earmark.index(visual_video)  # energy by default
    assert tl.probe == "motion" and top(tl, 2) == [3, 6]
    assert any("no audio stream" in n and "motion" in n for n in tl.notes)
    assert any(issubclass(x.category, EarmarkWarning) and str(visual_video) in str(x.message) for x in w)
    with pytest.raises(NoAudioStreamError, match="--fallback motion"):
        earmark.index(visual_video, fallback=None)
    with pytest.raises(ConfigError, match="must be a visual probe"):
        earmark.index(visual_video, fallback="flux")


def test_cli_fallback_and_its_opt_out(capsys, visual_video, tmp_path):
    code, out, err = run(capsys, "index", visual_video, "--json")
    assert code == 0, err
    assert json.loads(out.strip().splitlines()[-1])["timeline"]["probe"] == "motion"
    code, out, err = run(capsys, "index", visual_video, "--fallback", "none", "--out", tmp_path / "x.json")
    assert code == 1 and err.startswith(f"earmark: error: {visual_video}: no audio stream") and "Traceback" not in err
    assert not (tmp_path / "x.json").exists()


def test_hybrid_trusts_informative_audio(events_mp4):
    tl = earmark.index(events_mp4, probe="hybrid")
    assert top(tl, 3) == EVENT_SECONDS
    assert tl.audio_stream is not None and tl.probe == "hybrid"


def test_hybrid_hands_over_to_the_picture_when_audio_says_nothing(visual_noise_video, visual_video):
    energy = earmark.index(visual_noise_video, probe="energy")
    assert energy.confidence.max() < 0.5  # steady noise: nothing stands out
    tl = earmark.index(visual_noise_video, probe="hybrid")
    assert top(tl, 2) == [3, 6]
    assert any("the picture leads" in n for n in tl.notes)
    silent = earmark.index(visual_video, probe="hybrid", visual="cut")
    assert top(silent, 1) == [6] and any("no audio stream" in n for n in silent.notes)
    with pytest.raises(ConfigError, match="needs an audio probe and a visual probe"):
        earmark.index(visual_noise_video, probe="hybrid", audio="motion")
    with pytest.raises(ConfigError, match="audio_weight must be between 0 and 1, got 2.0"):
        earmark.index(visual_noise_video, probe="hybrid", audio_weight=2.0)


# ------------------------------------------------------------------------------------------- vad


def fake_vad_onnx(path, threshold_db: float = -30.0, inputs=("input", "state", "sr")) -> str:
    """A tiny ONNX model with Silero VAD's signature: p = sigmoid(mean-square level above ``threshold_db``)."""
    import onnx
    from onnx import TensorProto, helper

    nodes = [
        helper.make_node("Mul", [inputs[0], inputs[0]], ["sq"]),
        helper.make_node("ReduceMean", ["sq"], ["ms"], keepdims=1, axes=[1]) if onnx.defs.onnx_opset_version() < 18
        else helper.make_node("ReduceMean", ["sq", "axes"], ["ms"], keepdims=1),
        helper.make_node("Add", ["ms", "eps"], ["ms_eps"]),
        helper.make_node("Log", ["ms_eps"], ["ln"]),
        helper.make_node("Sub", ["ln", "thr"], ["centred"]),
        helper.make_node("Sigmoid", ["centred"], ["output"]),
        helper.make_node("Identity", [inputs[1]], ["stateN"]) if len(inputs) > 1 else
        helper.make_node("Identity", ["thr"], ["stateN"]),
    ]
    inits = [helper.make_tensor("eps", TensorProto.FLOAT, [], [1e-10]),
             helper.make_tensor("thr", TensorProto.FLOAT, [], [threshold_db / 10 * np.log(10)]),
             helper.make_tensor("axes", TensorProto.INT64, [1], [1])]
    ins = [helper.make_tensor_value_info(inputs[0], TensorProto.FLOAT, ["b", "n"])]
    if len(inputs) > 1:
        ins += [helper.make_tensor_value_info(inputs[1], TensorProto.FLOAT, [2, "b", 128]),
                helper.make_tensor_value_info(inputs[2], TensorProto.INT64, [])]
    outs = [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["b", 1]),
            helper.make_tensor_value_info("stateN", TensorProto.FLOAT, None)]
    graph = helper.make_graph(nodes, "fake_vad", ins, outs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return str(path)


def test_shipped_silero_vad_hears_no_speech_in_tones_and_noise(events_mp4):
    tl = earmark.index(events_mp4, probe="vad")
    assert tl.raw_unit == "p(speech)" and len(tl) == 12
    assert np.all((tl.raw >= 0) & (tl.raw <= 1)) and tl.raw.max() < 0.5
    np.testing.assert_array_equal(earmark.index(events_mp4, probe="vad").raw, tl.raw)


def test_vad_probe_runs_the_onnx_model_it_is_given(events_mp4, tmp_path):
    weights = fake_vad_onnx(tmp_path / "vad.onnx")
    tl = earmark.index(events_mp4, probe="vad", weights=weights)
    assert sorted(np.flatnonzero(tl.raw > 0.5).tolist()) == EVENT_SECONDS  # "speech" = the loud seconds


def test_ignore_speech_removes_speech_windows(events_mp4, tmp_path):
    weights = fake_vad_onnx(tmp_path / "vad.onnx")
    plain = earmark.index(events_mp4, probe="energy")
    assert top(plain, 3) == EVENT_SECONDS
    tl = earmark.index(events_mp4, probe="energy", ignore_speech=weights)
    assert set(top(tl, 3)).isdisjoint(EVENT_SECONDS)
    assert np.all(tl.confidence[EVENT_SECONDS] == 0) and np.all(tl.scores[EVENT_SECONDS] == tl.scores.min())
    assert "3 of 12 windows with speech removed" in " ".join(tl.notes)
    np.testing.assert_array_equal(tl.raw, plain.raw)  # raw values are kept; only eventness changes
    hybrid = earmark.index(events_mp4, probe="hybrid", ignore_speech=weights)  # any probe, not only audio ones
    assert set(top(hybrid, 3)).isdisjoint(EVENT_SECONDS) and "windows with speech removed" in hybrid.notes[-1]


def test_speech_windows_count_a_speech_onset_late_in_a_window():
    from earmark.index import speech_windows
    from earmark.probes.base import WindowGrid

    grid = WindowGrid(8, 0.5, 1.0)  # windows [0, 1), [0.5, 1.5), ... [3.5, 4.5)
    p = np.zeros(460)
    p[266:] = 0.9  # the VAD says speech from 2.66 s (it reports ~0.05 s late: speech began ~2.6 s)
    # Window [2, 3) holds 0.4 s of speech: its mean probability (0.37) is under 0.5, but it is speech.
    assert speech_windows(p, grid, 160).tolist() == [False, False, False, False, True, True, True, True]
    p[:] = 0
    p[300:305] = 0.9  # a 50 ms blip (+0.1 s of VAD latency) covers less than SPEECH_MIN_S of any window
    assert not speech_windows(p, grid, 160).any()


def test_ignore_speech_removes_a_window_where_speech_starts_mid_window(media_dir, tmp_path):
    from conftest import SMALL, events_audio
    from earmark.synth import Event

    weights = fake_vad_onnx(tmp_path / "vad.onnx")  # "speech" = loud
    path = media_dir / "late_onset.mp4"
    write_media(path, 12.0, events_audio(events=(Event("noise", 6.6, 8.0),)), SR, video=SMALL)
    plain = earmark.index(path, probe="energy", hop_s=0.5, window_s=1.0)
    onset = 12  # window [6, 7): 0.4 s of the sound, loud enough to be among the top windows
    assert onset in top(plain, 4)
    tl = earmark.index(path, probe="energy", hop_s=0.5, window_s=1.0, ignore_speech=weights)
    removed = np.flatnonzero(tl.scores != plain.scores).tolist()
    assert removed[0] == onset and removed[-1] in (15, 16)  # [6, 7) ... [7.5, 8.5) at the latest
    assert onset not in top(tl, 4)


def test_vad_bad_weights_are_clear_errors(events_mp4, tmp_path):
    txt = tmp_path / "vad.onnx"
    txt.write_text("not a model")
    with pytest.raises(ConfigError, match=f"{txt}: not an ONNX model"):
        earmark.index(events_mp4, probe="vad", weights=str(txt))
    other = fake_vad_onnx(tmp_path / "other.onnx", inputs=("x",))
    with pytest.raises(ConfigError, match="expected a Silero VAD v5/v6 ONNX model .* takes x"):
        earmark.index(events_mp4, probe="vad", weights=other)
    with pytest.raises(ConfigError, match="does not exist"):
        earmark.index(events_mp4, probe="vad", weights=str(tmp_path / "missing.onnx"))


# ------------------------------------------------------------------------------------------- linear


@pytest.fixture(scope="module")
def synth_root(tmp_path_factory):
    from earmark.eval.synthave import SynthConfig, make_synthave

    root = tmp_path_factory.mktemp("synthave")
    make_synthave(root, SynthConfig(n=40, seed=3), workers=1)
    return root


@pytest.fixture(scope="module")
def trained_probe(synth_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("probe") / "probe.pt"
    code = main(["train-probe", "--root", str(synth_root), "--epochs", "30", "--out", str(out)])
    assert code == 0
    return out


def test_train_probe_learns_events_and_the_probe_finds_them(trained_probe, synth_root):
    import torch

    from earmark.eval.datasets import load_ave

    out = trained_probe
    ck = torch.load(out, weights_only=True)
    assert ck["format"] == "earmark.linear-probe" and ck["n_in"] == 64
    metrics = json.loads(ck["metrics"])
    assert metrics["test"]["auc"] > 0.9 and metrics["test"]["recall@2"] >= 0.9
    m = json.loads((synth_root / "synthave.json").read_text())
    ds = load_ave(synth_root, segments=m["segments"], classes=tuple(m["classes"]), name="synthave")
    clip = next(c for c in ds.available("test") if 0 < (c.labels != ds.background).sum() < 10)
    tl = earmark.index(clip.path, probe="linear", weights=str(out))
    assert tl.raw_unit == "logit" and len(tl) == 10
    events = set(np.flatnonzero(clip.labels != ds.background).tolist())
    assert int(np.argmax(tl.scores)) in events


def test_linear_probe_bad_weights(events_mp4, tmp_path):
    import torch

    with pytest.raises(ConfigError, match="needs weights"):
        earmark.index(events_mp4, probe="linear")
    with pytest.raises(ConfigError, match="does not exist"):
        get_probe("linear", weights=str(tmp_path / "nope.pt"))
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"\x00not a checkpoint")
    with pytest.raises(ConfigError, match=f"{junk}: not a torch checkpoint"):
        get_probe("linear", weights=str(junk))
    other = tmp_path / "other.pt"
    torch.save({"weight": torch.zeros(3)}, other)
    with pytest.raises(ConfigError, match="expected an earmark linear probe"):
        get_probe("linear", weights=str(other))
    wrong = tmp_path / "wrong.pt"
    torch.save({"format": "earmark.linear-probe", "n_in": 64, "hidden": 8, "n_mels": 32,
                "state_dict": {"weight": torch.zeros(1, 64)}, "mean": torch.zeros(64), "std": torch.ones(64)}, wrong)
    with pytest.raises(ConfigError, match="do not fit its architecture"):
        get_probe("linear", weights=str(wrong))


def test_train_probe_bad_input(capsys, tmp_path):
    code, _, err = run(capsys, "train-probe", "--root", tmp_path / "none", "--out", tmp_path / "p.pt")
    assert code == 1 and "dataset root does not exist" in err
    code, _, err = run(capsys, "train-probe", "--root", tmp_path, "--out", tmp_path / "p.pt")
    assert code == 1 and "no synthave.json" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "p.pt").exists()


# ------------------------------------------------------------------------------------------- listing


def test_probes_command_lists_every_probe_and_what_it_needs(capsys):
    code, out, _ = run(capsys, "probes", "--json")
    assert code == 0
    rows = {row["name"]: row for row in json.loads(out)}
    assert sorted(rows) == probe_names()
    assert {"energy", "flux", "onset", "motion", "cut", "novelty", "hybrid", "vad", "linear"} <= set(rows)
    assert rows["motion"]["kind"] == "visual" and rows["hybrid"]["kind"] == "hybrid"
    assert rows["vad"]["available"] is True and "silero" in rows["vad"]["needs"]
    assert rows["hybrid"]["settings"]["audio"] == "energy"
    code, text, _ = run(capsys, "probes")
    assert code == 0 and all(name in text for name in rows)


# ------------------------------------------------------------------------------------------- tagger


@pytest.fixture(scope="module")
def tiny_ast(tmp_path_factory) -> str:
    """A randomly initialised AST audio classifier and its feature extractor, saved like a real download."""
    import torch
    from transformers import ASTConfig, ASTFeatureExtractor, ASTForAudioClassification

    names = ["Silence", "Dog", "Speech", "Engine"]
    cfg = ASTConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64, max_length=100,
                    num_mel_bins=32, id2label=dict(enumerate(names)), label2id={n: i for i, n in enumerate(names)})
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("ast")
    ASTForAudioClassification(cfg).save_pretrained(folder)
    ASTFeatureExtractor(num_mel_bins=32, max_length=100).save_pretrained(folder)
    return str(folder)


def test_ast_tagger_scores_and_labels_every_window(capsys, events_mp4, tiny_ast):
    tl = earmark.index(events_mp4, probe="ast", weights=tiny_ast)
    assert len(tl) == 12 and tl.labels is not None and len(tl.labels) == 12
    assert all(len(row) == 3 and set(row) <= {"Silence", "Dog", "Speech", "Engine"} for row in tl.labels)
    assert np.all((tl.raw > 0) & (tl.raw < 1))
    margin = earmark.index(events_mp4, probe="ast", weights=tiny_ast, score="margin")
    np.testing.assert_allclose(tl.confidence, np.float32(margin.raw) * tl.coverage, atol=1e-6)  # own calibration
    np.testing.assert_array_equal(earmark.index(events_mp4, probe="ast", weights=tiny_ast).raw, tl.raw)
    for score in ("entropy", "margin"):
        other = earmark.index(events_mp4, probe="ast", weights=tiny_ast, score=score)
        assert np.all((other.raw >= 0) & (other.raw <= 1)) and not np.array_equal(other.raw, tl.raw)
    # Through the CLI: the labels travel in the index JSON.
    code, out, err = run(capsys, "index", events_mp4, "--probe", "ast", "--probe-weights", tiny_ast,
                         "--probe-option", "score=margin", "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["timeline"]["probe"] == "ast" and len(doc["timeline"]["labels"]) == 12
    assert doc["timeline"]["probe_config"]["score"] == "margin"


def test_ast_bad_weights_are_clear_errors(events_mp4, tmp_path, tiny_ast):
    from transformers import ViTConfig, ViTModel

    with pytest.raises(ConfigError, match="needs weights"):
        earmark.index(events_mp4, probe="ast")
    with pytest.raises(ConfigError, match="none: not found .give the local folder of an AST audio-classif"):
        earmark.index(events_mp4, probe="ast", weights=str(tmp_path / "none"))
    vit = tmp_path / "vit"
    ViTModel(ViTConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
                       image_size=32, patch_size=16)).save_pretrained(vit)
    with pytest.raises(ConfigError, match="a .vit. checkpoint; an AST audio-classification model is one of audio-spec"):
        earmark.index(events_mp4, probe="ast", weights=str(vit))
    (tmp_path / "file.bin").write_bytes(b"x")
    with pytest.raises(ConfigError, match=r"file.bin: not a model folder \(no config.json\)"):
        earmark.index(events_mp4, probe="ast", weights=str(tmp_path / "file.bin"))
    with pytest.raises(ConfigError, match="score must be one of max, entropy, margin"):
        earmark.index(events_mp4, probe="ast", weights=tiny_ast, score="loudest")


# ------------------------------------------------------------------------------------------- transfer


def _av_clip(path, event_s: int, with_audio: bool, seed: int):
    """6 s: a noise burst (if audio) and a white square crossing the picture in second ``event_s``."""
    rng = np.random.default_rng(seed)
    scene = _scene(seed + 10)

    def frame(i: int, t: float) -> np.ndarray:
        img = scene.copy()
        if event_s <= t < event_s + 1:
            x = int((t - event_s) * (W - 16))
            img[24:40, x:x + 16] = 255
        return img

    audio = None
    if with_audio:
        audio = (0.003 * rng.standard_normal(6 * SR)).astype(np.float32)
        audio[event_s * SR:(event_s + 1) * SR] += (0.3 * rng.standard_normal(SR)).astype(np.float32)
    write_media(path, 6.0, audio, SR, video=VideoSpec(width=W, height=H, fps=FPS, gop=10), frame_fn=frame)
    return path


def test_train_transfer_teaches_a_visual_scorer_that_needs_no_audio(capsys, tmp_path):
    import torch

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for i in range(8):
        _av_clip(corpus / f"c{i}.mp4", 1 + i % 4, True, i)
    _av_clip(corpus / "mute.mp4", 2, False, 99)  # no sound: skipped, said so
    out = tmp_path / "scorer.pt"
    code, text, err = run(capsys, "train-transfer", corpus, "--epochs", "80", "--out", out)
    assert code == 0, err
    assert "of 8 videos (1 skipped)" in text and "mute.mp4: needs both audio and picture" in text
    ck = torch.load(out, weights_only=True)
    assert ck["format"] == "earmark.transfer-probe" and json.loads(ck["summary"])["train_corr"] > 0.5
    held_out = _av_clip(tmp_path / "silent.mp4", 4, False, 123)
    tl = earmark.index(held_out, probe="transfer", weights=str(out))
    assert tl.audio_stream is None and int(np.argmax(tl.scores)) == 4
    code, _, err = run(capsys, "train-transfer", tmp_path / "nowhere", "--out", tmp_path / "x.pt")
    assert code == 1 and "corpus does not exist" in err and not (tmp_path / "x.pt").exists()
    other = tmp_path / "other.pt"
    torch.save({"format": "earmark.linear-probe"}, other)
    with pytest.raises(ConfigError, match="holds 'earmark.linear-probe', expected an earmark transfer probe"):
        earmark.index(held_out, probe="transfer", weights=str(other))
    with pytest.raises(ConfigError, match="needs weights"):
        earmark.index(held_out, probe="transfer")


def test_more_bad_input_is_one_clear_line(capsys, tmp_path, visual_video, events_mp4):
    empty = tmp_path / "empty"
    empty.mkdir()
    code, _, err = run(capsys, "train-transfer", empty, "--out", tmp_path / "s.pt")
    assert code == 1 and f"{empty}: no videos" in err
    mute = tmp_path / "mute"
    mute.mkdir()
    (mute / "v.mp4").symlink_to(visual_video)
    code, _, err = run(capsys, "train-transfer", mute, "--out", tmp_path / "s.pt")
    assert code == 1 and "no usable video in the corpus" in err and "needs both audio and picture" in err
    assert not (tmp_path / "s.pt").exists() and len(err.strip().splitlines()) == 1
    code, _, err = run(capsys, "index", events_mp4, "--probe-option", "no-equals-sign")
    assert code == 1 and "--probe-option 'no-equals-sign': expected KEY=VALUE" in err
    code, _, err = run(capsys, "index", events_mp4, "--probe", "hybrid", "--probe-option", "colour=1")
    assert code == 1 and "probe 'hybrid'" in err and "its settings are" in err
