"""Where probe weights come from, and the checks every model probe makes on them: a weights file that exists,
a torch checkpoint read with ``weights_only=True`` and of the expected kind, an onnxruntime session, the Silero VAD
weights the silero-vad package ships. One module for the taggers, the learned probes and the transfer probe."""

from __future__ import annotations

import contextlib
import importlib.util
import json
from collections.abc import Collection, Iterator
from pathlib import Path

from ..errors import ConfigError


def weights_file(path: str | None, probe: str, how: str) -> Path:
    if not path:
        raise ConfigError(f"probe {probe!r} needs weights: {how}")
    p = Path(path)
    if not p.exists():
        raise ConfigError(f"{p}: weights file for probe {probe!r} does not exist")
    if p.is_dir():
        raise ConfigError(f"{p}: probe {probe!r} expects a weights file, got a folder")
    return p


def transformers_folder(path: str | Path, accepted: Collection[str], what: str, *, flag: str | None = None,
                        error: type[Exception] = ConfigError) -> tuple[Path, str]:
    """A local transformers checkpoint folder (``save_pretrained`` layout) whose ``config.json`` names one of the
    ``accepted`` model types: (folder, model type). Checked before transformers is imported, so a wrong folder is
    one line naming it (``flag``, e.g. ``--text-image-model``, is put before the path). The caller loads it with
    transformers' own classes and ``local_files_only``: never a download, never the folder's code."""
    p = Path(path)
    label = f"{flag} {p}" if flag else str(p)
    if not p.exists():
        raise error(f"{label}: not found (give the local folder of {what})")
    cfg = p / "config.json"
    if not p.is_dir() or not cfg.is_file():
        raise error(f"{label}: not a model folder (no config.json); give the local folder of {what} "
                    f"(save_pretrained layout)")
    try:
        doc = json.loads(cfg.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise error(f"{cfg}: not valid JSON ({e})") from None
    kind = doc.get("model_type") if isinstance(doc, dict) else None
    if kind not in accepted:
        raise error(f"{label}: a {kind!r} checkpoint; {what} is one of {', '.join(accepted)} (loaded by "
                    f"transformers' own classes, never the folder's code)")
    return p, kind


@contextlib.contextmanager
def quiet_loading() -> Iterator[None]:
    """transformers quiet inside the block (its progress bars, "Loading weights", off through its own switch; its
    warnings at error level), and everything back as it was after it: transformers' bars and verbosity and
    huggingface_hub's bars, which transformers' switch also flips (the hub's per-group settings included), so the
    caller's choice holds outside earmark's loading. Every model earmark loads from a folder loads inside it."""
    import importlib

    from transformers.utils import logging as hf_logging

    hub_tqdm = importlib.import_module("huggingface_hub.utils.tqdm")  # the module (the package exports the class)
    was_on, hub_states = hf_logging.is_progress_bar_enabled(), dict(hub_tqdm.progress_bar_states)
    level = hf_logging.get_verbosity()
    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)
        (hf_logging.enable_progress_bar if was_on else hf_logging.disable_progress_bar)()
        hub_tqdm.progress_bar_states.clear()
        hub_tqdm.progress_bar_states.update(hub_states)


def silero_weights() -> str | None:
    """The Silero VAD ONNX weights the silero-vad package ships (MIT), or None when it is not installed."""
    spec = importlib.util.find_spec("silero_vad")
    if spec is None or not spec.submodule_search_locations:
        return None
    p = Path(next(iter(spec.submodule_search_locations))) / "data" / "silero_vad.onnx"
    return str(p) if p.exists() else None


def onnx_session(path: str):
    """An onnxruntime CPU session on one thread (probes run inside process-parallel work); a clear error naming the
    file when onnxruntime cannot load it."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    try:
        return ort.InferenceSession(path, sess_options=opts, providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime raises its own exception types for unreadable models
        raise ConfigError(f"{path}: not an ONNX model onnxruntime can load ({str(e).splitlines()[0][:120]})") from None


def read_checkpoint(path: str | Path, probe: str, fmt: str, how: str) -> dict:
    """An earmark probe checkpoint (a dict with ``format == fmt``), read with ``torch.load(weights_only=True)``;
    clear errors naming the file for a missing file, a non-torch file, or a checkpoint of another kind."""
    import pickle

    import torch

    p = weights_file(str(path), probe, f"--probe-weights PATH (make one with `{how}`)")
    try:
        ck = torch.load(p, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError) as e:
        raise ConfigError(f"{p}: not a torch checkpoint the {probe} probe can read "
                          f"({str(e).splitlines()[0][:100]})") from None
    if not isinstance(ck, dict) or ck.get("format") != fmt:
        what = ck.get("format") if isinstance(ck, dict) and ck.get("format") else type(ck).__name__
        raise ConfigError(f"{p}: holds {what!r}, expected an earmark {probe} probe (format {fmt!r}, written by "
                          f"`{how}`)")
    return ck
