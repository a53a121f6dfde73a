"""``python -m sparsecore.server`` — see :mod:`sparsecore.server.cli`."""

from sparsecore.server.cli import main

if __name__ == "__main__":
    main()
