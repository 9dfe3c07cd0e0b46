"""The ``srlib`` command.

Each sub-command lives beside the code it drives; a module listed in
``COMMANDS`` exposes ``register(subparsers)``, which adds its parser and sets
``func`` (called with the parsed arguments; returns an exit status).
"""

from __future__ import annotations

import argparse
import importlib
import sys

from srlib import __version__
from srlib.errors import SrlibError

# Modules that contribute sub-commands, in the order --help lists them.
COMMANDS: list[str] = ["srlib.cli.data", "srlib.cli.train", "srlib.cli.evaluate", "srlib.cli.predict", "srlib.cli.reproduce"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="srlib",
        description=(
            "Anomaly detection by score-based perturbation resilience "
            "(Shin et al., ICCV 2023): data, training, evaluation and the "
            "reproduction of the paper's tables."
        ),
    )
    parser.add_argument("--version", action="version", version=f"srlib {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except SrlibError as err:
        print(f"srlib: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("srlib: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
