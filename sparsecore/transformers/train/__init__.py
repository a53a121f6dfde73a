"""SparseML's ``sparseml.transformers.train.*`` entry-point names."""
