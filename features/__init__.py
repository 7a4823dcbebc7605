"""Data pipelines (polars, numpy): readers into the internal dataset format. Never imports torch."""
