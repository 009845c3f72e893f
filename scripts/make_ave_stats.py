"""Rebuild src/earmark/eval/ave_label_stats.json from AVE's label files (labels only; no media).

    python scripts/make_ave_stats.py ../shared/data/ave
"""

import sys
from pathlib import Path

from earmark._io import write_json_atomic
from earmark.eval.datasets import SPLIT_FILES, read_rows
from earmark.eval.synthave import label_stats_from_rows

root = Path(sys.argv[1])
rows = {split: read_rows(root / fname) for split, fname in SPLIT_FILES.items()}
doc = {"source": "AVE (Tian et al., ECCV 2018) official split files: counts of (category, start, end) per split",
       "splits": label_stats_from_rows(rows)}
out = Path(__file__).resolve().parents[1] / "src/earmark/eval/ave_label_stats.json"
write_json_atomic(out, doc)
print(out, {k: sum(r[3] for r in v) for k, v in doc["splits"].items()})
