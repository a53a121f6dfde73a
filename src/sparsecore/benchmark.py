"""``python -m sparsecore.benchmark`` (also the ``sparsecore.benchmark`` command): :mod:`sparsecore.cli.benchmark`."""

from sparsecore.cli.benchmark import main

if __name__ == "__main__":
    main()
