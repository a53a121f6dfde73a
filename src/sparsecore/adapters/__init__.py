"""The only part of sparsecore that imports Hugging Face ``transformers``."""
