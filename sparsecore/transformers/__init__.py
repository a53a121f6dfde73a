"""SparseML-compatible entry points: ``python -m sparsecore.transformers.text_classification``."""
