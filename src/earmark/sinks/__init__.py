"""Sinks: where earmark's values go (index files now; VLM messages, features, reports later)."""
