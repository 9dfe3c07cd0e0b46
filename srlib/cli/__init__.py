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
from srlib.errors import SrlibError, printable

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


def _glued(argv: list[str]) -> list[str]:
    """``--option -inf`` as ``--option=-inf``: argparse takes ``-inf`` (and ``-nan``) for an option, not a value.

    The value then reaches the option's own check ("must be a finite number").
    """
    out = []
    for token in argv:
        if out and out[-1].startswith("--") and "=" not in out[-1] \
                and token.lower() in ("-inf", "-infinity", "-nan"):
            out[-1] = f"{out[-1]}={token}"
        else:
            out.append(token)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(_glued(sys.argv[1:] if argv is None else list(argv)))
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except SrlibError as err:
        print(f"srlib: error: {printable(str(err))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("srlib: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
