"""The core install: `import earmark` and the CLI load no heavy package, and every command that needs no extra runs
with torch & co. unimportable (as on `pip install -e .`); commands that need an extra name it in one line."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("torch", "transformers", "matplotlib", "skimage", "onnxruntime", "silero_vad", "scipy", "pyarrow", "jinja2")
EXTRAS_ONLY = ("torch", "transformers", "matplotlib", "skimage", "onnxruntime", "silero_vad")
# A finder first on sys.meta_path that refuses the extras' packages: as on a core install, `import torch` raises
# ModuleNotFoundError (sys.modules["torch"] = None would not do: scipy looks torch up in sys.modules).
BLOCK = ("import sys\n"
         "class _Core:\n"
         "    def find_spec(self, name, path=None, target=None):\n"
         f"        if name.split('.')[0] in {EXTRAS_ONLY!r}:\n"
         "            raise ModuleNotFoundError(f'No module named {name!r}', name=name)\n"
         "sys.meta_path.insert(0, _Core())\n")


def _py(code: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=300)


def _earmark_core(*args: str) -> subprocess.CompletedProcess:
    return _py(BLOCK + "from earmark.cli import main; sys.exit(main(sys.argv[1:]))", *args)


def test_importing_earmark_and_its_cli_loads_no_heavy_package():
    r = _py(f"import sys, json, earmark, earmark.cli; print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == []


def test_help_and_demo_run_without_the_extras(tmp_path):
    r = _earmark_core("--help")
    assert r.returncode == 0, r.stderr
    for name in ("demo", "eval", "extract", "index", "info", "plan", "prompt", "report"):
        assert f"  {name}" in r.stdout
    out = tmp_path / "demo"
    r = _earmark_core("demo", "--out", str(out), "-q")
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in out.glob("index.*.json")) == ["index.energy.json", "index.flux.json",
                                                               "index.onset.json"]
    assert (out / "report.html").stat().st_size > 10_000
    assert len(list((out / "frames.qwen2.5-vl").glob("*.png"))) == 30


def test_commands_that_need_an_extra_name_it_in_one_line(tmp_path):
    for args, what in ((["eval", "synth", "--quick", "--out", str(tmp_path / "e")], "earmark eval"),
                       (["train-transfer", str(tmp_path), "--out", str(tmp_path / "s.pt")], "earmark train-transfer")):
        r = _earmark_core(*args)
        assert r.returncode == 1
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1, r.stderr
        assert lines[0].startswith(f"earmark: error: {what} needs the [eval] extra (torch")
        assert lines[0].endswith('pip install -e ".[eval]"')
    assert not (tmp_path / "e").exists()


def test_a_module_an_extra_brings_becomes_one_line_naming_the_extra():
    code = BLOCK + ("import click; from earmark.cli import main, commands\n"
                    "@commands.cli.command('needs-torch')\n"
                    "def needs_torch():\n    import torch  # noqa: F401\n"
                    "sys.exit(main(['needs-torch']))")
    r = _py(code)
    assert r.returncode == 1
    assert r.stderr.strip() == ('earmark: error: this needs the torch package, from the [eval] extra: '
                                'pip install -e ".[eval]"')
