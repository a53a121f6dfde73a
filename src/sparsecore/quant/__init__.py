"""Quantization: pure maths (primitives), observers, fake-quant points and their QAT wiring (torch only)."""
