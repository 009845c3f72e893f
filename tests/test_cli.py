"""The CLI: outputs, machine-readable modes, and one clear line (never a traceback) for bad input."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from conftest import EVENT_SECONDS, SMALL, SR
from earmark.cli import main
from earmark.media.write import write_media
from earmark.probes import probe_names


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def no_partial_files(folder: Path) -> bool:
    return not [p for p in folder.iterdir() if p.name.endswith(".part")]


def test_index_prints_sparkline_and_anchor_table(capsys, events_mp4):
    code, out, err = run(capsys, "index", events_mp4, "--k", "3")
    assert code == 0, err
    assert "12 windows of 1 s every 1 s, probe energy (dBFS)" in out
    rows = [line.split() for line in out.splitlines() if line.strip()[:1].isdigit()]
    assert [int(r[1]) for r in rows] == EVENT_SECONDS
    assert any(ch in out for ch in "▁▂▃▄▅▆▇█")


def test_index_json_stdout_is_machine_readable(capsys, events_mp4):
    code, out, _ = run(capsys, "index", events_mp4, events_mp4, "--probe", "onset", "--k", "3", "--json")
    assert code == 0
    docs = [json.loads(line) for line in out.splitlines()]
    assert len(docs) == 2 and docs[0] == docs[1]
    assert [a["index"] for a in docs[0]["anchors"]] == EVENT_SECONDS
    assert docs[0]["timeline"]["probe"] == "onset"


def test_index_spread_mode_from_the_cli(capsys, events_mp4):
    code, out, err = run(capsys, "index", events_mp4, "--mode", "spread", "--k", "3", "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert [a["index"] for a in doc["anchors"]] == EVENT_SECONDS  # three short events: one anchor in each
    assert doc["anchor_config"]["mode"] == "spread"
    code, _, err = run(capsys, "index", events_mp4, "--mode", "peaks")
    assert code != 0 and "peaks" in err


def test_index_writes_json_csv_parquet(capsys, events_mp4, tmp_path):
    for name in ("one.json", "all.csv", "all.parquet"):
        code, _, err = run(capsys, "index", events_mp4, "--k", "3", "--out", tmp_path / name, "--quiet")
        assert code == 0, err
    doc = json.loads((tmp_path / "one.json").read_text())
    assert [a["index"] for a in doc["anchors"]] == EVENT_SECONDS
    with (tmp_path / "all.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 12
    assert list(rows[0])[:4] == ["video", "window", "t", "end"]
    assert [int(r["window"]) for r in rows if r["is_anchor"] == "1"] == EVENT_SECONDS
    assert float(rows[2]["score"]) == pytest.approx(doc["timeline"]["scores"][2], rel=1e-6)
    # A file name that a spreadsheet would run as a formula is written as text (a leading quote).
    import os
    import shutil

    shutil.copy(events_mp4, tmp_path / "=HYPERLINK(1).mp4")
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        code, _, err = run(capsys, "index", "=HYPERLINK(1).mp4", "--out", "formula.csv", "--quiet")
    finally:
        os.chdir(cwd)
    assert code == 0, err
    with (tmp_path / "formula.csv").open() as f:
        assert {r["video"] for r in csv.DictReader(f)} == {"'=HYPERLINK(1).mp4"}
    table = pq.read_table(tmp_path / "all.parquet")
    assert table.num_rows == 12
    assert table.column("is_anchor").to_pylist() == [i in EVENT_SECONDS for i in range(12)]
    assert json.loads(table.schema.metadata[b"earmark.anchors"])[str(events_mp4)][0]["index"] == 2
    assert no_partial_files(tmp_path)


def test_index_many_videos_into_a_directory(capsys, events_mp4, tmp_path):
    other = tmp_path / "second.mp4"
    other.write_bytes(events_mp4.read_bytes())
    code, _, err = run(capsys, "index", events_mp4, other, "--out", f"{tmp_path}/idx/", "-q")
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "idx").iterdir()) == ["events.earmark.json", "second.earmark.json"]
    code, _, err = run(capsys, "index", events_mp4, other, "--out", tmp_path / "both.json")
    assert code == 1 and "a .json file holds one video's index, got 2" in err
    assert not (tmp_path / "both.json").exists()


def test_info_json(capsys, events_mp4):
    code, out, _ = run(capsys, "info", events_mp4, "--json")
    doc = json.loads(out)
    assert code == 0
    assert doc["video"]["frame_count"] == 300 and doc["video"]["vfr"] is False
    code, out, _ = run(capsys, "info", events_mp4)
    assert "VFR no" in out and "keyframe interval  ~1.00 s" in out


def test_probes_lists_names(capsys):
    code, out, _ = run(capsys, "probes")
    assert code == 0
    names = [line.split()[0] for line in out.splitlines()[1:] if line[:1].strip()]
    assert names == probe_names() and {"energy", "flux", "onset", "motion", "hybrid", "vad"} <= set(names)
    code, out, _ = run(capsys, "probes", "--json")
    rows = {r["name"]: r for r in json.loads(out)}
    # Probes whose weights nobody ships say so instead of "available"; energy and the shipped Silero VAD run as is.
    needs = {n for n, r in rows.items() if r["needs_weights"]}
    assert needs == {"ast", "clap", "linear", "panns", "transfer", "yamnet"}
    assert not rows["energy"]["needs_weights"] and not rows["vad"]["needs_weights"]


# ------------------------------------------------------------------------------------------- bad input

@pytest.fixture()
def bad_files(tmp_path, events_mp4) -> dict[str, Path]:
    files = {"missing": tmp_path / "missing.mp4", "text": tmp_path / "notes.mp4", "empty": tmp_path / "empty.mp4",
             "truncated": tmp_path / "truncated.mp4", "garbage": tmp_path / "garbage.mkv"}
    files["text"].write_text("just some text\n" * 50)
    files["empty"].write_bytes(b"")
    data = events_mp4.read_bytes()
    files["truncated"].write_bytes(data[: len(data) // 3])
    files["garbage"].write_bytes(np.random.default_rng(0).integers(0, 256, 20000, dtype=np.uint8).tobytes())
    return files


@pytest.mark.parametrize("which,problem", [
    ("missing", "file not found"),
    ("text", "not a media file, or corrupt/truncated"),
    ("empty", "file is empty (0 bytes)"),
    ("truncated", "not a media file, or corrupt/truncated"),
    ("garbage", "not a media file, or corrupt/truncated"),
])
def test_bad_files_give_one_line_and_exit_1(capsys, bad_files, tmp_path, which, problem):
    path = bad_files[which]
    out_file = tmp_path / "out.json"
    code, out, err = run(capsys, "index", path, "--out", out_file)
    assert code == 1
    assert err.startswith(f"earmark: error: {path}: {problem}")
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not out_file.exists() and no_partial_files(tmp_path)


def test_no_audio_stream_suggests_visual_fallback(capsys, silent_video):
    code, _, err = run(capsys, "index", silent_video, "--fallback", "none")
    assert code == 1
    assert f"{silent_video}: no audio stream" in err and "visual fallback probe" in err
    code, out, _ = run(capsys, "index", silent_video)  # by default the picture takes over, with a note
    assert code == 0 and "probe motion" in out and "note:" in out


def test_audio_shorter_than_video_warns_and_zeroes_confidence(capsys, media_dir, tmp_path):
    path = media_dir / "short_audio.mp4"
    audio = (0.01 * np.random.default_rng(2).standard_normal(10 * SR)).astype(np.float32)
    write_media(path, 10.0, audio, SR, video=SMALL, audio_duration_s=6.0)
    code, out, err = run(capsys, "index", path, "--json")
    assert code == 0
    assert "earmark: warning:" in err and "audio is shorter than the video: it ends at 6.0" in err
    doc = json.loads(out)
    assert doc["timeline"]["confidence"][7:] == [0.0, 0.0, 0.0]
    assert doc["timeline"]["coverage"][5] == 1.0 and doc["timeline"]["coverage"][8] == 0.0


@pytest.mark.parametrize("args,message", [
    (["--probe", "loudness"], "unknown probe 'loudness'; valid probes: " + ", ".join(probe_names())),
    (["--hop", "0"], "hop must be > 0 seconds, got 0.0"),
    (["--hop", "-1"], "hop must be > 0 seconds, got -1.0"),
    (["--window", "0"], "window must be > 0 seconds, got 0.0"),
    (["--out", "x.txt"], "unknown output format '.txt'"),
])
def test_bad_settings_give_one_line_and_exit_1(capsys, events_mp4, args, message):
    code, _, err = run(capsys, "index", events_mp4, *args)
    assert code == 1
    assert message in err and "Traceback" not in err


def test_k_past_the_windows_is_clamped_with_a_warning(capsys, events_mp4):
    code, out, err = run(capsys, "index", events_mp4, "--k", "13", "--json")
    assert code == 0
    assert f"{events_mp4}: k=13 anchors asked for, but the video holds 12 windows: using k=12" in err
    doc = json.loads(out)
    assert doc["anchor_config"]["k"] == 12 and 1 <= len(doc["anchors"]) <= 12
    assert err.count("k=13 anchors asked for") == 1


def test_keep_going_skips_bad_files_but_fails_the_run(capsys, events_mp4, bad_files, tmp_path):
    out_csv = tmp_path / "some.csv"
    code, _, err = run(capsys, "index", bad_files["text"], events_mp4, "--keep-going", "--out", out_csv, "-q")
    assert code == 1
    assert "notes.mp4: not a media file" in err
    assert len(out_csv.read_text().splitlines()) == 13  # header + the good video's 12 windows


def test_debug_shows_the_traceback(bad_files):
    proc = subprocess.run([sys.executable, "-m", "earmark", "--debug", "index", str(bad_files["missing"])],
                          capture_output=True, text=True)
    assert proc.returncode != 0
    assert "Traceback" in proc.stderr and "MediaError" in proc.stderr


def test_console_script_and_module_agree(events_mp4):
    script = Path(sys.executable).with_name("earmark")  # the venv's console script (the venv need not be on PATH)
    a = subprocess.run([str(script), "index", str(events_mp4), "--json"], capture_output=True, text=True, check=True)
    b = subprocess.run([sys.executable, "-m", "earmark", "index", str(events_mp4), "--json"], capture_output=True,
                       text=True, check=True)
    assert a.stdout == b.stdout and json.loads(a.stdout)["kind"] == "earmark.index"


def test_demo_finds_every_event(capsys, tmp_path):
    code, out, err = run(capsys, "demo", "--out", tmp_path / "demo")
    assert code == 0, err
    assert "4/4       4/4       4/4" in out
    names = sorted(p.name for p in (tmp_path / "demo").iterdir())
    assert names == ["earmark-demo.mp4", "frames.qwen2.5-vl", "frames.vit-p16", "index.energy.json",
                     "index.flux.json", "index.onset.json", "plan.qwen2.5-vl.json", "plan.vit-p16.json",
                     "report.html", "report.qwen2.5-vl.html", "truth.json"]
    assert f"report: {tmp_path / 'demo' / 'report.html'}" in out
    assert "anchored plan for vit-p16: 30 frames, 5880 tokens (equal to uniform; budget 5880)" in out
    plan = json.loads((tmp_path / "demo" / "plan.vit-p16.json").read_text())
    # The four events get the 4 large frames; the frames folder holds exactly the plan.
    big = sorted(f["time_s"] for f in plan["frames"] if f["role"] == "anchor")
    assert big == [4.5, 11.5, 17.5, 25.5]
    manifest = json.loads((tmp_path / "demo" / "frames.vit-p16" / "manifest.json").read_text())
    assert len(manifest["frames"]) == 30 and sum(f["tokens"] for f in manifest["frames"]) == 5880
    doc = json.loads((tmp_path / "demo" / "index.energy.json").read_text())
    truth = json.loads((tmp_path / "demo" / "truth.json").read_text())["events"]
    for ev in truth:
        assert any(a["start_s"] < ev["end_s"] and ev["start_s"] < a["end_s"] for a in doc["anchors"])


def test_lazy_commands_help_summaries_are_the_commands_own():
    """`earmark --help` lists the lazily imported commands from stored summaries (nothing imported): each must read
    as the command's own docstring would."""
    import click

    from earmark.cli.commands import LAZY_COMMANDS, cli

    ctx = click.Context(cli)
    for name, (_, summary) in LAZY_COMMANDS.items():
        cmd = cli.get_command(ctx, name)
        assert cmd is not None, name
        for limit in (45, 80, 200, 1000):
            stored = click.Command(name, help=summary).get_short_help_str(limit)
            assert stored == cmd.get_short_help_str(limit), (name, limit)
