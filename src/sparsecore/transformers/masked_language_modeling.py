"""``python -m sparsecore.transformers.masked_language_modeling``: :mod:`sparsecore.cli.masked_language_modeling`."""

from sparsecore.cli.masked_language_modeling import main

if __name__ == "__main__":
    main()
