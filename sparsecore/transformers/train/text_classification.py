"""``python -m sparsecore.transformers.train.text_classification``: SparseML's alias of the text-classification job."""

from sparsecore.cli.text_classification import main

if __name__ == "__main__":
    main()
