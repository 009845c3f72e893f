"""Sinks: where earmark's values go: index, plan and results documents (CSV, JSON, Parquet), VLM messages and
prompts, highlight exports (EDL, CSV) and clips."""
