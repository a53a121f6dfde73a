"""``python -m sparsecore.analyze`` (also the ``sparsecore.analyze`` command) — see :mod:`sparsecore.cli.analyze`."""

from sparsecore.cli.analyze import main

if __name__ == "__main__":
    main()
