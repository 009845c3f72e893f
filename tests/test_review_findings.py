"""Findings of the review of e8fc4ea.. (FCPXML, corpus search and plans, text-image loading), pinned as tests.

Each pinned a bug the review found (as a strict xfail until it was fixed) and now pins the fix.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from conftest import SR
from earmark.cli import main
from earmark.media.write import VideoSpec, write_media

DURATION_S = 8.0


def run(capsys, *args) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def _sound() -> np.ndarray:
    rng = np.random.default_rng(3)
    t = np.arange(int(DURATION_S * SR)) / SR
    x = 0.005 * rng.standard_normal(len(t))
    on = (t >= 3.0) & (t < 4.0)
    x[on] += 0.3 * np.sin(2 * np.pi * 1000.0 * t[on])
    return x.astype(np.float32)


def _picture(i: int, t: float) -> np.ndarray:
    img = np.full((48, 64, 3), 90, np.uint8)
    if 3.0 <= t < 4.0:
        img[8:40, 12:52] = (220, 30, 30)
    return img


@pytest.fixture(scope="module")
def video(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("review-media")
    return write_media(d / "clip.mp4", DURATION_S, _sound(), SR, video=VideoSpec(64, 48, 10.0, gop=10),
                       frame_fn=_picture)


def _files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


# ------------------------------------------------------------------------------------------- right today


def test_fcpxml_is_byte_identical_run_to_run(capsys, video, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name in ("a.fcpxml", "b.fcpxml"):
        code, _, err = run(capsys, "highlights", video, "--top", "2", "--out", name, "-q")
        assert code == 0, err
    assert Path("a.fcpxml").read_bytes() == Path("b.fcpxml").read_bytes()


# ------------------------------------------------------------------------------------------- bugs found


def test_highlights_output_under_a_file_is_one_line_and_nothing_written(capsys, video, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("taken").write_text("a file")
    before = _files(tmp_path)
    code, _, err = run(capsys, "highlights", video, "--out", "h.csv", "--out", "taken/reel.fcpxml", "-q")
    assert code == 1 and err.startswith("earmark: error: ") and err.count("\n") == 1, err
    assert "taken" in err
    assert _files(tmp_path) == before


def test_search_save_and_plan_out_all_or_nothing(capsys, video, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("taken").write_text("a file")
    before = _files(tmp_path)
    code, _, err = run(capsys, "search", video, "--query", "loud", "--level", "1", "--save", "m.json", "--plan",
                       "--model", "vit-p16", "--budget", "1960", "--plan-out", "taken/p.json", "-q")
    assert code == 1 and err.startswith("earmark: error: ") and err.count("\n") == 1, err
    assert _files(tmp_path) == before


def test_search_plan_options_refused_before_decoding(capsys, video, tmp_path, monkeypatch):
    import earmark.cli.search_cmd as search_cmd

    def decoded(*args, **kwargs):
        raise AssertionError("the video was decoded before the plan options were checked")

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(search_cmd, "_load_source", decoded)
    code, _, err = run(capsys, "search", video, "--query", "loud", "--plan", "--model", "vit-p16", "--budget", "0",
                       "--plan-out", "p.json")
    assert code == 1 and "budget" in err and "decoded" not in err, err
    assert list(tmp_path.iterdir()) == []


def _tiny_clip_config(d: Path) -> None:
    pytest.importorskip("torch", reason="text-image models need the [vlm] extra")
    transformers = pytest.importorskip("transformers", reason="text-image models need the [vlm] extra")
    text = dict(vocab_size=16, hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                max_position_embeddings=16)
    vision = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2, image_size=32,
                  patch_size=8)
    transformers.CLIPConfig(text_config=text, vision_config=vision, projection_dim=32).save_pretrained(d)


def test_corrupt_text_image_weights_are_one_config_error(tmp_path):
    from earmark.errors import ConfigError
    from earmark.probes.question import TextImageModel

    d = tmp_path / "clip"
    d.mkdir()
    _tiny_clip_config(d)
    (d / "model.safetensors").write_bytes(b"\x10\x00\x00\x00not a safetensors file")
    with pytest.raises(ConfigError, match="--text-image-model"):
        TextImageModel.from_pretrained(d)


def test_quiet_loading_restores_both_switches():
    pytest.importorskip("transformers")
    from huggingface_hub.utils import are_progress_bars_disabled, enable_progress_bars
    from transformers.utils import logging as hf_logging

    from earmark.probes.weights import quiet_loading

    was_on, hub_was_off = hf_logging.is_progress_bar_enabled(), are_progress_bars_disabled()
    try:
        hf_logging.disable_progress_bar()
        enable_progress_bars()
        with quiet_loading():
            pass
        assert not hf_logging.is_progress_bar_enabled()
        assert not are_progress_bars_disabled()
    finally:
        (hf_logging.enable_progress_bar if was_on else hf_logging.disable_progress_bar)()
        if not hub_was_off:
            enable_progress_bars()


def test_loading_a_text_image_model_keeps_the_callers_logging(monkeypatch):
    pytest.importorskip("transformers")
    from transformers.utils import logging as hf_logging

    import earmark.preview as hl
    from earmark.probes.question import TextImageModel

    monkeypatch.setattr(TextImageModel, "from_pretrained", classmethod(lambda cls, path: "loaded"))
    was_on, level = hf_logging.is_progress_bar_enabled(), hf_logging.get_verbosity()
    try:
        hf_logging.enable_progress_bar()
        hf_logging.set_verbosity_warning()
        assert hl.load_text_image_model("some/folder") == "loaded"
        assert hf_logging.is_progress_bar_enabled()
        assert hf_logging.get_verbosity() == hf_logging.WARNING
    finally:
        (hf_logging.enable_progress_bar if was_on else hf_logging.disable_progress_bar)()
        hf_logging.set_verbosity(level)


def test_plan_refuses_a_request_before_decoding(capsys, video, tmp_path, monkeypatch):
    """`earmark plan` and `earmark prompt`: a bad budget or skim without pooled frames is refused before the video
    is decoded (the same check as search --plan)."""
    import earmark.cli.commands as commands

    def decoded(*args, **kwargs):
        raise AssertionError("the video was decoded before the request was checked")

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(commands, "_load_source", decoded)
    for cmd, extra in (("plan", ()), ("prompt", ("--question", "what happens?", "--out", "m.json"))):
        for args, msg in ((("--budget", "0"), "budget must be a positive number of tokens, got 0"),
                          (("--budget", "500", "--strategy", "skim"), "skim strategy needs a model with pooled")):
            code, _, err = run(capsys, cmd, video, "--model", "vit-p16", *args, *extra)
            assert code == 1 and msg in err and err.count("\n") == 1, (cmd, args, err)
    assert list(tmp_path.iterdir()) == []
