"""earmark batch / query: a corpus with faults, resume, kill -9 mid-way, determinism, Ray equal to the local pool,
and one line (exit 1) for bad input."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from conftest import SMALL, SR, events_audio
from earmark.anchors import AnchorConfig
from earmark.batch import (
    MANIFEST,
    BatchConfig,
    BatchProgress,
    connect,
    discover,
    process_video,
    query,
    read_manifest,
    run_batch,
    video_key,
)
from earmark.cli import main
from earmark.errors import ConfigError, SchemaError
from earmark.media.write import write_media
from earmark.probes.dsp import EnergyProbe
from earmark.synth import Event

CLIP_S = 3.0
HOSTILE = ["-starts-with-dash.mp4", "quote ' and \" [bold]markup[red].mp4", "emoji 🎬 clip.mp4",
           "new\nline.mp4", "semi;$(touch pwned)`x`.mp4", "x" * 200 + ".mp4", "tab\there.MP4"]
NON_UTF8 = b"latin1 \xe9t\xe9.mp4"


def _clip(path: Path, event_s: int, seed: int) -> Path:
    """A 3 s clip (64x48 H.264 + AAC, or Opus in .mkv / .webm) with a noise burst at second ``event_s``."""
    audio = events_audio(CLIP_S, [Event("noise", event_s + 0.2, event_s + 0.7)], seed=seed)
    write_media(path, CLIP_S, audio, SR, video=SMALL)
    return path


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> dict:
    """A folder of good clips (event at a known second), no-audio clips, hostile names, and faults."""
    root = tmp_path_factory.mktemp("corpus")
    (root / "sub" / "deeper").mkdir(parents=True)
    originals = [_clip(root / f"event{s}.mp4", s, seed=s) for s in range(3)]
    good: dict[str, int | None] = {str(p): s for s, p in enumerate(originals)}
    for i in range(9):  # copies under other names (different paths: different videos)
        dst = root / ("sub" if i % 2 else "sub/deeper") / f"copy{i:02d}.mp4"
        shutil.copy(originals[i % 3], dst)
        good[str(dst)] = i % 3
    for name in HOSTILE:
        shutil.copy(originals[1], root / name)
        good[str(root / name)] = 1
    good[str(_clip(root / "event2.mkv", 2, seed=7))] = 2
    good[str(_clip(root / "sub" / "event0.webm", 0, seed=8))] = 0
    for i in range(2):
        noaudio = root / f"noaudio{i}.mp4"
        write_media(noaudio, CLIP_S, None, SR, video=SMALL)
        good[str(noaudio)] = None
    faults = {}
    (root / "empty.mp4").write_bytes(b"")
    faults[str(root / "empty.mp4")] = "file is empty (0 bytes)"
    (root / "corrupt.mp4").write_bytes(os.urandom(4096))
    faults[str(root / "corrupt.mp4")] = "not a media file, or corrupt/truncated"
    data = originals[0].read_bytes()
    (root / "truncated.mp4").write_bytes(data[: len(data) // 3])
    faults[str(root / "truncated.mp4")] = "truncated"
    bad_name = os.path.join(os.fsencode(str(root)), NON_UTF8)
    shutil.copy(originals[0], bad_name)
    faults[os.fsdecode(bad_name)] = "the file name is not valid UTF-8"
    (root / "notes.txt").write_text("not media: never picked up")
    return {"root": root, "good": good, "faults": faults}


def _parts(out: Path) -> dict[str, bytes]:
    """Every Parquet part of a batch folder, by relative path."""
    return {str(p.relative_to(out)): p.read_bytes() for t in ("windows", "anchors", "frames")
            for p in sorted((out / t).glob("*.parquet"))}


def _essence(out: Path) -> list[tuple]:
    return sorted((r["path"], r["status"], r["error"], r["fingerprint"], r["config_hash"], r["windows"],
                   r["anchors"], r["frames"]) for r in read_manifest(out).values())


def _shown(path: str) -> str:
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def test_a_corpus_with_faults_records_exactly_those_and_every_good_video_once(corpus, tmp_path):
    out = tmp_path / "out"
    seen = []
    s = run_batch(corpus["root"], out, workers=2, progress=BatchProgress(video=seen.append))
    good, faults = corpus["good"], corpus["faults"]
    assert (s.inputs, s.done, s.failed, s.skipped_done) == (len(good) + len(faults), len(good), len(faults), 0)
    assert len(seen) == s.inputs
    rows = read_manifest(out)
    assert sorted(r["path"] for r in rows.values() if r["status"] == "ok") == sorted(good)
    failed = {r["path"]: r["error"] for r in rows.values() if r["status"] == "failed"}
    assert sorted(failed) == sorted(_shown(p) for p in faults)
    for path, why in faults.items():
        assert failed[_shown(path)].startswith(_shown(path) + ": ") and why in failed[_shown(path)]
        assert "\n" not in failed[_shown(path)]
    con = connect(out)
    counts = con.execute("SELECT count(*), count(DISTINCT (path, window_index)) FROM windows").fetchone()
    assert counts == (3 * len(good), 3 * len(good))
    assert con.execute("SELECT count(DISTINCT path) FROM anchors").fetchone() == (len(good),)
    top = dict(con.execute("SELECT path, arg_max(window_index, score) FROM anchors GROUP BY path").fetchall())
    sources = dict(con.execute("SELECT path, arg_max(source, score) FROM anchors GROUP BY path").fetchall())
    for path, event_s in good.items():
        if event_s is None:
            assert sources[path] in ("visual", "fallback")
        else:
            assert (top[path], sources[path]) == (event_s, "audio"), path
    ok = [r for r in rows.values() if r["status"] == "ok"]
    assert all(r["duration_s"] == CLIP_S and r["windows"] == 3 and r["peak_rss_mb"] > 0 for r in ok)
    assert all(r["timings"]["total_s"] >= r["timings"]["index_s"] > 0 for r in ok)
    assert s.media_s == CLIP_S * len(good)


def test_rerun_skips_done_redoes_changed_and_retries_failed_on_request(corpus, tmp_path):
    root = tmp_path / "in"
    root.mkdir()
    for name in ("event0.mp4", "event1.mp4", "empty.mp4", "corrupt.mp4"):
        shutil.copy(corpus["root"] / name, root / name)
    out = tmp_path / "out"
    first = run_batch(root, out, workers=1)
    assert (first.done, first.failed) == (2, 2)
    again = run_batch(root, out, workers=1)
    assert (again.done, again.failed, again.skipped_done, again.skipped_failed) == (0, 0, 2, 2)
    before = _parts(out)
    shutil.copy(corpus["root"] / "event2.mp4", root / "event0.mp4")  # event0.mp4 changes: now its event is at 2
    shutil.copy(corpus["root"] / "event1.mp4", root / "empty.mp4")   # a failed file repaired
    changed = run_batch(root, out, workers=1)
    assert (changed.done, changed.failed, changed.skipped_done, changed.skipped_failed) == (2, 0, 1, 1)
    after = _parts(out)
    key0 = video_key(str(root / "event0.mp4"))
    name0 = next(n for n in after if n.startswith(f"anchors/{key0}-"))
    assert after[name0] != before[name0]
    assert query(out, f"SELECT arg_max(window_index, score) AS w FROM anchors WHERE video_key = '{key0}'"
                 ).to_pylist() == [{"w": 2}]
    retried = run_batch(root, out, workers=1, retry_failed=True)
    assert (retried.done, retried.failed, retried.skipped_done) == (0, 1, 3)
    assert [p for p, _ in retried.failures] == [str(root / "corrupt.mp4")]
    flux = run_batch(root, out, BatchConfig(probe="flux"), workers=1)  # another config: every video again
    assert (flux.done, flux.failed) == (3, 1)
    assert {r["probe"] for r in query(out, "SELECT DISTINCT probe FROM windows").to_pylist()} == {"flux"}
    lines = (out / MANIFEST).read_text().splitlines()
    assert len(lines) == 4 and [json.loads(x)["path"] for x in lines] == sorted(json.loads(x)["path"] for x in lines)
    assert len(list((out / "configs").glob("*.json"))) == 2


def test_same_input_and_config_give_identical_parts_for_any_worker_count(corpus, tmp_path):
    one, two, again = tmp_path / "one", tmp_path / "two", tmp_path / "again"
    run_batch(corpus["root"], one, workers=1)
    run_batch(corpus["root"], two, workers=2)
    run_batch(corpus["root"], again, workers=2)
    parts = _parts(one)
    assert len(parts) == 2 * len(corpus["good"])
    assert _parts(two) == parts and _parts(again) == parts
    assert _essence(two) == _essence(one)


@pytest.mark.filterwarnings("ignore::earmark.errors.EarmarkWarning")  # the no-audio clip, indexed by its picture
def test_plan_and_extract_rows_are_the_plan_and_point_at_the_frames(corpus, tmp_path):
    import earmark

    root = tmp_path / "in"
    root.mkdir()
    for name in ("event1.mp4", "noaudio0.mp4", "corrupt.mp4"):
        shutil.copy(corpus["root"] / name, root / name)
    out = tmp_path / "out"
    cfg = BatchConfig(plan_model="vit-p16", budget=600, anchors=AnchorConfig(k=1),
                      plan_options={"frames": 3, "upscale": True}, extract=True, image_format="jpg")
    s = run_batch(root, out, cfg, workers=2)
    assert (s.done, s.failed) == (2, 1)
    for name in ("event1.mp4", "noaudio0.mp4"):
        path = str(root / name)
        tl = earmark.index(path)
        result = earmark.IndexResult(info=earmark.info(path), timeline=tl, anchors=tuple(earmark.anchors(tl, k=1)),
                                     anchor_config=AnchorConfig(k=1).to_dict())
        p = earmark.plan(result, "vit-p16", 600, "anchored", k=1, frames=3, upscale=True)
        rows = query(out, f"SELECT * FROM frames WHERE path = '{path}' ORDER BY frame").to_pylist()
        assert [(r["time_s"], r["width"], r["height"], r["tokens"], r["role"], r["anchor"]) for r in rows] == [
            (f.time_s, f.width, f.height, f.tokens, f.role, f.anchor) for f in p.frames]
        assert {(r["model"], r["strategy"], r["budget"], r["target_tokens"]) for r in rows} == {
            ("vit-p16", "anchored", 600, p.target_tokens)}
        for r in rows:
            assert (out / r["image"]).is_file() and r["image"].endswith(".jpg")
            assert abs(r["pts_s"] - r["time_s"]) < 0.05
    anchor_sizes = query(out, "SELECT DISTINCT width FROM frames WHERE role = 'anchor'").to_pylist()
    assert anchor_sizes and all(r["width"] > 112 for r in anchor_sizes)


def test_parts_no_manifest_line_vouches_for_never_reach_a_query_and_are_removed(corpus, tmp_path):
    root = tmp_path / "in"
    root.mkdir()
    shutil.copy(corpus["root"] / "event1.mp4", root / "a.mp4")
    out, flux = tmp_path / "out", tmp_path / "flux"
    run_batch(root, out, workers=1)
    run_batch(root, flux, BatchConfig(probe="flux"), workers=1)
    # What a flux run into `out` killed between its parts and its manifest line leaves, and an orphan.
    strays = [out / "windows" / p.name for p in (flux / "windows").iterdir()]
    shutil.copy(flux / "windows" / strays[0].name, strays[0])
    strays.append(out / "anchors" / f"{'0' * 16}-{'1' * 16}.parquet")
    shutil.copy(next((out / "anchors").iterdir()), strays[-1])
    assert query(out, "SELECT count(*) AS n, min(probe) AS p FROM windows").to_pylist() == [{"n": 3, "p": "energy"}]
    assert query(out, "SELECT count(*) AS n FROM anchors").to_pylist() == [{"n": 1}]  # one event, one anchor
    s = run_batch(root, out, workers=1)
    assert (s.done, s.skipped_done) == (0, 1)
    assert not any(p.exists() for p in strays)
    assert query(out, "SELECT count(*) AS n, min(probe) AS p FROM windows").to_pylist() == [{"n": 3, "p": "energy"}]


class _DogProbe(EnergyProbe):
    """Energy that names its loud windows "Dog" and the rest "Silence" (a stand-in for a tagger's labels)."""

    name = "test-dog"

    def window_values(self, frame_values, grid):
        db = super().window_values(frame_values, grid)
        self.labels_out = tuple(("Dog",) if x > db.min() + 6 else ("Silence",) for x in db)
        return db


def test_the_readme_queries(corpus, tmp_path, monkeypatch):
    from earmark.probes import base

    monkeypatch.setitem(base._REGISTRY, _DogProbe.name, _DogProbe)  # registered for this test only
    root = tmp_path / "in"
    root.mkdir()
    for i in range(2):  # three dog seconds of four, and one of four
        audio = events_audio(4.0, [Event("noise", s + 0.2, s + 0.8) for s in ((0, 1, 3) if i == 0 else (2,))],
                             seed=i)
        write_media(root / f"dogs{i}.mp4", 4.0, audio, SR, video=SMALL)
    out = tmp_path / "out"
    cfg = BatchConfig(probe="test-dog", anchors=AnchorConfig(k=4, mode="threshold", threshold=-10, min_gap_s=0),
                      plan_model="vit-p16", budget=4 * 196, plan_options={"upscale": True, "frames": 4})
    assert run_batch(root, out, cfg, workers=1).done == 2
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    dogs_sql = next(line for line in readme.splitlines() if line.startswith("SELECT path, count(*) AS dogs"))
    assert [(r["path"], r["dogs"]) for r in query(out, dogs_sql).to_pylist()] == [(str(root / "dogs0.mp4"), 3)]
    block = readme[readme.index("WITH v AS"):]
    saved_sql = block[: block.index(";") + 1]
    rows = query(out, saved_sql).to_pylist()
    frames = query(out, "SELECT path, tokens FROM frames ORDER BY path, frame").to_pylist()
    per_video = {}
    for f in frames:
        per_video.setdefault(f["path"], []).append(f["tokens"])
    saved = sum(len(t) * max(t) - sum(t) for t in per_video.values())  # vit-p16: one frame per slot
    assert saved > 0 and rows == [{"model": "vit-p16", "budget": 784, "saved_per_hour": round(saved / (8 / 3600))}]


def test_discover_folder_list_glob_and_single_file(corpus, tmp_path):
    root = corpus["root"]
    found = discover(root)
    assert len(found) == len(corpus["good"]) + len(corpus["faults"])
    assert found == sorted(found) and all(os.path.isabs(p) for p in found)
    listing = tmp_path / "list.txt"
    listing.write_text(f"# my videos\n{root / 'event0.mp4'}\n\n{root / 'event0.mp4'}\nrelative.mp4\n")
    assert discover(listing) == [str(root / "event0.mp4"), str(tmp_path / "relative.mp4")]
    assert discover(f"{root}/sub/**/*.mp4") == sorted(str(p) for p in (root / "sub").rglob("*.mp4"))
    assert discover(root / "event1.mp4") == [str(root / "event1.mp4")]


def test_a_listed_path_that_does_not_exist_is_a_failure(corpus, tmp_path):
    listing = tmp_path / "list.txt"
    listing.write_text(f"{corpus['root'] / 'event0.mp4'}\nmissing.mp4\n")
    s = run_batch(listing, tmp_path / "out", workers=1)
    assert (s.done, s.failed) == (1, 1)
    assert s.failures == [(str(tmp_path / "missing.mp4"), f"{tmp_path / 'missing.mp4'}: file not found")]


def test_process_video_never_raises_for_a_bad_video(corpus):
    from earmark.batch import VideoJob

    row = process_video(VideoJob(str(corpus["root"] / "corrupt.mp4"), "0" * 16, BatchConfig()))
    assert row["status"] == "failed" and "tables" not in row
    row = process_video(VideoJob(str(corpus["root"] / "event2.mp4"), "0" * 16, BatchConfig(anchors=AnchorConfig(k=1))))
    assert row["status"] == "ok" and row["tables"]["anchors"]["window_index"] == [2]


def run_cli(capsys, *args) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_batch_and_query(corpus, tmp_path, capsys):
    root = tmp_path / "in"
    root.mkdir()
    for name in ("event0.mp4", "event2.mp4", "empty.mp4", HOSTILE[1]):
        shutil.copy(corpus["root"] / name, root / name)
    out = tmp_path / "out"
    code, stdout, err = run_cli(capsys, "batch", root, "--out", out, "--workers", "2", "--k", "1")
    assert code == 0, err
    assert "done now" in stdout and "failed now" in stdout
    assert f"failed: {root / 'empty.mp4'}: file is empty (0 bytes)" in stdout
    code, stdout, err = run_cli(capsys, "query", out, "SELECT path, window_index FROM anchors ORDER BY path",
                                "--format", "json")
    assert code == 0, err
    got = [json.loads(x) for x in stdout.splitlines()]
    assert got == [{"path": str(root / "event0.mp4"), "window_index": 0},
                   {"path": str(root / "event2.mp4"), "window_index": 2},
                   {"path": str(root / HOSTILE[1]), "window_index": 1}]
    code, stdout, _ = run_cli(capsys, "query", out, "SELECT status, count(*) AS n FROM manifest GROUP BY status "
                                                    "ORDER BY status", "--format", "csv")
    assert code == 0 and stdout == "status,n\nfailed,1\nok,3\n"
    code, stdout, _ = run_cli(capsys, "query", out, "SELECT path FROM manifest WHERE path LIKE '%markup%'")
    assert code == 0 and "[bold]markup[red]" in stdout  # shown as text, not as rich markup
    code, stdout, err = run_cli(capsys, "batch", root, "--out", out, "--k", "1")
    assert code == 0 and "already done (skipped)" in stdout


@pytest.mark.parametrize("case", ["missing", "empty-list", "binary-list", "no-media", "corrupt-manifest",
                                  "bad-field", "not-a-batch-folder", "bad-sql", "extract-without-plan",
                                  "plan-without-budget", "query-not-a-batch", "text-image-not-a-model",
                                  "text-image-not-clip"])
def test_cli_bad_input_is_one_line_exit_1(corpus, tmp_path, capsys, case):
    root = tmp_path / "in"
    root.mkdir()
    shutil.copy(corpus["root"] / "event0.mp4", root / "a.mp4")
    out = tmp_path / "out"
    args: list = ["batch", root, "--out", out, "--workers", "1"]
    expect = ""
    if case == "missing":
        args[1], expect = tmp_path / "nope", f"{tmp_path / 'nope'}: no such file or folder"
    elif case == "empty-list":
        (tmp_path / "list.txt").write_text("# nothing yet\n\n")
        args[1], expect = tmp_path / "list.txt", f"{tmp_path / 'list.txt'}: the list of paths is empty"
    elif case == "binary-list":
        (tmp_path / "clip.bin").write_bytes(b"\0\1\2" * 10)
        args[1], expect = tmp_path / "clip.bin", f"{tmp_path / 'clip.bin'}: not a text file of paths"
    elif case == "no-media":
        (tmp_path / "docs").mkdir()
        (tmp_path / "docs" / "a.txt").write_text("x")
        args[1], expect = tmp_path / "docs", f"{tmp_path / 'docs'}: no media files in this folder"
    elif case in ("corrupt-manifest", "bad-field"):
        assert main([str(a) for a in args] + ["-q"]) == 0
        shutil.copy(corpus["root"] / "event1.mp4", root / "b.mp4")
        assert main([str(a) for a in args] + ["-q"]) == 0
        lines = (out / MANIFEST).read_text().splitlines(keepends=True)
        if case == "corrupt-manifest":
            lines[1] = '{"path": "oops\n'
            expect = f"{out / MANIFEST}: line 2: not a JSON object"
        else:
            lines[0] = lines[0].replace('"status": "ok"', '"status": "done"')
            expect = f"{out / MANIFEST}: line 1: status must be one of \"ok\", \"failed\", got \"done\""
        (out / MANIFEST).write_text("".join(lines))
        before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    elif case == "not-a-batch-folder":
        out.mkdir()
        (out / "mine.txt").write_text("precious")
        expect = f"{out}: exists and is not an earmark batch folder"
    elif case == "bad-sql":
        assert main([str(a) for a in args] + ["-q"]) == 0
        args, expect = ["query", out, "SELECT nothing FROM nowhere"], "query: Catalog Error"
    elif case == "extract-without-plan":
        args.append("--extract")
        expect = "--extract needs a plan: give --plan-model and --budget"
    elif case == "plan-without-budget":
        args += ["--plan-model", "qwen2.5-vl"]
        expect = "--plan-model and --budget go together"
    elif case == "query-not-a-batch":
        args, expect = ["query", tmp_path, "SELECT 1"], f"{tmp_path}: not an earmark batch folder"
    elif case == "text-image-not-a-model":
        pytest.importorskip("transformers")
        args += ["--text-image-model", tmp_path / "nope"]
        expect = f"--text-image-model {tmp_path / 'nope'}: not found (give the local folder of a CLIP or SigLIP"
    elif case == "text-image-not-clip":
        pytest.importorskip("transformers")
        (tmp_path / "bert").mkdir()
        (tmp_path / "bert" / "config.json").write_text('{"model_type": "bert"}')
        args += ["--text-image-model", tmp_path / "bert"]
        expect = f"--text-image-model {tmp_path / 'bert'}: a 'bert' checkpoint; a CLIP or SigLIP checkpoint is one"
    code, stdout, err = run_cli(capsys, *args)
    assert code == 1, (stdout, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("earmark: error: ") and expect in lines[0], err
    assert "Traceback" not in err
    if case in ("corrupt-manifest", "bad-field"):
        assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before  # nothing touched
    if case == "not-a-batch-folder":
        assert sorted(p.name for p in out.iterdir()) == ["mine.txt"]
    if case.startswith("text-image"):
        assert not out.exists()  # refused before the folder is made


def test_visual_features_are_in_the_config_hash_stored_per_window_and_byte_identical(corpus, tmp_path):
    import pyarrow.parquet as pq

    listed = tmp_path / "list.txt"
    listed.write_text("".join(f"{corpus['root'] / n}\n" for n in ("event0.mp4", "event1.mp4", "noaudio0.mp4")))
    base, vis = BatchConfig(), BatchConfig(visual_features=True)
    assert "search_features" not in base.to_dict()  # folders batched before the option keep their hash
    assert vis.to_dict()["search_features"] == {"visual": True, "text_image_model": None}
    assert vis.config_hash() != base.config_hash()
    one, two = tmp_path / "one", tmp_path / "two"
    assert run_batch(listed, one, vis, workers=1).done == 3
    assert run_batch(listed, two, vis, workers=2).done == 3
    assert _parts(one) == _parts(two) and len(_parts(one)) == 6
    for p in sorted((one / "windows").glob("*.parquet")):
        t = pq.read_table(p).to_pydict()
        assert len(t["motion"]) == 3 and all(isinstance(v, float) and v == v for v in t["motion"] + t["appearance"])
        assert t["embedding"] == [None] * 3
    assert all(r["timings"]["features_s"] > 0 for r in read_manifest(one).values())
    s = run_batch(listed, one, vis, workers=1)
    assert (s.done, s.skipped_done) == (0, 3)
    s = run_batch(listed, one, base, workers=1)  # another configuration: every video again, without the features
    assert (s.done, s.skipped_done) == (3, 0)
    for p in sorted((one / "windows").glob("*.parquet")):
        t = pq.read_table(p).to_pydict()
        assert t["motion"] == t["appearance"] == t["embedding"] == [None] * 3


def test_an_unfinished_last_manifest_line_is_dropped_and_the_video_done_again(corpus, tmp_path):
    root = tmp_path / "in"
    root.mkdir()
    for name in ("event0.mp4", "event1.mp4"):
        shutil.copy(corpus["root"] / name, root / name)
    out = tmp_path / "out"
    run_batch(root, out, workers=1)
    text = (out / MANIFEST).read_text()
    (out / MANIFEST).write_text(text[: len(text) - 40])  # a kill in the middle of appending the last line
    assert len(read_manifest(out)) == 1
    s = run_batch(root, out, workers=1)
    assert (s.done, s.skipped_done) == (1, 1)
    assert len((out / MANIFEST).read_text().splitlines()) == 2


def test_config_errors_before_any_work(tmp_path, corpus):
    with pytest.raises(ConfigError, match="unknown probe 'nope'"):
        run_batch(corpus["root"], tmp_path / "o", BatchConfig(probe="nope"))
    with pytest.raises(ConfigError, match="strategy 'oracle' cannot run on a corpus"):
        run_batch(corpus["root"], tmp_path / "o", BatchConfig(plan_model="vit-p16", budget=100, strategy="oracle"))
    with pytest.raises(ConfigError, match="--ray-address needs --backend ray"):
        run_batch(corpus["root"], tmp_path / "o", ray_address="auto")
    assert not (tmp_path / "o").exists()
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "batch.json").write_text("{}")
    with pytest.raises(SchemaError, match="not an earmark batch marker"):
        run_batch(corpus["root"], tmp_path / "m")


KILLER = textwrap.dedent("""
    import os, signal, sys
    import earmark.batch as b

    where, after = sys.argv[3], int(sys.argv[4])
    count = {"n": 0}

    def die():
        os.kill(os.getpid(), signal.SIGKILL)

    def tick():
        count["n"] += 1
        return count["n"] > after

    real_append, real_atomic = b._append, b.write_atomic
    if where == "before-manifest":    # parts renamed into place, the manifest line not yet written
        b._append = lambda path, row: die() if tick() else real_append(path, row)
    elif where == "mid-part":         # a part written to its temporary name, not yet renamed
        def atomic(target, write):
            if tick():
                import tempfile
                fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(target)}.", suffix=".part",
                                           dir=os.path.dirname(target))
                os.close(fd)
                write(__import__("pathlib").Path(tmp))
                die()
            return real_atomic(target, write)
        b.write_atomic = atomic
    progress = b.BatchProgress(video=lambda row: die() if where == "after-manifest" and tick() else None)
    b.run_batch(sys.argv[1], sys.argv[2], workers=2, progress=progress)
""")


@pytest.mark.slow
@pytest.mark.parametrize("where", ["before-manifest", "mid-part", "after-manifest"])
def test_kill_9_mid_way_then_rerun_equals_a_clean_run(corpus, tmp_path, where):
    clean, killed = tmp_path / "clean", tmp_path / "killed"
    run_batch(corpus["root"], clean, workers=2)
    script = tmp_path / "killer.py"
    script.write_text(KILLER)
    r = subprocess.run([sys.executable, str(script), str(corpus["root"]), str(killed), where, "5"],
                       capture_output=True, text=True)
    assert r.returncode == -signal.SIGKILL, r.stderr
    half = read_manifest(killed)
    assert 0 < len(half) < len(corpus["good"]) + len(corpus["faults"])
    leftovers = [p for p in killed.rglob("*.part")]
    assert bool(leftovers) == (where == "mid-part")
    s = run_batch(corpus["root"], killed, workers=2)
    assert s.skipped_done + s.skipped_failed == len(half) and s.done + s.failed == s.inputs - len(half)
    assert _parts(killed) == _parts(clean)
    assert _essence(killed) == _essence(clean)
    assert not list(killed.rglob("*.part"))
    assert len((killed / MANIFEST).read_text().splitlines()) == s.inputs


@pytest.mark.slow
def test_ray_backend_equals_the_local_pool_byte_for_byte(corpus, tmp_path):
    pytest.importorskip("ray", reason="ray is not installed (pip install -e '.[ray]')")
    root = tmp_path / "in"
    root.mkdir()
    for name in ("event0.mp4", "event2.mkv", "noaudio0.mp4", "corrupt.mp4", HOSTILE[2]):
        shutil.copy(corpus["root"] / name, root / name)
    cfg = BatchConfig(plan_model="qwen2.5-vl", budget=512)
    local, ray = tmp_path / "local", tmp_path / "ray"
    run_batch(root, local, cfg, workers=2)
    s = run_batch(root, ray, cfg, workers=2, backend="ray")
    assert (s.done, s.failed) == (4, 1)
    assert _parts(ray) == _parts(local) and len(_parts(ray)) == 12
    assert _essence(ray) == _essence(local)


def _ray_workers_running_a_task() -> list[int]:
    pids = []
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                cmd = (p / "cmdline").read_bytes()
            except OSError:
                continue
            if cmd.startswith(b"ray::_call"):  # Ray titles a worker by the task it runs (ray::IDLE when idle)
                pids.append(int(p.name))
    return pids


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="finds Ray's workers in /proc")
def test_a_ray_worker_killed_mid_way_changes_nothing(corpus, tmp_path):
    pytest.importorskip("ray", reason="ray is not installed (pip install -e '.[ray]')")
    import threading
    import time

    root = tmp_path / "in"
    root.mkdir()
    long_clip = root / "long0.mp4"
    audio = events_audio(90.0, [Event("noise", s + 0.2, s + 0.7) for s in range(5, 90, 11)], seed=3)
    write_media(long_clip, 90.0, audio, SR, video=SMALL)
    for i in range(1, 6):
        shutil.copy(long_clip, root / f"long{i}.mp4")
    cfg = BatchConfig(probe="flux")
    local, ray = tmp_path / "local", tmp_path / "ray"
    run_batch(root, local, cfg, workers=2)
    result: dict = {}
    runner = threading.Thread(target=lambda: result.update(s=run_batch(root, ray, cfg, workers=2, backend="ray")))
    runner.start()
    killed = None
    end = time.monotonic() + 60
    while killed is None and runner.is_alive() and time.monotonic() < end:
        busy = _ray_workers_running_a_task()
        if busy:
            os.kill(busy[0], signal.SIGKILL)
            killed = busy[0]
        time.sleep(0.01)
    runner.join()
    assert killed is not None, "no Ray worker was caught running a task"
    assert (result["s"].done, result["s"].failed) == (6, 0)  # Ray ran the killed task again
    assert _parts(ray) == _parts(local)
