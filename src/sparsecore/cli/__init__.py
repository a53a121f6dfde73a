"""Command-line front-ends, installed as ``sparsecore.cli`` (argument parsing → library calls)."""
