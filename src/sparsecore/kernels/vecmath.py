"""Vectorisable fp32 ``erf``, ``exp`` and ``GELU`` (its erf form) for Numba kernels.

``math.erf`` / ``math.exp`` compile to scalar libm calls, so a loop using them runs one element at a
time (this llvmlite has no SVML). These are plain arithmetic (clamp, polynomial, one division or one
exponent-bit shift), inlined into the caller, so LLVM turns the caller's loop into SIMD code (e.g. the
sparse kernels' fused GELU epilogue). Accuracy is checked in tests/kernels/test_vecmath.py.
Callers must compile with ``error_model="numpy"`` (see ``_config.NJIT_FMA``), or the division's
zero check keeps the loop scalar.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from sparsecore.kernels._config import NJIT_FMA

# erf(x) ≈ x·P(x²)/Q(x²) on x clamped to [-4, 4] (|erf| rounds to 1 in fp32 beyond): the rational
# approximation Eigen and XLA use for fp32. Max |error| vs math.erf: 4.5e-7.
_P13, _P11, _P9, _P7 = -2.72614225801306e-10, 2.77068142495902e-08, -2.10102402082508e-06, -5.69250639462346e-05
_P5, _P3, _P1 = -7.34990630326855e-04, -2.95459980854025e-03, -1.60960333262415e-02
_Q8, _Q6, _Q4 = -1.45660718464996e-05, -2.13374055278905e-04, -1.68282697438203e-03
_Q2, _Q0 = -7.37332916720468e-03, -1.42647390514189e-02

# GELU(x) = h + h·erf(z), h = x/2, z = x/√2 (one FMA), with its own erf: z·P(u)/Q(u), u = z², degrees 5/4 in u
# (Q(0) = 1), on z clamped to ±_GELU_CLAMP — a weighted least-squares fit to erf(z)/z on [0, 3.8] made to reach 1
# at the clamp: there the fp32 value is exactly 1, so GELU(x) = x for x ≥ 3.8·√2 and 0 for x ≤ −3.8·√2 without a
# clamp of erf. Max |error| of this erf (fp32, vs math.erf): 5.7e-7; of GELU on [−12, 12]: 1.5e-6.
_GP = (1.1283781395680599, 0.3943930052282104, 0.07632159257902259, 0.011572882433714005, 0.0002957690510387509,
       -1.6845120545116998e-06)  # P's coefficients of u⁰ … u⁵
_GQ = (1.0, 0.6828367159684103, 0.19532982410443742, 0.030748015944936397, 0.0027483362692049002)  # Q: u⁰ … u⁴
_GELU_CLAMP = 3.8
_SQRT_HALF = 0.7071067811865476

# exp(x) = 2ⁿ·e^r with n = round(x/ln2), r = x − n·ln2 in [−ln2/2, ln2/2] (ln2 split in two constants so
# n·ln2 is exact), e^r by the Cephes expf polynomial, 2ⁿ by writing n + 127 into the exponent bits.
# Max relative error 8e-8 on [−87, 0]; exactly 0 below −87.3 (where fp32 exp leaves the normal range).
_LOG2E, _LN2_HI, _LN2_LO = 1.4426950408889634, 0.693359375, -2.12194440e-4
_E6, _E5, _E4 = 1.9875691500e-4, 1.3981999507e-3, 8.3334519073e-3
_E3, _E2, _E1 = 4.1665795894e-2, 1.6666665459e-1, 5.0000001201e-1
_EXP_MIN = -87.33654  # ln(2⁻¹²⁶)


@nb.njit(inline="always", **NJIT_FMA)
def erf32(x):
    f = np.float32
    x = min(max(x, f(-4.0)), f(4.0))
    x2 = x * x
    p = ((((((f(_P13) * x2 + f(_P11)) * x2 + f(_P9)) * x2 + f(_P7)) * x2 + f(_P5)) * x2 + f(_P3)) * x2 + f(_P1))
    q = (((f(_Q8) * x2 + f(_Q6)) * x2 + f(_Q4)) * x2 + f(_Q2)) * x2 + f(_Q0)
    return min(max(x * p / q, f(-1.0)), f(1.0))  # the rational form overshoots 1 by an ulp near |x| = 4


@nb.njit(inline="always", **NJIT_FMA)
def gelu32(x):
    """``x·Φ(x) = x/2·(1 + erf(x/√2))`` in fp32 (the operations :func:`~.epilogue.emit_gelus` runs on vectors)."""
    f = np.float32
    h = f(0.5) * x
    z = min(max(x * f(_SQRT_HALF), f(-_GELU_CLAMP)), f(_GELU_CLAMP))
    u = z * z
    p = ((((f(_GP[5]) * u + f(_GP[4])) * u + f(_GP[3])) * u + f(_GP[2])) * u + f(_GP[1])) * u + f(_GP[0])
    q = (((f(_GQ[4]) * u + f(_GQ[3])) * u + f(_GQ[2])) * u + f(_GQ[1])) * u + f(_GQ[0])
    return h * (z * p / q) + h


@nb.njit(inline="always", **NJIT_FMA)
def exp32(x):
    """e^x for fp32 x ≤ 88 (softmax feeds x ≤ 0); 0 below −87.3."""
    f = np.float32
    y = max(x, f(_EXP_MIN))
    n = np.floor(y * f(_LOG2E) + f(0.5))
    r = (y - n * f(_LN2_HI)) - n * f(_LN2_LO)
    p = ((((f(_E6) * r + f(_E5)) * r + f(_E4)) * r + f(_E3)) * r + f(_E2)) * r + f(_E1)
    p = p * r * r + r + f(1.0)
    scale = np.int32((np.int32(n) + np.int32(127)) << 23).view(np.float32)
    return p * scale if x >= f(_EXP_MIN) else f(0.0)
