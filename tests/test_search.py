"""Moment search: generated videos where the queried thing is heard and seen, seen only or heard only at known
seconds; a tiny ONNX tagger whose 'Dog' class hears a 1 kHz tone and a tiny CLIP whose text tower is set so that
'dog' and 'red' point at the red picture (both random otherwise, saved to temp dirs and loaded by the real
loaders); motion, plans of the hits, corpus search and highlights through DuckDB; no match said; bad input one
line naming the file, exit 1, nothing written."""

from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from conftest import SR
from earmark.cli import main
from earmark.media.write import VideoSpec, write_media
from tiny_models import text_image_model

DURATION_S = 30.0
SEEN_AND_HEARD = (5.0, 7.0)
SEEN_ONLY = (15.0, 17.0)
HEARD_ONLY = (24.0, 26.0)
TONE_HZ = 1000.0
CLASSES = ["Silence", "Speech", "Engine", "Dog", "Bell"]


def run(capsys, *args) -> tuple[int, str, str]:
    capsys.readouterr()  # what fixtures printed (transformers' bars while they build models) is not the command's
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def _inside(t: float, spans) -> bool:
    return any(a <= t < b for a, b in spans)


def picture(i: int, t: float) -> np.ndarray:
    """Grey with a soft gradient; a red block fills the middle while the dog is on screen."""
    img = np.empty((48, 64, 3), np.uint8)
    img[...] = (100 + np.arange(64) // 4)[None, :, None]
    if _inside(t, (SEEN_AND_HEARD, SEEN_ONLY)):
        img[8:40, 12:52] = (220, 30, 30)
    return img


def sound() -> np.ndarray:
    rng = np.random.default_rng(7)
    t = np.arange(int(DURATION_S * SR)) / SR
    x = 0.005 * rng.standard_normal(len(t))
    for a, b in (SEEN_AND_HEARD, HEARD_ONLY):
        on = (t >= a) & (t < b)
        x[on] += 0.3 * np.sin(2 * np.pi * TONE_HZ * t[on])
    return x.astype(np.float32)


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("search-media")
    return {"dog": write_media(d / "dog.mp4", DURATION_S, sound(), SR, video=VideoSpec(64, 48, 10.0, gop=10),
                               frame_fn=picture)}


def _tiny_tone_tagger(path: Path) -> None:
    """A YAMNet-shaped ONNX model whose 'Dog' class is the power of the waveform at 1 kHz (a quadrature pair of
    projections, squared and summed); the other classes are constants (Silence > Speech > Engine > Bell)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    n = 15_360
    t = np.arange(n) / 16_000
    basis = np.stack([np.cos(2 * np.pi * TONE_HZ * t), np.sin(2 * np.pi * TONE_HZ * t)], 1) * (2 / n)
    weights = np.zeros((1, len(CLASSES)), np.float32)
    weights[0, CLASSES.index("Dog")] = 400.0
    bias = np.array([2.0, 1.0, 0.0, -6.0, -4.0], np.float32)
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(basis.astype(np.float32), "basis"),
             numpy_helper.from_array(np.ones((2, 1), np.float32), "sum"),
             numpy_helper.from_array(weights, "w"), numpy_helper.from_array(bias, "b"),
             numpy_helper.from_array((rng.normal(size=(n, 6)) * 0.02).astype(np.float32), "e"),
             *[numpy_helper.from_array(np.array(v, np.int64), k) for k, v in
               (("starts", [0]), ("ends", [n]), ("shape", [1, n]))]]
    nodes = [helper.make_node("Slice", ["waveform", "starts", "ends"], ["frame"]),
             helper.make_node("Reshape", ["frame", "shape"], ["frames"]),
             helper.make_node("MatMul", ["frames", "basis"], ["proj"]),
             helper.make_node("Mul", ["proj", "proj"], ["sq"]),
             helper.make_node("MatMul", ["sq", "sum"], ["power"]),
             helper.make_node("MatMul", ["power", "w"], ["lin"]),
             helper.make_node("Add", ["lin", "b"], ["logits"]),
             helper.make_node("Sigmoid", ["logits"], ["scores"]),
             helper.make_node("MatMul", ["frames", "e"], ["embeddings"])]
    graph = helper.make_graph(nodes, "tone-tagger", [helper.make_tensor_value_info("waveform", TensorProto.FLOAT,
                                                                                     ["n"])],
                              [helper.make_tensor_value_info("scores", TensorProto.FLOAT, [1, len(CLASSES)]),
                               helper.make_tensor_value_info("embeddings", TensorProto.FLOAT, [1, 6])], inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8), str(path))
    path.with_name("yamnet_class_map.csv").write_text(
        "index,mid,display_name\n" + "".join(f'{i},/m/{i:04d},"{c}"\n' for i, c in enumerate(CLASSES)))


@pytest.fixture(scope="module")
def tagger(tmp_path_factory) -> str:
    pytest.importorskip("onnxruntime")
    path = tmp_path_factory.mktemp("tone-tagger") / "yamnet.onnx"
    _tiny_tone_tagger(path)
    return str(path)


WORDS = ["[PAD]", "[BOS]", "[EOS]", "[UNK]", "a", "the", "dog", "red", "horse", "barking", "?"]
TARGETS = ("dog", "red", "horse")
"""Texts whose embeddings the tiny CLIP's text projection is solved for: 'dog' and 'red' point at the red picture
(its thumbnail embedding, minus its part along the grey picture's), 'horse' away from both."""


def _random_text_image(d: Path, kind: str) -> None:
    """A one-layer CLIP or SigLIP with random weights (32-d, so CLIP's text projection can be square), its PIL image
    processor and a word-level tokenizer, saved like a download."""
    text_image_model(d, kind, WORDS, projection_dim=32)


def _point_texts_at(d: Path, targets: dict[str, np.ndarray]) -> None:
    """Set CLIP's (square) text projection W so that each text's embedding is its target direction: with the
    projection at identity the embeddings are the pooled text features u; W = T (UᵀU)⁻¹ Uᵀ maps each u to t."""
    import torch
    from transformers import CLIPModel

    from earmark.probes.question import TextImageModel

    model = CLIPModel.from_pretrained(d)
    with torch.no_grad():
        model.text_projection.weight.copy_(torch.eye(32))
    model.save_pretrained(d)
    tim = TextImageModel.from_pretrained(d)
    u = np.stack([tim.embed_text(t) for t in targets]).T.astype(np.float64)
    t = np.stack(list(targets.values())).T.astype(np.float64)
    w = t @ np.linalg.solve(u.T @ u, u.T)
    with torch.no_grad():
        model.text_projection.weight.copy_(torch.from_numpy(w.astype(np.float32)))
    model.save_pretrained(d)


@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory, media) -> Path:
    """The tiny CLIP with 'dog' and 'red' pointing at the red picture of the test video, as earmark decodes it."""
    pytest.importorskip("torch", reason="text-image models need the [vlm] extra")
    pytest.importorskip("transformers", reason="text-image models need the [vlm] extra")
    import earmark
    from earmark.probes.question import TextImageModel
    from earmark.search import picture_embeddings

    d = tmp_path_factory.mktemp("tiny-clip")
    _random_text_image(d, "clip")
    vi = earmark.info(media["dog"])
    tl = earmark.index(media["dog"])
    emb = picture_embeddings(earmark.IndexResult(vi, tl, (), {}), TextImageModel.from_pretrained(d))
    emb = emb.astype(np.float64)
    red = np.array([_inside(s + 0.5, (SEEN_AND_HEARD, SEEN_ONLY)) for s in tl.starts])
    grey = emb[~red].mean(0) / np.linalg.norm(emb[~red].mean(0))
    toward = emb[red].mean(0) - (emb[red].mean(0) @ grey) * grey
    toward /= np.linalg.norm(toward)
    away = np.random.default_rng(1).normal(size=32)
    for v in (grey, toward):
        away -= (away @ v) * v
    _point_texts_at(d, {"dog": toward, "red": toward, "horse": away / np.linalg.norm(away)})
    return d


@pytest.fixture(scope="module")
def saved(tmp_path_factory, media, tagger, clip_dir) -> Path:
    """The test video's moments document: yamnet labels, motion, appearance change and CLIP embeddings."""
    out = tmp_path_factory.mktemp("saved") / "dog.moments.json"
    code = main(["search", str(media["dog"]), "--save", str(out), "--probe", "yamnet", "--probe-weights", tagger,
                 "--text-image-model", str(clip_dir), "-q"])
    assert code == 0
    return out


def spans(doc) -> list[tuple[float, float, tuple[str, ...]]]:
    return [(h["start_s"], h["end_s"], tuple(r["feature"] for r in h["reasons"])) for h in doc["hits"]]


# ------------------------------------------------------------------------------------------- pure parts


def test_query_words_labels_and_hits_in_numbers():
    from earmark.search import SearchConfig, label_evidence, query_terms, rank_hits, window_hits

    assert query_terms("Is the dog MOVING, or a loud bang?") == (
        frozenset({"dog", "moving", "loud", "bang"}), ("motion", "eventness"))
    values, which = label_evidence(frozenset({"dog", "car"}), [("Dog",), ("Speech", "Car horn"), ("Speech",),
                                                                ("Engine", "Bell", "Hot_dog")])
    assert values.tolist() == [4.0, 2.0, 0.0, 4.0 / 3]
    assert which == [("Dog", 1), ("Car horn", 2), None, ("Hot_dog", 3)]
    # Evidence adds up; windows reaching the level match; matches <= merge gap apart are one hit scored by its best.
    ev = {"label": np.array([0, 4, 0, 0, 4, 0, 0, 0, 2, 0.0]), "picture": np.array([0, 2, 5, 0, 0, 0, -9, 0, 0.5, 0])}
    t = np.arange(10.0)
    hits = window_hits("v.mp4", np.arange(10), t, t + 1, 9.5, ev, lambda f, i: f"{f}@{i}", np.zeros(10),
                       SearchConfig(merge_gap_s=1.0))
    assert [(h.start_s, h.end_s, h.score, h.peak_s, h.window) for h in hits] == [(1.0, 5.0, 6.0, 1.5, 1)]
    assert [(r.feature, r.value, r.detail) for r in hits[0].reasons] == [("label", 4.0, "label@1"),
                                                                        ("picture", 2.0, "picture@1")]
    hits = window_hits("v.mp4", np.arange(10), t, t + 1, 9.5, ev, lambda f, i: "", np.zeros(10),
                       SearchConfig(merge_gap_s=0.5))
    assert [(h.start_s, h.end_s, h.score) for h in hits] == [(1.0, 3.0, 6.0), (4.0, 5.0, 4.0)]
    assert window_hits("v.mp4", np.arange(10), t, t + 1, 9.5, ev, lambda f, i: "", np.zeros(10),
                       SearchConfig(level=7)) == []
    # The last window is cut at the duration; equal scores rank the louder first, then the earlier.
    loud = np.array([0, 1, 0, 0, 9, 0, 0, 0, 0, 0.0])
    hits = window_hits("v.mp4", np.arange(10), t, t + 1, 9.5, {"label": np.array([4.0] * 2 + [0] * 2 + [4] + [0] * 4
                                                                                 + [4])},
                       lambda f, i: "", loud, SearchConfig(merge_gap_s=0))
    assert [(h.start_s, h.end_s) for h in hits] == [(0.0, 2.0), (4.0, 5.0), (9.0, 9.5)]
    assert [(h.rank, h.start_s) for h in rank_hits(hits, 2)] == [(1, 4.0), (2, 0.0)]


# ------------------------------------------------------------------------------------------- one video


def test_heard_and_seen_seen_only_heard_only(capsys, media, tagger, clip_dir):
    code, out, err = run(capsys, "search", media["dog"], "--query", "dog", "--probe", "yamnet", "--probe-weights",
                         tagger, "--text-image-model", clip_dir, "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["kind"] == "earmark.search" and doc["matched"] and doc["features"] == ["label", "picture"]
    # Heard and seen first (both kinds of evidence), then seen only (a strong picture match), then heard only.
    assert spans(doc) == [(5.0, 7.0, ("picture", "label")), (15.0, 17.0, ("picture",)), (24.0, 26.0, ("label",))]
    first = doc["hits"][0]
    label = next(r for r in first["reasons"] if r["feature"] == "label")
    picture = next(r for r in first["reasons"] if r["feature"] == "picture")
    assert (label["value"], label["detail"]) == (4.0, "Dog (top 1)")
    assert first["score"] == pytest.approx(label["value"] + picture["value"], abs=1e-5)
    # the picture evidence is the cosine's robust z over the video: grey windows sit at cosine 0, spread floored
    cosine = float(picture["detail"].removeprefix("cosine "))
    assert cosine > 0.1 and picture["value"] == pytest.approx(cosine / 0.02, rel=2e-3)
    assert doc["hits"][1]["score"] == pytest.approx(picture["value"], rel=1e-3)
    assert doc["hits"][2]["score"] == 4.0


def test_sound_alone_finds_what_is_heard_and_says_what_it_cannot_read(capsys, media, tagger):
    code, out, err = run(capsys, "search", media["dog"], "--query", "a dog barking?", "--probe", "yamnet",
                         "--probe-weights", tagger)
    assert code == 0, err
    assert "2 hits for \"a dog barking?\" (evidence read: label)" in out
    assert "#1  [0:05.0, 0:07.0)  score  4.00  label Dog (top 1) (+4.00)" in out
    assert "#2  [0:24.0, 0:26.0)  score  4.00  label Dog (top 1) (+4.00)" in out
    assert "note: no text-image model: give --text-image-model DIR" in out


def test_motion_is_found_where_the_picture_changes(capsys, media):
    code, out, err = run(capsys, "search", media["dog"], "--query", "something moving", "--json")
    assert code == 0, err
    doc = json.loads(out)
    # The red block appears at 5 and 15 s and leaves at 7 and 17 s: a change in windows 5, 7, 15 and 17, one hit each
    # pair (1 s apart: merged).
    assert spans(doc) == [(5.0, 8.0, ("motion",)), (15.0, 18.0, ("motion",))]
    assert "no labels: the energy probe names no sounds" in " ".join(doc["notes"])


def test_no_match_says_so(capsys, media, tagger, clip_dir, saved):
    code, out, err = run(capsys, "search", saved, "--query", "a horse", "--text-image-model", clip_dir, "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["matched"] is False and doc["hits"] == [] and doc["features"] == ["label", "picture"]
    code, out, err = run(capsys, "search", saved, "--query", "a horse", "--text-image-model", clip_dir)
    assert code == 0 and f"{media['dog']}: no match for \"a horse\" (evidence read: label, picture; no window " \
                          f"reaches --level 3)" in out
    code, out, err = run(capsys, "search", media["dog"], "--query", "dog")  # energy: no labels, no pictures
    assert code == 0 and "no match for \"dog\" (evidence read: none;" in out
    assert "note: no labels: the energy probe names no sounds" in out and "note: no text-image model" in out


def test_picture_evidence_is_the_towers_cosine_for_clip_and_siglip(media, tmp_path):
    pytest.importorskip("transformers", reason="text-image models need the [vlm] extra")
    import earmark
    from earmark.probes.question import TextImageModel, window_relevance
    from earmark.search import moments, search

    for kind in ("clip", "siglip"):
        d = tmp_path / kind
        _random_text_image(d, kind)
        tim = TextImageModel.from_pretrained(d)
        m = moments(media["dog"], text_image_model=tim, visual=False)
        assert m.embedder == {"path": str(d), "type": kind, "digest": tim.digest, "image_size": 32}
        assert m.embeddings.shape == (30, tim.embed_text("dog").shape[0]) and m.motion is None
        tl = m.index.timeline
        ref = window_relevance(media["dog"], "the red dog", tim, tl.starts, tl.window_s, tl.duration_s)
        np.testing.assert_allclose(m.embeddings.astype(np.float32) @ tim.embed_text("the red dog"), ref, atol=2e-3)
        r = search(m, "the red dog", text_image_model=tim)  # random towers: whatever stands out, by its cosine
        for h in r.hits:
            picture = next(x for x in h.reasons if x.feature == "picture")
            assert float(picture.detail.removeprefix("cosine ")) == pytest.approx(float(ref[h.window]), abs=2e-3)
    assert earmark.info(media["dog"]).duration_s == DURATION_S


def test_saved_features_answer_without_the_video(capsys, media, tagger, clip_dir, saved, tmp_path):
    from earmark.search import Moments, read_moments

    m = read_moments(saved)
    assert m.embeddings.dtype == np.float16 and m.embeddings.shape[0] == 30 and m.motion is not None
    assert Moments.from_dict(json.loads(saved.read_text())).to_dict() == json.loads(saved.read_text())
    moved = tmp_path / "dog.moments.json"
    moved.write_text(saved.read_text().replace(str(media["dog"]), str(tmp_path / "gone.mp4")))
    a = run(capsys, "search", moved, "--query", "dog", "--text-image-model", clip_dir, "--json")
    b = run(capsys, "search", media["dog"], "--query", "dog", "--probe", "yamnet", "--probe-weights", tagger,
            "--text-image-model", clip_dir, "--json")
    assert a[0] == b[0] == 0
    assert spans(json.loads(a[1])) == spans(json.loads(b[1]))
    assert [h["score"] for h in json.loads(a[1])["hits"]] == [h["score"] for h in json.loads(b[1])["hits"]]
    code, out, err = run(capsys, "search", moved, "--query", "moving", "--json")
    assert code == 0 and spans(json.loads(out)) == [(5.0, 8.0, ("motion",)), (15.0, 18.0, ("motion",))]
    # Another model's text embedding cannot be compared with these pictures.
    other = tmp_path / "other-clip"
    _random_text_image(other, "siglip")
    capsys.readouterr()
    code, _, err = run(capsys, "search", moved, "--query", "dog", "--text-image-model", other)
    assert code == 1 and err.startswith(f"earmark: error: --text-image-model {other}: its weights (")
    assert "are not those that embedded the pictures" in err and err.count("\n") == 1


def test_an_index_json_is_searched_by_its_labels_and_its_video_gives_the_pictures(capsys, media, tagger, clip_dir,
                                                                                  tmp_path):
    idx = tmp_path / "i.json"
    assert run(capsys, "index", media["dog"], "--probe", "yamnet", "--probe-weights", tagger, "--out", idx)[0] == 0
    code, out, err = run(capsys, "search", idx, "--query", "dog", "--json")
    assert code == 0, err
    assert spans(json.loads(out)) == [(5.0, 7.0, ("label",)), (24.0, 26.0, ("label",))]
    code, out, err = run(capsys, "search", idx, "--query", "dog", "--text-image-model", clip_dir, "--json")
    assert code == 0, err
    assert [s[:2] for s in spans(json.loads(out))] == [(5.0, 7.0), (15.0, 17.0), (24.0, 26.0)]
    code, _, err = run(capsys, "search", idx, "--query", "dog", "--probe", "flux")
    assert code == 1 and err.startswith("earmark: error: --probe flux: applies to a video") and err.count("\n") == 1


def test_plan_of_the_hits_spends_the_uniform_tokens(capsys, media, saved, clip_dir, tmp_path):
    from earmark.sinks.export import read_plan

    for model, budget in (("vit-p16", 1960), ("qwen2.5-vl", 640)):
        out = tmp_path / f"{model}.json"
        code, text, err = run(capsys, "search", saved, "--query", "dog", "--text-image-model", clip_dir, "--plan",
                              "--model", model, "--budget", budget, "--frames", 10, "--upscale", "--plan-out", out)
        assert code == 0, err
        p = read_plan(out)
        uniform = tmp_path / f"{model}-uniform.json"
        assert run(capsys, "plan", media["dog"], "--model", model, "--budget", budget, "--frames", 10, "--upscale",
                   "--strategy", "uniform", "--out", uniform)[0] == 0
        assert p.total_tokens == p.target_tokens == read_plan(uniform).total_tokens
        assert p.config["search"] == {"query": "dog", "hits": 3, "level": 3.0, "features": ["label", "picture"]}
        assert [(a.start_s, a.end_s, a.source) for a in p.anchors] == [(5.0, 7.0, "hybrid"), (15.0, 17.0, "visual"),
                                                                      (24.0, 26.0, "audio")]
        big = [f for f in p.frames if f.role == "anchor"]
        assert len(big) == 3 and all(any(a.start_s <= f.time_s < a.end_s for a in p.anchors) for f in big)
        assert min(f.width for f in big) > max(f.width for f in p.frames if f.role != "anchor")
    code, _, err = run(capsys, "search", saved, "--query", "horse", "--text-image-model", clip_dir, "--plan",
                       "--model", "vit-p16", "--budget", 1960, "--plan-out", tmp_path / "none.json")
    assert code == 1 and "no match for 'horse': nothing to plan (no plan written)" in err and err.count("\n") == 1
    assert not (tmp_path / "none.json").exists()


# ------------------------------------------------------------------------------------------- corpus


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, media, tagger) -> dict[str, Path]:
    """Two videos batched with the tone tagger (labels in the Parquet), and the same with energy (no labels)."""
    d = tmp_path_factory.mktemp("corpus")
    videos = d / "videos"
    videos.mkdir()
    (videos / "a.mp4").write_bytes(media["dog"].read_bytes())
    t = np.arange(int(20 * SR)) / SR
    x = 0.005 * np.random.default_rng(3).standard_normal(len(t))
    on = (t >= 10) & (t < 12)
    x[on] += 0.6 * np.sin(2 * np.pi * TONE_HZ * t[on])  # louder than a.mp4's barks
    write_media(videos / "b.mp4", 20.0, x.astype(np.float32), SR, video=VideoSpec(64, 48, 10.0, gop=10))
    assert main(["batch", str(videos), "--out", str(d / "tagged"), "--probe", "yamnet", "--probe-weights", tagger,
                 "-q", "--workers", "1"]) == 0
    assert main(["batch", str(videos), "--out", str(d / "energy"), "-q", "--workers", "1"]) == 0
    return {"videos": videos, "tagged": d / "tagged", "energy": d / "energy"}


def test_corpus_search_ranks_hits_across_videos(capsys, corpus):
    pytest.importorskip("duckdb")
    a, b = str(corpus["videos"] / "a.mp4"), str(corpus["videos"] / "b.mp4")
    code, out, err = run(capsys, "search", corpus["tagged"], "--query", "dog", "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["features"] == ["label"] and doc["source"] == str(corpus["tagged"])
    # Equal label evidence: the louder first (b's tone is 6 dB up, but eventness is a z within each video: equal),
    # then by path and time.
    got = [(h["video"], h["start_s"], h["end_s"], h["score"]) for h in doc["hits"]]
    assert sorted(got) == [(a, 5.0, 7.0, 4.0), (a, 24.0, 26.0, 4.0), (b, 10.0, 12.0, 4.0)]
    assert all(h["reasons"] == [{"feature": "label", "value": 4.0, "detail": "Dog (top 1)"}] for h in doc["hits"])
    code, out, err = run(capsys, "search", corpus["tagged"], "--query", "loud dog", "--top", "1", "--json")
    assert code == 0, err
    [hit] = json.loads(out)["hits"]
    assert [r["feature"] for r in hit["reasons"]] == ["eventness", "label"]
    assert hit["score"] == pytest.approx(4.0 + hit["eventness"])
    code, out, err = run(capsys, "search", corpus["energy"], "--query", "dog")
    assert code == 0 and "no match for \"dog\"" in out
    assert "no window of this corpus has a label (probes: energy)" in out
    code, out, err = run(capsys, "search", corpus["energy"], "--query", "loud", "--json")
    assert code == 0 and {h["video"] for h in json.loads(out)["hits"]} == {a, b}


def test_corpus_highlights_per_video_and_across(capsys, corpus, tmp_path):
    pytest.importorskip("duckdb")
    a, b = str(corpus["videos"] / "a.mp4"), str(corpus["videos"] / "b.mp4")
    code, out, err = run(capsys, "highlights", corpus["tagged"], "--top", "1", "--out", tmp_path / "h.json", "--out",
                         tmp_path / "h.csv")
    assert code == 0, err
    doc = json.loads((tmp_path / "h.json").read_text())
    assert doc["kind"] == "earmark.corpus_highlights" and doc["scope"] == "video" and doc["videos"] == 2
    assert [(s["video"], s["rank"], s["start_s"], s["end_s"]) for s in doc["segments"]] == [
        (a, 1, 5.0, 7.0), (b, 1, 10.0, 12.0)]
    rows = (tmp_path / "h.csv").read_text().splitlines()
    assert rows[0] == "rank,video,start_s,end_s,duration_s,score,mean_score,peak_s,probe"
    assert rows[1].startswith(f"1,{a},5.0,7.0,2.0,") and rows[1].endswith(",5.5,yamnet")
    # The same segments as `earmark highlights` gives each video from its own index.
    for video in (a, b):
        code, out, err = run(capsys, "highlights", video, "--probe", "yamnet", "--probe-weights",
                             _weights(corpus), "--top", "1", "--json")
        assert code == 0, err
        mine = [s for s in doc["segments"] if s["video"] == video]
        assert [(g["start_s"], g["end_s"], g["score"]) for g in json.loads(out)["segments"]] == [
            (g["start_s"], g["end_s"], g["score"]) for g in mine]
    code, out, err = run(capsys, "highlights", corpus["tagged"], "--scope", "corpus", "--top", "2", "--json")
    assert code == 0, err
    doc = json.loads(out)
    # Every event peaks at the same z (a z within its video): ties go to the higher mean, then path, then time.
    assert [(s["rank"], s["video"], s["start_s"]) for s in doc["segments"]] == [(1, a, 5.0), (2, a, 24.0)]
    code, out, err = run(capsys, "highlights", corpus["tagged"], "--scope", "corpus", "--total-duration", "3",
                         "--min-len", "1", "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["total_s"] == 3.0 and [s["duration_s"] for s in doc["segments"]] == [2.0, 1.0]


@pytest.fixture(scope="module")
def featured(corpus, tagger, clip_dir) -> Path:
    """The corpus batched with the tone tagger, motion and appearance change, and the tiny CLIP's embeddings."""
    out = corpus["videos"].parent / "featured"
    assert main(["batch", str(corpus["videos"]), "--out", str(out), "--probe", "yamnet", "--probe-weights", tagger,
                 "--visual-features", "--text-image-model", str(clip_dir), "-q", "--workers", "1"]) == 0
    return out


def _found(doc, video=None) -> list[tuple]:
    return [(h["start_s"], h["end_s"], tuple(r["feature"] for r in h["reasons"])) for h in doc["hits"]
            if video is None or h["video"] == video]


def test_corpus_search_reads_motion_and_pictures_as_a_video_search_does(capsys, corpus, featured, saved, clip_dir):
    pytest.importorskip("duckdb")
    a, b = str(corpus["videos"] / "a.mp4"), str(corpus["videos"] / "b.mp4")
    for query, more in (("moving", []), ("red", ["--text-image-model", clip_dir]),
                        ("dog", ["--text-image-model", clip_dir])):
        code, out, err = run(capsys, "search", featured, "--query", query, "--top", "20", *more, "--json")
        assert code == 0, err
        mine = json.loads(out)
        code, out, err = run(capsys, "search", saved, "--query", query, "--top", "20", *more, "--json")
        assert code == 0, err
        theirs = json.loads(out)
        assert mine["features"] == theirs["features"], query
        assert _found(mine, a) == _found(theirs), query  # a.mp4 is the saved video: the same hits
        got = {(h["start_s"], h["reasons"][0]["feature"]): h["score"] for h in mine["hits"] if h["video"] == a}
        want = {(h["start_s"], h["reasons"][0]["feature"]): h["score"] for h in theirs["hits"]}
        assert got == pytest.approx(want, abs=1e-3), query  # cosines in DuckDB's float arithmetic
        if query == "moving":
            assert mine["features"] == ["label", "motion"] and _found(mine, a) == [(5.0, 8.0, ("motion",)),
                                                                                   (15.0, 18.0, ("motion",))]
        if query == "dog":  # b.mp4's tone is heard (its picture never changes)
            assert mine["features"] == ["label", "picture"] and _found(mine, b) == [(10.0, 12.0, ("label",))]

            def cosines(doc, video=None):
                return [r["detail"] for h in doc["hits"] for r in h["reasons"] if r["feature"] == "picture" and (
                    video is None or h["video"] == video)]

            assert cosines(mine, a) == cosines(theirs) and len(cosines(theirs)) == 2
    # Without the model the pictures are not matched, and the note says which model made them.
    code, out, err = run(capsys, "search", featured, "--query", "red", "--json")
    assert code == 0 and json.loads(out)["hits"] == []
    assert f"pictures were embedded by {clip_dir}: give --text-image-model" in json.loads(out)["notes"][0]


def test_corpus_search_says_which_features_a_folder_lacks(capsys, corpus, clip_dir, tmp_path):
    pytest.importorskip("duckdb")
    code, out, err = run(capsys, "search", corpus["energy"], "--query", "moving", "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["features"] == ["label"] and doc["hits"] == []
    assert ("the query names motion, but 2 of 2 videos of this batch folder hold none (batch them with "
            "--visual-features") in " ".join(doc["notes"])
    code, out, err = run(capsys, "search", corpus["tagged"], "--query", "red", "--text-image-model", clip_dir,
                         "--json")
    assert code == 0, err
    assert (f"{corpus['tagged']}: no picture embeddings in this batch folder: make them with `earmark batch INPUT "
            f"--out {corpus['tagged']} --text-image-model DIR`") in json.loads(out)["notes"]


def test_corpus_pictures_need_the_model_that_embedded_them(capsys, featured, clip_dir, tmp_path):
    pytest.importorskip("duckdb")
    other = tmp_path / "other-clip"
    shutil.copytree(clip_dir, other)
    _point_texts_at(other, {"dog": np.eye(32)[0], "red": np.eye(32)[1], "horse": np.eye(32)[2]})
    code, out, err = run(capsys, "search", featured, "--query", "red", "--text-image-model", other)
    assert code == 1 and err.count("\n") == 1
    assert err.startswith(f"earmark: error: --text-image-model {other}: its weights (") and (
        f"are not those that embedded the pictures of {featured} ({clip_dir}, ") in err


def test_search_features_name_the_model_weights_in_the_config_hash(clip_dir, tmp_path):
    from earmark.batch import BatchConfig

    other = tmp_path / "other-clip"
    shutil.copytree(clip_dir, other)
    same_place = BatchConfig(text_image_model=str(other)).config_hash()
    assert BatchConfig(text_image_model=str(clip_dir)).config_hash() != same_place
    assert BatchConfig(text_image_model=str(clip_dir)).to_dict()["search_features"] == {
        "visual": False, "text_image_model": {"path": str(clip_dir), "digest": _digest(clip_dir)}}


def _digest(folder: Path) -> str:
    from earmark.probes.question import TextImageModel

    return TextImageModel.from_pretrained(folder).digest


def test_corpus_plans_one_per_video_equal_tokens_as_a_video_plan(capsys, corpus, featured, saved, clip_dir,
                                                                tmp_path):
    pytest.importorskip("duckdb")
    from earmark.sinks.export import read_plan

    a, b = str(corpus["videos"] / "a.mp4"), str(corpus["videos"] / "b.mp4")
    plans = tmp_path / "plans"
    opts = ["--model", "vit-p16", "--budget", 1960, "--frames", 10, "--upscale"]
    code, out, err = run(capsys, "search", featured, "--query", "dog", "--text-image-model", clip_dir, "--plan", *opts,
                         "--plan-out", plans)
    assert code == 0, err
    listing = json.loads((plans / "plans.json").read_text())
    assert listing["kind"] == "earmark.search_plans" and listing["query"] == "dog"
    assert [(p["video"], p["hits"]) for p in listing["plans"]] == [(a, 3), (b, 1)]
    assert sorted(p.name for p in plans.iterdir()) == sorted(["plans.json", *(p["file"] for p in listing["plans"])])
    code, _, err = run(capsys, "search", saved, "--query", "dog", "--text-image-model", clip_dir, "--plan", *opts,
                       "--plan-out", tmp_path / "one.json")
    assert code == 0, err
    single = read_plan(tmp_path / "one.json")
    for entry in listing["plans"]:
        p = read_plan(plans / entry["file"])
        uniform = tmp_path / "uniform.json"
        assert run(capsys, "plan", entry["video"], *opts, "--strategy", "uniform", "--out", uniform)[0] == 0
        assert p.total_tokens == p.target_tokens == read_plan(uniform).total_tokens == entry["total_tokens"]
        assert p.video.path == entry["video"] and p.config["search"]["hits"] == entry["hits"]
    pa = read_plan(plans / listing["plans"][0]["file"])
    assert [(x.start_s, x.end_s, x.source) for x in pa.anchors] == [(x.start_s, x.end_s, x.source)
                                                                    for x in single.anchors]
    assert [(f.time_s, f.width, f.tokens, f.role) for f in pa.frames] == [(f.time_s, f.width, f.tokens, f.role)
                                                                          for f in single.frames]
    pb = read_plan(plans / listing["plans"][1]["file"])
    assert [(x.start_s, x.end_s, x.source) for x in pb.anchors] == [(10.0, 12.0, "audio")]
    # The same command again replaces its own folder; the bytes are the same.
    before = {p.name: p.read_bytes() for p in plans.iterdir()}
    assert run(capsys, "search", featured, "--query", "dog", "--text-image-model", clip_dir, "--plan", *opts,
               "--plan-out", plans)[0] == 0
    assert {p.name: p.read_bytes() for p in plans.iterdir()} == before


def test_corpus_plans_refuse_bad_input_in_one_line_and_write_nothing(capsys, corpus, featured, tmp_path,
                                                                     monkeypatch):
    pytest.importorskip("duckdb")
    monkeypatch.chdir(tmp_path)
    opts = ["--plan", "--model", "vit-p16", "--budget", "1960"]

    def refused(source, query, out, message):
        before = sorted(str(p) for p in tmp_path.rglob("*"))
        code, _, err = run(capsys, "search", source, "--query", query, *opts, "--plan-out", out)
        assert code == 1 and err.startswith("earmark: error: ") and err.count("\n") == 1, err
        assert message in err, err
        assert sorted(str(p) for p in tmp_path.rglob("*")) == before

    refused(featured, "horse", "plans", f"{featured}: no match for 'horse': nothing to plan (no plans written)")
    Path("taken.json").write_text("{}")
    refused(featured, "dog", "taken.json", "--plan-out taken.json: exists and is not a folder")
    Path("mine").mkdir()
    Path("mine/notes.txt").write_text("precious")
    refused(featured, "dog", "mine", "--plan-out mine: exists and is not an earmark plans folder")
    # A video that changed since it was batched: its hits still read, its plan is refused.
    Path("videos").mkdir()
    shutil.copy(corpus["videos"] / "b.mp4", "videos/b.mp4")
    assert main(["batch", "videos", "--out", "batched", "-q", "--workers", "1"]) == 0
    with open("videos/b.mp4", "ab") as f:
        f.write(b"\0" * 64)
    refused("batched", "loud", "plans", f"{tmp_path / 'videos' / 'b.mp4'}: the file changed since it was batched "
                                       f"into batched (fingerprint differs)")
    code, _, err = run(capsys, "search", corpus["videos"] / "a.mp4", "--query", "dog", *opts, "--plan-out", "mine")
    assert code == 1 and "--plan-out mine: is a folder; the plan of one video is a file" in err, err


def _weights(corpus) -> str:
    cfg = next((corpus["tagged"] / "configs").glob("*.json"))
    return json.loads(cfg.read_text())["probe_options"]["weights"]


# ------------------------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(("args", "message"), [
    (["--top", "0"], "--top 0: must be an integer >= 1"),
    (["--level", "0"], "--level 0.0: must be a z-score > 0"),
    (["--merge-gap", "-1"], "--merge-gap -1.0: must be a number of seconds >= 0"),
    (["--out", "x.txt"], "--out x.txt: unknown hits format '.txt'; use one of .json, .csv"),
    (["--plan"], "--plan needs --model NAME and --budget TOKENS"),
    (["--model", "vit-p16"], "--model applies to --plan"),
    (["--plan", "--model", "nope", "--budget", "5"], "unknown model 'nope'; valid models: "),
    (["--plan", "--model", "vit-p16", "--budget", "99", "--strategy", "uniform"], "'uniform' is not one of"),
    (["--query", " "], "--query must be a non-empty text"),
])
def test_bad_options_one_line_exit_1_nothing_written(capsys, media, tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    code, out, err = run(capsys, "search", media["dog"], "--query", "dog", *args, "--out", "h.json", "--save",
                         "m.json")
    if "--strategy" in args:  # click refuses a choice itself: a usage error (exit 2, with a usage line)
        assert code == 2 and message in err
    else:
        assert code == 1 and err.startswith("earmark: error: ") and message in err and err.count("\n") == 1, err
    assert list(tmp_path.iterdir()) == []


def test_missing_files_hostile_documents_and_folders(capsys, media, saved, corpus, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)

    def refused(source, *more, save: bool = True) -> str:
        before = sorted(p.name for p in tmp_path.iterdir())
        code, _, err = run(capsys, "search", source, "--query", "dog", *more, "--out", "h.json",
                           *(["--save", "m.json"] if save else []))
        assert code == 1 and err.startswith("earmark: error: ") and err.count("\n") == 1, (source, err)
        assert sorted(p.name for p in tmp_path.iterdir()) == before
        return err

    assert refused("nope.mp4") == "earmark: error: nope.mp4: file not found\n"
    assert refused("nope.json") == "earmark: error: nope.json: file not found\n"
    good = json.loads(saved.read_text())
    emb = good["embeddings"]
    n, d = emb["shape"]
    tilted = np.zeros((n, d), "<f2")
    tilted[:, 0] = 0.5
    bad = {
        "nan.json": saved.read_text().replace('"motion": [', '"motion": [NaN, ', 1),
        "trunc.json": saved.read_text()[:300],
        "kind.json": json.dumps({**good, "kind": "earmark.plan"}),
        "short.json": json.dumps({**good, "motion": good["motion"][:3]}),
        "visual.json": json.dumps({**good, "visual": {"fps": 5.0, "size": 64}}),
        "b64.json": json.dumps({**good, "embeddings": {**emb, "base64": "@@@"}}),
        "shape.json": json.dumps({**good, "embeddings": {**emb, "shape": [n + 1, d]}}),
        "bytes.json": json.dumps({**good, "embeddings": {**emb, "base64": emb["base64"][:-8]}}),
        "unit.json": json.dumps({**good, "embeddings": {**emb, "base64": base64.b64encode(tilted.tobytes()).decode()}}),
        "model.json": json.dumps({**good, "embeddings": {**emb, "model": {**emb["model"], "type": "whisper"}}}),
        "index.json": json.dumps({**good, "index": {**good["index"], "timeline": {
            **good["index"]["timeline"], "scores": good["index"]["timeline"]["scores"][:3]}}}),
    }
    expected = {"nan.json": "motion[0] must be a finite number", "trunc.json": "not valid JSON",
                "kind.json": "not an earmark moments or index document", "short.json": "motion has 3 values",
                "visual.json": "visual must be", "b64.json": "embeddings.base64 is not base64 text",
                "shape.json": f"embeddings.shape must be [{n}, d]", "bytes.json": "embeddings.base64 holds",
                "unit.json": "embeddings row 0 is not a unit vector (norm 0.5)",
                "model.json": "embeddings.model.type must be one of",
                "index.json": "index: timeline.raw has 30 values, timeline.scores has 3"}
    for name, text in bad.items():
        Path(name).write_text(text)
        err = refused(name)
        assert err.startswith(f"earmark: error: {name}: ") and expected[name] in err, (name, err)
    # Batch folders: none, without its manifest, a corrupt part; and what applies only to a video.
    Path("plain").mkdir()
    assert "plain: not an earmark batch folder (no batch.json" in refused("plain")
    Path("fresh").mkdir()
    Path("fresh/batch.json").write_text((corpus["tagged"] / "batch.json").read_text())
    assert refused("fresh") == ("earmark: error: fresh/manifest.jsonl: not found: this batch folder has no manifest "
                                "(no video finished yet; run `earmark batch INPUT --out fresh`)\n")
    shutil.copytree(corpus["tagged"], "broken")
    next(Path("broken/windows").glob("*.parquet")).write_bytes(b"PAR1 not really")
    assert refused("broken", save=False).startswith("earmark: error: broken: cannot read its Parquet parts (")
    for flag in (["--probe", "flux"], ["--save", "m.json"]):
        err = refused(corpus["tagged"], *flag, save=False)
        assert f"{corpus['tagged']}: {flag[0]} applies to a video or its index, not to a batch folder" in err


@pytest.mark.parametrize(("args", "message"), [
    (["--out", "h.edl"], "--out h.edl: a batch folder's highlights are written as .json or .csv"),
    (["--cut", "clips"], "--cut applies to a video or its index, not to a batch folder"),
    (["--scorer", "activation"], "--scorer activation: a batch folder holds eventness"),
    (["--top", "0"], "--top 0: must be an integer >= 1"),
])
def test_corpus_highlights_bad_options(capsys, corpus, tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    code, _, err = run(capsys, "highlights", corpus["tagged"], *args, "--out", "h.json")
    assert code == 1 and err.startswith("earmark: error: ") and message in err and err.count("\n") == 1, err
    assert list(tmp_path.iterdir()) == []


def test_scope_applies_to_a_folder(capsys, media, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, _, err = run(capsys, "highlights", media["dog"], "--scope", "corpus", "--out", "h.json")
    assert code == 1 and "--scope corpus: applies to a batch folder (CORPUS_DIR)" in err and err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_corpus_highlights_of_folders_that_are_not_batches(capsys, corpus, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("fresh").mkdir()
    Path("fresh/batch.json").write_text((corpus["tagged"] / "batch.json").read_text())
    Path("plain").mkdir()
    for folder, message in (("fresh", "fresh/manifest.jsonl: not found: this batch folder has no manifest"),
                            ("plain", "plain: not an earmark batch folder (no batch.json")):
        code, _, err = run(capsys, "highlights", folder, "--out", "h.json")
        assert code == 1 and err.startswith(f"earmark: error: {message}") and err.count("\n") == 1, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fresh", "plain"]
