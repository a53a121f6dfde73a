"""What the fuzz tests share: the hypothesis budget, the outcome rule and the count of inputs tried.

The rule every fuzz target checks: an input either succeeds or raises one :class:`SparsecoreError` whose
message is one line — any other exception is a bug, and so is an input that runs past ``SECONDS`` (a
``SIGALRM`` interrupts it; ``faulthandler`` ends the process with a traceback if C code never returns) or that
allocates more than ``MEMORY_GIB`` beyond what the process held (a soft ``RLIMIT_AS``, restored afterwards).

Budget, from the environment, so the long run (``benchmarks/fuzz_long.py``) reuses these very tests:
``SPARSECORE_FUZZ_EXAMPLES`` (inputs per fast target; slow targets take a third), ``SPARSECORE_FUZZ_SECONDS``
(the per-input bound; hypothesis' deadline is half of it), ``SPARSECORE_FUZZ_DATABASE=none`` (no example database:
every run draws fresh inputs), ``SPARSECORE_FUZZ_SHRINK=0`` (failures reported unshrunk).
"""

from __future__ import annotations

import contextlib
import faulthandler
import os
import resource
import signal
from collections import Counter
from datetime import timedelta

from hypothesis import HealthCheck, Phase, settings

from sparsecore.errors import SparsecoreError

EXAMPLES = int(os.environ.get("SPARSECORE_FUZZ_EXAMPLES", "50"))
SECONDS = float(os.environ.get("SPARSECORE_FUZZ_SECONDS", "20"))
MEMORY_GIB = 4  # a tiny model and files of a few hundred KB never need more

_COMMON = {"deadline": timedelta(seconds=SECONDS / 2), "print_blob": True,
           "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much,
                                     HealthCheck.large_base_example]}
if os.environ.get("SPARSECORE_FUZZ_DATABASE") == "none":
    _COMMON["database"] = None
if os.environ.get("SPARSECORE_FUZZ_SHRINK") == "0":  # a failure is reported as found (shrinking may take minutes)
    _COMMON["phases"] = [Phase.explicit, Phase.generate]
settings.register_profile("sparsecore-fuzz", max_examples=EXAMPLES, **_COMMON)
settings.register_profile("sparsecore-fuzz-slow", max_examples=max(1, EXAMPLES // 3), **_COMMON)
FAST = settings.get_profile("sparsecore-fuzz")
SLOW = settings.get_profile("sparsecore-fuzz-slow")

TRIED: Counter = Counter()  # target → inputs run (shrinking included); read by the long run
REFUSED: Counter = Counter()  # target → inputs that ended in a SparsecoreError


class Hang(BaseException):
    """Raised by the alarm inside the code under test (a BaseException, so no ``except Exception`` eats it)."""


def _address_space() -> int:
    with open("/proc/self/status") as f:
        kb = next(int(line.split()[1]) for line in f if line.startswith("VmSize:"))
    return kb * 1024


@contextlib.contextmanager
def bounded(what: str, seconds: float = SECONDS):
    """Run the block under a time bound (SIGALRM, then a faulthandler exit at 3×) and a memory bound."""
    def on_alarm(signum, frame):
        raise Hang()

    old_handler = signal.signal(signal.SIGALRM, on_alarm)
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = _address_space() + (MEMORY_GIB << 30)
    if hard == resource.RLIM_INFINITY or limit < hard:
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    faulthandler.dump_traceback_later(3 * seconds, exit=True)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    except Hang:
        raise AssertionError(f"{what}: no outcome within {seconds:g} s (a hang)") from None
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        faulthandler.cancel_dump_traceback_later()
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
        signal.signal(signal.SIGALRM, old_handler)


def outcome(target: str, fn, *args, **kwargs):
    """``fn(*args, **kwargs)`` under :func:`bounded`: its result, or the :class:`SparsecoreError` it raised (checked
    to be one line). Any other exception propagates: that is the bug hypothesis reports and shrinks."""
    TRIED[target] += 1
    with bounded(target):
        try:
            return fn(*args, **kwargs)
        except SparsecoreError as exc:
            REFUSED[target] += 1
            check_one_line(exc)
            return exc


def check_one_line(exc: SparsecoreError) -> None:
    """A user error is one printable line that says what is wrong."""
    text = str(exc)
    assert exc.what and "\n" not in text and "\r" not in text, f"not a one-line error: {text!r}"
