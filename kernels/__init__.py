"""Numba kernels, installed as ``sparsecore.kernels`` (selection and sparse matmul arrive here)."""
