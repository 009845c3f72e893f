"""Saved documents: exact round-trips, the versioned JSON Schema, byte-identical determinism."""

from __future__ import annotations

import json

import jsonschema
import numpy as np
import pytest

import earmark
from earmark.anchors import AnchorConfig
from earmark.errors import SchemaError
from earmark.schemas import load_schema
from earmark.sinks.export import index_json_text, read_index, write_json
from earmark.types import Anchor, IndexResult, Timeline, VideoInfo


@pytest.fixture(scope="module")
def result(events_mp4) -> IndexResult:
    tl = earmark.index(events_mp4, probe="flux")
    cfg = AnchorConfig(k=3)
    return IndexResult(earmark.info(events_mp4), tl, tuple(earmark.anchors(tl, config=cfg)), cfg.to_dict())


def test_round_trips_are_exact(result):
    assert Timeline.from_dict(json.loads(json.dumps(result.timeline.to_dict()))) == result.timeline
    assert VideoInfo.from_dict(json.loads(json.dumps(result.info.to_dict()))) == result.info
    for a in result.anchors:
        assert Anchor.from_dict(a.to_dict()) == a
    again = IndexResult.from_dict(json.loads(index_json_text(result)))
    assert again == result
    np.testing.assert_array_equal(again.timeline.scores, result.timeline.scores)
    assert again.timeline.scores.dtype == np.float32


def test_document_validates_against_the_json_schema(result):
    schema = load_schema("index", 1)
    jsonschema.Draft202012Validator.check_schema(schema)
    doc = json.loads(index_json_text(result))
    jsonschema.validate(doc, schema)
    doc["timeline"]["confidence"][0] = 1.5
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(doc, schema)


def test_same_input_and_config_give_identical_bytes(events_mp4, tmp_path, result):
    for probe in ("energy", "flux", "onset"):
        texts = set()
        for _ in range(2):
            tl = earmark.index(events_mp4, probe=probe)
            r = IndexResult(earmark.info(events_mp4), tl, tuple(earmark.anchors(tl, k=3)), {"k": 3})
            texts.add(index_json_text(r))
        assert len(texts) == 1
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    write_json(result, a)
    write_json(read_index(a), b)
    assert a.read_bytes() == b.read_bytes()


def test_bad_documents_are_rejected_clearly(tmp_path, result):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(SchemaError, match=r"bad.json: not valid JSON"):
        read_index(bad)
    doc = result.to_dict()
    doc["schema_version"] = 99
    bad.write_text(json.dumps(doc))
    with pytest.raises(SchemaError, match="schema_version 99 is not supported"):
        read_index(bad)
    bad.write_text(json.dumps({"kind": "earmark.plan"}))
    with pytest.raises(SchemaError, match="not an earmark index document"):
        read_index(bad)
    with pytest.raises(SchemaError, match="anchor source 'psychic'"):
        Anchor(0, 0.5, 0.0, 1.0, 1.0, 1.0, "psychic")
    with pytest.raises(SchemaError, match="region \\[1.0, 1.0\\) is empty"):
        Anchor(0, 1.0, 1.0, 1.0, 1.0, 1.0)
