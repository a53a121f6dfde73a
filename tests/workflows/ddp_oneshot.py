"""Run by torchrun in tests: ``oneshot(**json)`` through the Python API (every rank calls it)."""

import json
import sys

from sparsecore.workflows import oneshot

if __name__ == "__main__":
    oneshot(**json.loads(sys.argv[1]))
