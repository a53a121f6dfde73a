"""Kernel calls checked once and bound to their arrays: what a forward pass repeats on the same buffers.

A wrapper such as :func:`~.layer_norm.add_layer_norm_t` checks its arguments, works out the kernel's parameters and
then calls the compiled kernel. Its ``*_call`` twin does the first two and returns a :class:`Bound`: calling it runs
the kernel on the arrays' contents at that moment and returns the result array, without the checks. A caller that
runs the same stage on the same buffers again and again (the engine, once per token layout) keeps the bound call.
Only shapes, dtypes, layouts and parameters are fixed at binding; the data may change between calls, never the
arrays themselves.
"""

from __future__ import annotations

from collections.abc import Callable


class Bound:
    """``kernel(*args)``, returning ``result``."""

    __slots__ = ("args", "kernel", "result")

    def __init__(self, kernel: Callable, result, args: tuple) -> None:
        self.kernel, self.result, self.args = kernel, result, args

    def __call__(self):
        self.kernel(*self.args)
        return self.result


def bound(kernel: Callable, result, *args) -> Bound:
    """``kernel(*args)`` returning ``result``, as a :class:`Bound`."""
    return Bound(kernel, result, args)


def chain(*calls: Callable) -> Callable:
    """The calls one after another; returns the last one's value."""
    *first, last = calls

    def run():
        for call in first:
            call()
        return last()

    return run
