"""Hand-edited and hostile index / plan documents: one line naming the file and the field, exit 1, before any decoding,
and no output; never an internal error (exit 70) and never a silent wrong answer."""

from __future__ import annotations

import contextlib
import copy
import io
import json
import os
import tempfile
from pathlib import Path

import jsonschema
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import earmark.media.container
import earmark.media.frames
import earmark.sinks.export
from earmark.anchors import AnchorConfig
from earmark.budget.planner import FITS, STRATEGIES
from earmark.cli import main
from earmark.errors import SchemaError
from earmark.schemas import load_schema
from earmark.sinks.export import ANCHOR_SETTINGS, read_index, read_plan
from earmark.types import MAX_SIDE_PX, MAX_SOURCE_SIDE_PX

NAN, INF = float("nan"), float("inf")
EXAMPLES = int(os.environ.get("EARMARK_HOSTILE_EXAMPLES", "60"))
"""Random edits per property test (60 keeps the file under 30 s; set more to search longer)."""


@pytest.fixture(scope="module")
def documents(events_mp4, tmp_path_factory) -> tuple[dict, dict]:
    """A valid index document and a valid plan document of the 12 s test video, as `earmark` writes them."""
    folder = tmp_path_factory.mktemp("documents")
    idx, plan = folder / "i.json", folder / "p.json"
    assert main(["index", str(events_mp4), "--out", str(idx), "-q"]) == 0
    assert main(["plan", str(idx), "--model", "vit-p16", "--budget", "2000", "--out", str(plan), "-q"]) == 0
    return json.loads(idx.read_text()), json.loads(plan.read_text())


@pytest.fixture
def no_decoding(monkeypatch):
    """Opening the video fails the test: documents are checked before any decoding starts."""

    def refuse(*args, **kwargs):
        raise AssertionError("the video was opened before the document was checked")

    monkeypatch.setattr(earmark.media.frames, "info", refuse)
    monkeypatch.setattr(earmark.media.frames, "open_container", refuse)
    monkeypatch.setattr(earmark.media.container, "open_container", refuse)


def put(doc: dict, path: str, value) -> None:
    """Set the field at ``path`` (``info.video.width``, ``frames.0.time_s``) to ``value``."""
    *parents, last = path.split(".")
    for key in parents:
        doc = doc[int(key)] if isinstance(doc, list) else doc[key]
    doc[int(last) if isinstance(doc, list) else last] = value


def edited(doc: dict, *changes: tuple[str, object]) -> str:
    doc = copy.deepcopy(doc)
    for path, value in changes:
        put(doc, path, value)
    return json.dumps(doc, allow_nan=True)


def run_plan(index_file: Path, out: Path) -> int:
    return main(["plan", str(index_file), "--model", "vit-p16", "--budget", "2000", "--out", str(out), "-q"])


def run_extract(video: Path, plan_file: Path, out: Path) -> int:
    return main(["extract", str(video), "--plan", str(plan_file), "--out", str(out), "-q"])


def assert_refused(rc: int, err: str, doc_file: Path, field: str, out: Path) -> None:
    lines = err.strip().splitlines()
    assert rc == 1, err
    assert len(lines) == 1, err
    assert lines[0].startswith(f"earmark: error: {doc_file}: "), lines[0]
    assert field in lines[0], lines[0]
    assert not out.exists()
    assert not list(out.parent.glob(f".{out.name}*")), "a temporary output was left behind"


def deep(levels: int) -> str:
    return "[" * levels + "]" * levels


# (what, changes to the index document or its raw text, text the one line must hold)
INDEX_CASES = [
    ("rotation not a number", [("info.video.rotation", "x")], 'info.video.rotation must be one of 0, 90, 180, 270, '
                                                              'got "x"'),
    ("rotation not a quarter turn", [("info.video.rotation", 45)], "info.video.rotation"),
    ("width 0", [("info.video.width", 0)], "info.video.width must be an integer in 1..65536, got 0"),
    ("width a float", [("info.video.width", 224.7)], "info.video.width must be an integer in 1..65536, got 224.7"),
    ("width a bool", [("info.video.width", True)], "info.video.width must be an integer in 1..65536, got true"),
    ("width too large", [("info.video.width", MAX_SOURCE_SIDE_PX + 1)], "info.video.width"),
    ("fps 0", [("info.video.fps_nominal", 0)], "info.video.fps_nominal must be a finite number > 0 or null"),
    ("anchor k not a number", [("anchor_config.k", "x")], 'anchor_config.k must be an integer >= 0 or null, got "x"'),
    ("anchor k above the windows", [("anchor_config.k", 40)], "anchor_config: k=40 is larger than the number of "
                                                              "windows (12)"),
    ("anchor mode unknown", [("anchor_config.mode", "psychic")], "anchor_config.mode must be one of"),
    ("anchor offset NaN", [("anchor_config.offset_s", NAN)], "anchor_config.offset_s must be a finite number, got nan"),
    ("scores all NaN", [("timeline.scores", [NAN] * 12)], "timeline.scores[0] must be a finite number"),
    ("score past float32", [("timeline.scores.3", 1e39)], "timeline.scores[3] must be a finite number"),
    ("confidence above 1", [("timeline.confidence.2", 1.5)], "timeline.confidence[2] must be a finite number in "
                                                             "[0, 1], got 1.5"),
    ("duration NaN", [("timeline.duration_s", NAN)], "timeline.duration_s must be a finite number > 0, got nan"),
    ("duration negative", [("timeline.duration_s", -30)], "timeline.duration_s must be a finite number > 0, got -30"),
    ("info duration infinite", [("info.duration_s", INF)], "info.duration_s must be a finite number > 0, got inf"),
    ("durations disagree", [("timeline.duration_s", 30.0)], "timeline.duration_s (30.0) differs from "
                                                            "info.duration_s (12.0)"),
    ("duration too long for the windows", [("timeline.duration_s", 30.0), ("info.duration_s", 30.0)],
     "timeline.scores has 12 windows, but timeline.duration_s 30.0 s at hop_s 1.0 s and window_s 1.0 s makes 30"),
    ("hop too small", [("timeline.hop_s", 0.001)], "timeline.hop_s"),
    ("window counts differ", [("timeline.coverage", [1.0] * 11)], "timeline.coverage has 11 values, "
                                                                  "timeline.scores has 12"),
    ("anchor past the end", [("anchors.0.end_s", 99.0)], "anchors[0].end_s must be in [0, 12.0]"),
    ("anchor off the windows", [("anchors.0.index", 40)], "anchors[0].index must be a window of the timeline "
                                                          "(0..11), got 40"),
    ("anchor source unknown", [("anchors.0.source", "psychic")], "anchors[0].source must be one of"),
    ("schema version a string", [("schema_version", "1")], 'schema_version must be the integer 1, got "1"'),
    ("schema version unknown", [("schema_version", 99)], "index schema_version 99 is not supported"),
    ("unknown field", [("info.video.colour", "red")], 'info.video: unknown field "colour"'),
    ("huge integer", [("info.size_bytes", 10**400)], "info.size_bytes must be an integer >= 1, got 1000000"),
    ("path with NUL", [("info.path", "a\0b")], "info.path must be a file path"),
    ("fingerprint not hex", [("info.fingerprint", "</script>")], "info.fingerprint must be a string matching"),
    ("lone surrogate", [("timeline.notes", ["\ud800"])], "timeline.notes[0]: text is not valid Unicode"),
    ("NaN in a free-form field", [("timeline.probe_config.z_ref", NAN)], "timeline.probe_config.z_ref must be a "
                                                                         "finite number, got nan"),
    ("nested deep in a free-form field", [("timeline.probe_config.z_ref", json.loads(deep(40)))],
     "timeline.probe_config.z_ref[0][0]"),
    ("nested deep, said how deep", [("timeline.probe_config.z_ref", json.loads(deep(40)))],
     "is nested more than 32 levels deep"),
]


@pytest.mark.parametrize("changes,message", [c[1:] for c in INDEX_CASES], ids=[c[0] for c in INDEX_CASES])
def test_a_bad_index_is_one_line_naming_the_file_and_field(documents, tmp_path, capsys, no_decoding, changes, message):
    doc_file, out = tmp_path / "i.json", tmp_path / "p.json"
    doc_file.write_text(edited(documents[0], *changes))
    rc = run_plan(doc_file, out)
    assert_refused(rc, capsys.readouterr().err, doc_file, message, out)


def test_a_missing_field_is_named(documents, tmp_path, capsys):
    doc = copy.deepcopy(documents[0])
    del doc["timeline"]["hop_s"]
    doc_file, out = tmp_path / "i.json", tmp_path / "p.json"
    doc_file.write_text(json.dumps(doc))
    assert_refused(run_plan(doc_file, out), capsys.readouterr().err, doc_file, "timeline: missing field(s) hop_s",
                   out)


RAW_CASES = [
    ("200k levels deep", deep(200_000), "not valid JSON (nested too deeply to read"),
    ("a key twice", '{"kind": "earmark.index", "kind": "earmark.index"}', 'field "kind" appears twice in one object'),
    ("an integer of 5000 digits", '{"kind": "earmark.index", "schema_version": ' + "9" * 5000 + "}",
     "not valid JSON (a number of more than"),
    ("not UTF-8", b'{"kind": "\xff"}', "not valid JSON (not UTF-8 text"),
    ("a list", "[1, 2]", "not an earmark index document (kind is none: the document is a list"),
]


@pytest.mark.parametrize("text,message", [c[1:] for c in RAW_CASES], ids=[c[0] for c in RAW_CASES])
def test_unreadable_json_is_one_line(tmp_path, capsys, no_decoding, text, message):
    doc_file, out = tmp_path / "i.json", tmp_path / "p.json"
    if isinstance(text, bytes):
        doc_file.write_bytes(text)
    else:
        doc_file.write_text(text)
    assert_refused(run_plan(doc_file, out), capsys.readouterr().err, doc_file, message, out)


def test_a_document_over_the_size_limit_is_refused_unread(documents, tmp_path, capsys, monkeypatch):
    assert earmark.sinks.export.MAX_DOCUMENT_BYTES == 256 * 2**20
    doc_file, out = tmp_path / "i.json", tmp_path / "p.json"
    doc_file.write_text(json.dumps(documents[0]))
    monkeypatch.setattr(earmark.sinks.export, "MAX_DOCUMENT_BYTES", doc_file.stat().st_size - 1)
    assert_refused(run_plan(doc_file, out), capsys.readouterr().err, doc_file, "larger than", out)


PLAN_CASES = [
    ("two frames at one time", [("frames.1.time_s", 0.75)], "frames[1].time_s (0.75) is the time of frames[0] to "
                                                            "the microsecond"),
    ("two frames within a microsecond", [("frames.1.time_s", 0.7500001)], "frames[1].time_s (0.7500001) is the time"),
    ("frames out of order", [("frames.1.time_s", 0.5)], "frames[1].time_s (0.5) is before frames[0].time_s (0.75)"),
    ("width a float", [("frames.0.width", 224.7)], "frames[0].width must be an integer in 1..16384, got 224.7"),
    ("width a bool", [("frames.0.width", True)], "frames[0].width must be an integer in 1..16384, got true"),
    ("width too large", [("frames.0.width", 20000)], "frames[0].width must be an integer in 1..16384, got 20000"),
    ("time past the video", [("frames.11.time_s", 1e9)], "frames[11].time_s must be in [0, 12.0]"),
    ("time negative", [("frames.0.time_s", -1)], "frames[0].time_s must be a finite number >= 0, got -1"),
    ("time NaN", [("frames.0.time_s", NAN)], "frames[0].time_s must be a finite number >= 0, got nan"),
    ("video duration NaN", [("video.duration_s", NAN)], "video.duration_s must be a finite number > 0, got nan"),
    ("video duration short", [("video.duration_s", 5.0)], "anchors[1].time_s must be in [0, 5.0]"),
    ("video duration short of a frame", [("video.duration_s", 11.0)], "frames[11].time_s must be in [0, 11.0]"),
    ("no frames", [("frames", [])], "frames must be a list of at least 1 item, got a list"),
    ("tokens a string", [("frames.0.tokens", "16")], 'frames[0].tokens must be an integer >= 0, got "16"'),
    ("tokens do not add up", [("total_tokens", 1)], "plan says total_tokens 1 but its frames add up to 192"),
    ("anchor position unknown", [("frames.1.anchor", 7)], "frames[1].anchor must be the position of one of the "
                                                          "plan's 2 anchors or null, got 7"),
    ("role unknown", [("frames.0.role", "</script>")], "frames[0].role must be one of"),
    ("fit unknown", [("fit", "zoom")], 'fit must be one of "pad", "crop", "stretch", got "zoom"'),
    ("strategy unknown", [("strategy", "psychic")], "strategy must be one of"),
    ("anchor settings of the wrong type", [("config.anchor_settings.k", "x")], "config.anchor_settings.k must be an "
                                                                               "integer >= 0 or null"),
    ("NaN in the config", [("config.ratio", NAN)], "config.ratio must be a finite number, got nan"),
    ("fingerprint not hex", [("video.fingerprint", "zz")], "video.fingerprint must be a string matching"),
    ("model a lone surrogate", [("model", "\udcff")], "model: text is not valid Unicode"),
    ("schema version unknown", [("schema_version", 99)], "plan schema_version 99 is not supported"),
    ("not a plan", [("kind", "earmark.index")], 'not an earmark plan document (kind is "earmark.index"'),
]


@pytest.mark.parametrize("changes,message", [c[1:] for c in PLAN_CASES], ids=[c[0] for c in PLAN_CASES])
def test_a_bad_plan_is_one_line_and_writes_no_frames(documents, events_mp4, tmp_path, capsys, no_decoding, changes,
                                                      message):
    doc_file, out = tmp_path / "p.json", tmp_path / "frames"
    doc_file.write_text(edited(documents[1], *changes))
    rc = run_extract(events_mp4, doc_file, out)
    assert_refused(rc, capsys.readouterr().err, doc_file, message, out)


def test_the_documents_as_written_read_back(documents, events_mp4, tmp_path):
    """The checks refuse nothing earmark writes; the fixed-spread strategy is in the plan schema."""
    index_file, plan_file = tmp_path / "i.json", tmp_path / "p.json"
    index_file.write_text(json.dumps(documents[0]))
    assert run_plan(index_file, plan_file) == 0
    assert read_plan(plan_file).to_dict() == documents[1]
    assert read_index(index_file).to_dict() == documents[0]
    assert main(["plan", str(index_file), "--model", "vit-p16", "--budget", "2000", "--strategy", "fixed-spread",
                 "--out", str(plan_file), "-q"]) == 0
    jsonschema.validate(json.loads(plan_file.read_text()), load_schema("plan", 1))
    read_plan(plan_file)
    assert set(load_schema("plan", 1)["properties"]["strategy"]["enum"]) == set(STRATEGIES)
    assert load_schema("plan", 1)["properties"]["fit"]["enum"] == list(FITS)
    assert set(ANCHOR_SETTINGS) == set(AnchorConfig.__dataclass_fields__)


# --- property: random edits never crash, never write on failure ------------------------------------------------

HOSTILE = st.one_of(
    st.none(), st.booleans(), st.integers(-(10**30), 10**30), st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([NAN, INF, -INF, 10**400, -1, 0, 1e308, -1e-9, 2**53, MAX_SIDE_PX + 1, 224.7, "1", "",
                     "</script><script>alert(1)</script>", "\ud800", "a\0b", "../../etc/passwd"]),
    st.text(max_size=12),
    st.recursive(st.integers(-3, 3) | st.text(max_size=3), lambda kids: st.lists(kids, max_size=3), max_leaves=6),
    st.dictionaries(st.text(max_size=6), st.integers(-3, 3) | st.floats(), max_size=3),
)


def field_paths(node, prefix=()) -> list[tuple]:
    """Every key and index of a document, as paths."""
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    out = []
    for key, value in items:
        out.append((*prefix, key))
        out.extend(field_paths(value, (*prefix, key)))
    return out


def mutate(doc: dict, data) -> dict:
    doc = copy.deepcopy(doc)
    for _ in range(data.draw(st.integers(1, 3), label="edits")):
        paths = field_paths(doc)
        if not paths:
            break
        path = data.draw(st.sampled_from(paths), label="field")
        parent = doc
        for key in path[:-1]:
            parent = parent[key]
        key, old = path[-1], parent[path[-1]]
        how = data.draw(st.sampled_from(["delete", "replace", "negate", "scale", "nudge"]), label="how")
        if how == "delete":
            del parent[key]
        elif how == "replace" or not isinstance(old, (int, float)) or isinstance(old, bool):
            parent[key] = data.draw(HOSTILE, label="value")
        elif how == "negate":
            parent[key] = -old
        elif how == "scale":
            factor = data.draw(st.sampled_from([1e6, 2, 0.5, 1e-6, 10**20]), label="factor")
            try:
                parent[key] = old * factor
            except OverflowError:  # an earlier edit left an int beyond any float (10**400): keep it an int
                parent[key] = old * 2
        else:  # another plausible number of the same kind: reaches the planner and the decoder more often
            parent[key] = data.draw(st.integers(-2, 20_000) if isinstance(old, int) else st.floats(-100, 100),
                                    label="number")
    return doc


def schema_problems(doc, kind: str) -> list[str]:
    """What the shipped JSON Schema finds wrong, leaving out absent fields (read with their defaults)."""
    validator = jsonschema.Draft202012Validator(load_schema(kind, 1))
    return [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(doc) if e.validator != "required"]


def check_one_run(doc: dict, kind: str, video: Path) -> None:
    beside_video = sorted(video.parent.iterdir())
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        doc_file, out = root / f"{kind}.json", root / "out" / ("p.json" if kind == "index" else "frames")
        out.parent.mkdir()
        doc_file.write_text(json.dumps(doc, allow_nan=True))  # ASCII: lone surrogates are written as \\ud800
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            rc = run_plan(doc_file, out) if kind == "index" else run_extract(video, doc_file, out)
        assert rc in (0, 1), err.getvalue()
        event(f"exit {rc}")
        assert sorted(p.name for p in root.iterdir()) == sorted([doc_file.name, "out"])
        if rc == 1:
            lines = err.getvalue().strip().splitlines()
            assert len(lines) == 1 and lines[0].startswith("earmark: error: "), err.getvalue()
            assert list(out.parent.iterdir()) == []
        else:
            assert [p.name for p in out.parent.iterdir()] == [out.name]
        try:
            (read_index if kind == "index" else read_plan)(doc_file)
        except SchemaError as e:
            assert str(e).startswith(f"{doc_file}: ")
        else:  # what earmark reads, its schema allows
            assert schema_problems(doc, kind) == []
    assert sorted(video.parent.iterdir()) == beside_video


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                        HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_edited_indexes_plan_or_fail_in_one_line(documents, events_mp4, monkeypatch, tmp_path, data):
    monkeypatch.chdir(tmp_path)  # a relative path in a hostile document lands here: nothing may
    check_one_run(mutate(documents[0], data), "index", events_mp4)
    assert list(tmp_path.iterdir()) == []


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                        HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_edited_plans_extract_or_fail_in_one_line(documents, events_mp4, monkeypatch, tmp_path, data):
    monkeypatch.chdir(tmp_path)
    check_one_run(mutate(documents[1], data), "plan", events_mp4)
    assert list(tmp_path.iterdir()) == []


TRUTH_CASES = [
    ("a list per event", '{"events": [[3, 4]]}', None),
    ("infinite end", '{"events": [[3, Infinity]]}', "event 0: times must be finite seconds >= 0, got [3.0, inf)"),
    ("events a string", '{"events": "abc"}', 'expected {"events": [{"start_s": .., "end_s": ..}]}'),
    ("a string time", '[[1, 2], [3, "x"]]', 'event 1 is [3, "x"]'),
    ("negative start", '[[-1, 2]]', "event 0: times must be finite seconds >= 0, got [-1.0, 2.0)"),
    ("a label object", '{"events": [{"start_s": 1, "end_s": 2, "label": {"a": 1}}]}', None),
]


@pytest.mark.parametrize("text,message", [c[1:] for c in TRUTH_CASES], ids=[c[0] for c in TRUTH_CASES])
def test_a_bad_truth_file_is_one_line_before_decoding(documents, tmp_path, capsys, monkeypatch, text, message):
    """`report --truth` crashed with exit 70 (AttributeError) on a list per event, Infinity and a string."""
    truth, idx, out = tmp_path / "truth.json", tmp_path / "i.json", tmp_path / "r.html"
    truth.write_text(text)
    idx.write_text(json.dumps(documents[0]))
    code = main(["report", str(idx), "--truth", str(truth), "--out", str(out)])
    err = capsys.readouterr().err
    if message is None:
        assert code == 0 and out.exists(), err
    else:
        assert code == 1 and f"{truth}: " in err and message in err and err.count("\n") == 1, err
        assert not out.exists()


JSON_VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=True),
              st.text(max_size=8), st.sampled_from(["start_s", "end_s", "label", "events", "</script>"])),
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(st.sampled_from(["events", "start_s", "end_s", "label", "x"]), inner,
                                            max_size=4)),
    max_leaves=12)


@settings(max_examples=max(20, EXAMPLES // 2), deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(truth=st.one_of(JSON_VALUES, st.lists(st.tuples(st.floats(-5, 20), st.floats(-5, 20)), max_size=4)))
def test_random_truth_files_report_or_fail_in_one_line(documents, tmp_path_factory, truth):
    """Label documents are input too: any JSON as `report --truth` is a page or one line, exit 1, nothing written."""
    root = tmp_path_factory.mktemp("truth")
    idx, truth_file, out = root / "i.json", root / "t.json", root / "r.html"
    idx.write_text(json.dumps(documents[0]))
    truth_file.write_text(json.dumps(truth, allow_nan=True))
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        rc = main(["report", str(idx), "--truth", str(truth_file), "--out", str(out)])
    assert rc in (0, 1), err.getvalue()
    if rc == 1:
        lines = err.getvalue().strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"earmark: error: {truth_file}: "), err.getvalue()
        assert not out.exists()
    else:
        assert out.exists()
