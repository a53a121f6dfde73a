"""Numba kernels, installed as ``sparsecore.kernels``. Public wrappers validate, private ``@njit`` kernels compute."""

from sparsecore.kernels.select import lowest_k_mask, lowest_k_masks

__all__ = ["lowest_k_mask", "lowest_k_masks"]
