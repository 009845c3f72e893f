"""Semantic probes clap / panns / yamnet and tagger embeddings for train-probe: tiny random models saved to temp
dirs in each family's real format, loaded by the real loading code (transformers from_pretrained, torch.load with
weights_only=True, onnxruntime)."""

from __future__ import annotations

import json

import numpy as np
import pytest

import earmark
from earmark.cli import main
from earmark.errors import ConfigError

torch = pytest.importorskip("torch")

NAMES = ["Silence", "Dog", "Speech", "Engine", "Bell"]


def run(capsys, *args) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def _class_map(path, names=NAMES) -> None:
    path.write_text("index,mid,display_name\n" + "".join(f'{i},/m/{i:04d},"{n}"\n' for i, n in enumerate(names)))


# ------------------------------------------------------------------------------------------- clap


@pytest.fixture(scope="module")
def tiny_clap(tmp_path_factory) -> str:
    """A random CLAP (HTSAT audio tower + RoBERTa text tower) with its processor, saved like a download."""
    from transformers import ClapConfig, ClapFeatureExtractor, ClapModel, ClapProcessor, RobertaTokenizerFast

    folder = tmp_path_factory.mktemp("clap")
    vocab = {t: i for i, t in enumerate(["<s>", "<pad>", "</s>", "<unk>", "<mask>", *"abcdefghijklmnopqrstuvwxyz.Ġ"])}
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    tok = RobertaTokenizerFast(vocab_file=str(folder / "vocab.json"), merges_file=str(folder / "merges.txt"))
    cfg = ClapConfig(text_config=dict(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                                      intermediate_size=37, max_position_embeddings=96, projection_dim=16),
                     audio_config=dict(spec_size=32, window_size=4, num_mel_bins=8, patch_size=4, patch_stride=[4, 4],
                                       depths=[1, 1], num_attention_heads=[2, 2], hidden_size=32,
                                       patch_embeds_hidden_size=16, enable_fusion=False, projection_dim=16),
                     projection_dim=16)
    torch.manual_seed(0)
    ClapModel(cfg).save_pretrained(folder)
    ClapProcessor(feature_extractor=ClapFeatureExtractor(feature_size=8, max_length_s=1, sampling_rate=48_000,
                                                                       truncation="rand_trunc"),
                  tokenizer=tok).save_pretrained(folder)
    return str(folder)


def test_clap_zero_shot_labels_every_window_and_matches_the_models_own_logits(events_mp4, tiny_clap):
    tl = earmark.index(events_mp4, probe="clap", weights=tiny_clap, labels="Dog,Engine,Bell,Silence")
    assert len(tl) == 12 and tl.labels is not None and len(tl.labels) == 12
    assert all(len(row) == 3 and set(row) <= {"Dog", "Engine", "Bell", "Silence"} for row in tl.labels)
    assert np.all((tl.raw > 0) & (tl.raw < 1))
    again = earmark.index(events_mp4, probe="clap", weights=tiny_clap, labels="Dog,Engine,Bell,Silence")
    np.testing.assert_array_equal(again.raw, tl.raw)
    # The probe's logits for a window equal CLAP's own forward pass (audio vs the same prompts).
    from transformers import ClapModel, ClapProcessor

    from earmark.probes import get_probe
    from earmark.probes.taggers import resample

    prb = get_probe("clap", weights=tiny_clap, labels=("Dog", "Engine"))
    rng = np.random.default_rng(0)
    wave = (0.1 * rng.normal(size=16_000)).astype(np.float32)
    logits, emb = prb.infer([wave])
    model, proc = ClapModel.from_pretrained(tiny_clap), ClapProcessor.from_pretrained(tiny_clap)
    inp = proc(text=["This is a sound of Dog.", "This is a sound of Engine."], audio=[resample(wave, 48_000)],
               sampling_rate=48_000, return_tensors="pt", padding=True)
    with torch.no_grad():
        ref = model(**inp)
    np.testing.assert_allclose(logits, ref.logits_per_audio.double().numpy(), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(emb, ref.audio_embeds.numpy(), atol=1e-5)
    # softmax over the vocabulary: the default score reads probabilities that sum to one per window
    assert prb.probabilities(logits).sum() == pytest.approx(1.0)


def test_clap_bad_folder_is_a_clear_error(events_mp4, tmp_path, tiny_clap):
    with pytest.raises(ConfigError, match="needs weights"):
        earmark.index(events_mp4, probe="clap")
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "whisper"}))
    with pytest.raises(ConfigError, match="a 'whisper' checkpoint; a CLAP model is one of clap"):
        earmark.index(events_mp4, probe="clap", weights=str(tmp_path))


def test_tagger_families_register_under_their_names_and_bad_settings_list_the_valid_ones(tmp_path, tiny_clap):
    from typing import get_args

    from earmark.probes import probe_classes
    from earmark.probes.taggers import ACTIVATIONS, SCORES, Activation, Score, TaggerProbe

    families = {n: c for n, c in probe_classes().items() if issubclass(c, TaggerProbe)}
    assert sorted(families) == ["ast", "clap", "panns", "yamnet"]
    assert all(c.__module__ == f"earmark.probes.taggers.{n}" for n, c in families.items())
    assert (get_args(Score), get_args(Activation)) == (SCORES, ACTIVATIONS)
    with pytest.raises(ConfigError) as e:
        earmark.get_probe("clap", weights=tiny_clap, score="loudest")
    assert str(e.value) == "tagger score must be one of max, entropy, margin, got 'loudest'"
    with pytest.raises(ConfigError, match="^tagger activation must be sigmoid or softmax, got 'relu'$"):
        earmark.get_probe("clap", weights=tiny_clap, activation="relu")


# ------------------------------------------------------------------------------------------- panns


def _tiny_cnn14(path, n_fft: int = 512, classes: int = 5, seed: int = 0) -> None:
    from earmark.probes.panns import Cnn14

    torch.manual_seed(seed)
    model = Cnn14(classes=classes, n_mels=32, n_fft=n_fft, widths=(4, 4, 8, 8, 16, 16), embed=12)
    for m in model.modules():  # non-trivial running statistics, as a trained checkpoint has
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.normal_(0, 0.1)
            m.running_var.uniform_(0.5, 2.0)
    torch.save({"model": model.state_dict(), "iteration": 1000}, path)


@pytest.fixture(scope="module")
def tiny_panns(tmp_path_factory) -> str:
    folder = tmp_path_factory.mktemp("panns")
    _tiny_cnn14(folder / "Cnn14_16k_tiny.pth")
    _class_map(folder / "class_labels_indices.csv")
    return str(folder / "Cnn14_16k_tiny.pth")


def test_panns_front_end_is_the_published_log_mel(tiny_panns):
    """The STFT-as-convolution front end equals a plain numpy STFT (periodic Hann, centred, reflect padding)."""
    from earmark.probes.panns import load_cnn14

    model = load_cnn14(tiny_panns)
    assert (model.sample_rate, model.hop, model.classes) == (16_000, 160, 5)
    rng = np.random.default_rng(1)
    wave = rng.normal(size=8_000).astype(np.float32)
    with torch.no_grad():
        ours = model.logmel(torch.from_numpy(wave[None]))[0, 0].numpy()
    n = 512
    x = np.pad(wave.astype(np.float64), n // 2, mode="reflect")
    frames = np.lib.stride_tricks.sliding_window_view(x, n)[::160]
    win = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / n)
    power = np.abs(np.fft.rfft(frames * win, axis=1)) ** 2
    ref = 10 * np.log10(np.maximum(power @ model.logmel_extractor.melW.double().numpy(), 1e-10))
    assert ours.shape == ref.shape == (8_000 // 160 + 1, 32)
    np.testing.assert_allclose(ours, ref, atol=2e-3)


def test_panns_tags_windows_with_the_class_map_beside_the_checkpoint(events_mp4, tiny_panns):
    tl = earmark.index(events_mp4, probe="panns", weights=tiny_panns)
    assert len(tl) == 12 and tl.labels is not None
    assert all(len(row) == 3 and set(row) <= set(NAMES) for row in tl.labels)
    assert np.all((tl.raw > 0) & (tl.raw < 1)) and tl.raw.std() > 0
    ent = earmark.index(events_mp4, probe="panns", weights=tiny_panns, score="entropy")
    assert np.all((ent.raw >= 0) & (ent.raw <= 1))
    np.testing.assert_array_equal(earmark.index(events_mp4, probe="panns", weights=tiny_panns).raw, tl.raw)


def test_panns_bad_checkpoints_name_the_file_and_what_was_expected(events_mp4, tmp_path, tiny_panns):
    with pytest.raises(ConfigError, match="weights file for probe 'panns' does not exist"):
        earmark.index(events_mp4, probe="panns", weights=str(tmp_path / "none.pth"))
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(ConfigError, match="junk.pth: not a torch checkpoint"):
        earmark.index(events_mp4, probe="panns", weights=str(tmp_path / "junk.pth"))
    torch.save({"model": {"encoder.weight": torch.zeros(2, 2)}}, tmp_path / "other.pth")
    with pytest.raises(ConfigError, match="other.pth: not a PANNs CNN14 checkpoint .*found encoder.weight"):
        earmark.index(events_mp4, probe="panns", weights=str(tmp_path / "other.pth"))
    sd = torch.load(tiny_panns, weights_only=True)["model"]
    sd["fc1.weight"] = torch.zeros(12, 99)  # fc1 does not fit the last conv block's width
    torch.save({"model": sd}, tmp_path / "broken.pth")
    with pytest.raises(ConfigError, match="broken.pth: the weights do not fit CNN14"):
        earmark.index(events_mp4, probe="panns", weights=str(tmp_path / "broken.pth"))
    _class_map(tmp_path / "three.csv", NAMES[:3])
    with pytest.raises(ConfigError, match="three.csv: lists 3 classes, the model .* has 5"):
        earmark.index(events_mp4, probe="panns", weights=tiny_panns, class_map=str(tmp_path / "three.csv"))


# ------------------------------------------------------------------------------------------- yamnet


def _tiny_yamnet(path, classes: int = 5, embed: int = 6) -> None:
    """YAMNet's TF-Hub signature in ONNX: waveform (n,) -> scores (frames, classes), embeddings (frames, E)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    w = numpy_helper.from_array((rng.normal(size=(15_360, classes)) * 0.02).astype(np.float32), "w")
    e = numpy_helper.from_array((rng.normal(size=(15_360, embed)) * 0.02).astype(np.float32), "e")
    consts = [numpy_helper.from_array(np.array(v, np.int64), n) for n, v in
              (("starts", [0]), ("ends", [15_360]), ("shape", [1, 15_360]))]
    nodes = [helper.make_node("Slice", ["waveform", "starts", "ends"], ["frame"]),
             helper.make_node("Reshape", ["frame", "shape"], ["frames"]),
             helper.make_node("MatMul", ["frames", "w"], ["logits"]),
             helper.make_node("Sigmoid", ["logits"], ["scores"]),
             helper.make_node("MatMul", ["frames", "e"], ["embeddings"])]
    graph = helper.make_graph(nodes, "yamnet-tiny",
                              [helper.make_tensor_value_info("waveform", TensorProto.FLOAT, ["n"])],
                              [helper.make_tensor_value_info("scores", TensorProto.FLOAT, [1, classes]),
                               helper.make_tensor_value_info("embeddings", TensorProto.FLOAT, [1, embed])],
                              [w, e, *consts])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8), str(path))


@pytest.fixture(scope="module")
def tiny_yamnet(tmp_path_factory) -> str:
    pytest.importorskip("onnxruntime")
    folder = tmp_path_factory.mktemp("yamnet")
    _tiny_yamnet(folder / "yamnet.onnx")
    _class_map(folder / "yamnet_class_map.csv")
    return str(folder / "yamnet.onnx")


def test_yamnet_onnx_scores_are_its_sigmoid_outputs(events_mp4, tiny_yamnet):
    tl = earmark.index(events_mp4, probe="yamnet", weights=tiny_yamnet, ignore_labels="")
    assert len(tl) == 12 and tl.labels is not None and set(tl.labels[0]) <= set(NAMES)
    # raw = the window's largest class probability = the ONNX model's own output for the (padded) window
    import onnxruntime as ort

    from earmark.index import frame_values
    from earmark.media.audio import select_audio_stream
    from earmark.media.container import info
    from earmark.probes import get_probe, window_grid

    vi = info(events_mp4)
    prb = get_probe("yamnet", weights=tiny_yamnet)
    grid = window_grid(vi.duration_s, 1.0, 1.0)
    values, _, _ = frame_values(vi, select_audio_stream(vi, None), prb, grid, jobs=1)
    wave = next(iter(prb.windows(values, grid)))[3]
    sess = ort.InferenceSession(tiny_yamnet, providers=["CPUExecutionProvider"])
    ref = sess.run(["scores"], {"waveform": np.pad(wave, (0, 15_360 - len(wave)) if len(wave) < 15_360 else (0, 0))})
    assert tl.raw[3] == pytest.approx(float(ref[0].max()), rel=1e-5)
    assert prb.embeddings(values, grid).shape == (12, 6)


def test_yamnet_wrong_models_are_clear_errors(events_mp4, tmp_path, tiny_yamnet):
    from earmark.probes.weights import silero_weights

    vad = silero_weights()
    if vad:
        with pytest.raises(ConfigError, match="expected a YAMNet-like model .*takes input"):
            earmark.index(events_mp4, probe="yamnet", weights=vad)
    (tmp_path / "bad.onnx").write_bytes(b"\x00garbage")
    with pytest.raises(ConfigError, match="bad.onnx: not an ONNX model"):
        earmark.index(events_mp4, probe="yamnet", weights=str(tmp_path / "bad.onnx"))


# ------------------------------------------------------------------------------------------- embeddings


def test_train_probe_on_a_taggers_embedding(capsys, tmp_path, tiny_panns):
    """`train-probe --embed panns:FILE` trains on CNN14 embeddings; the linear probe then reads them itself."""
    from earmark.eval.synthave import SynthConfig, make_synthave

    root = tmp_path / "synth"
    make_synthave(root, SynthConfig(n=12, seed=3), workers=1)
    out = tmp_path / "probe.pt"
    code, text, err = run(capsys, "train-probe", "--root", str(root), "--embed", f"panns:{tiny_panns}",
                          "--epochs", "3", "--out", str(out))
    assert code == 0, err
    assert "AUC" in text and out.exists()
    ck = torch.load(out, weights_only=True)
    assert ck["embed"].startswith("panns:/") and ck["n_in"] == 12  # the tiny CNN14's fc1 width
    clip = sorted((root / "AVE").glob("*.mp4"))[0]
    tl = earmark.index(clip, probe="linear", weights=str(out))
    assert len(tl) == 10 and np.isfinite(tl.raw).all() and tl.probe_config["embed"] == ck["embed"]
    code, _, err = run(capsys, "train-probe", "--root", str(root), "--embed", "vggish:/x", "--out", str(out))
    assert code != 0 and "unknown embedding 'vggish:/x'" in err


def test_eval_anchors_with_a_model_probe(capsys, tmp_path, tiny_panns):
    """`earmark eval synth --probes energy,panns --probe-weights panns=FILE` trains Anchored(panns) beside energy."""
    out = tmp_path / "res"
    code, _, err = run(capsys, "eval", "synth", "--quick", "--n", "30", "--probes", "energy,panns",
                       "--probe-weights", f"panns={tiny_panns}", "--strategies", "uniform,anchored",
                       "--curve-budgets", "1960", "--out", out, "-q")
    assert code == 0, err
    doc = json.loads((out / "results.json").read_text())
    assert {"anchored-energy", "anchored-panns"} <= set(doc["strategies"])
    assert doc["config"]["probe_weights"]["panns"].endswith("Cnn14_16k_tiny.pth")
    assert "anchored-panns" in doc["recall"]["all"] and "anchored-energy" in doc["recall"]["all"]
    code, _, err = run(capsys, "eval", "synth", "--quick", "--probes", "energy,panns", "--out", tmp_path / "r2")
    assert code != 0 and "probe 'panns' needs weights" in err and not (tmp_path / "r2" / "results.json").exists()
    code, _, err = run(capsys, "eval", "synth", "--quick", "--probe-weights", f"ast={tiny_panns}",
                       "--out", tmp_path / "r3")
    assert code != 0 and "--probe-weights names 'ast', which is not among the probes" in err
