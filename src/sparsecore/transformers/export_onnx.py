"""``python -m sparsecore.transformers.export_onnx`` — see :mod:`sparsecore.cli.export_onnx`."""

from sparsecore.cli.export_onnx import main

if __name__ == "__main__":
    main()
