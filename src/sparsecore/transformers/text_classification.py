"""``python -m sparsecore.transformers.text_classification`` — see :mod:`sparsecore.cli.text_classification`."""

from sparsecore.cli.text_classification import main

if __name__ == "__main__":
    main()
