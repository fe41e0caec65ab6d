"""The ``uqbench`` command: ``list``, ``run <baseline> [--flags]``, ``demo``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import uqbench

USAGE = """usage: uqbench <command> [...]

commands:
  list [datasets|baselines|metrics]   what is available, one line each
  run <baseline> [--flags]            run a baseline, e.g.
                                      uqbench run uci/ensemble --dataset=boston --split=all
                                      (uqbench run <baseline> --help lists its flags)
  demo [--output_dir=DIR]             compare the baselines on built-in data (under a minute)
  --version                           print the version
"""


def _print_list(what: str) -> None:
    from uqbench import baselines, data, metrics

    if what in ("all", "datasets"):
        print("data sets:")
        for name, kind, description in data.describe():
            print(f"  {name:<18} {kind:<15} {description}")
    if what in ("all", "baselines"):
        print("baselines (uqbench run <name> --help for flags):")
        for name in baselines.names():
            print(f"  {name:<18} {baselines.describe(name)}")
    if what in ("all", "metrics"):
        print("metrics (uqbench.metrics):")
        for name, description in metrics.describe():
            print(f"  {name:<28} {description}")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit code (2 for bad input, 1 for a failed run)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(USAGE)
        return 0 if args else 2
    if args[0] == "--version":
        print(f"uqbench {uqbench.__version__}")
        return 0
    command, rest = args[0], args[1:]
    try:
        if command == "list":
            parser = argparse.ArgumentParser(prog="uqbench list")
            parser.add_argument(
                "what",
                nargs="?",
                default="all",
                choices=["all", "datasets", "baselines", "metrics"],
            )
            _print_list(parser.parse_args(rest).what)
        elif command == "run":
            from uqbench import baselines

            if not rest or rest[0].startswith("-"):
                print(
                    f"usage: uqbench run <baseline> [--flags]; baselines: {', '.join(baselines.names())}",
                    file=sys.stderr,
                )
                return 2
            if any(a in ("-h", "--help", "--helpfull") for a in rest[1:]):
                print(baselines.flag_help(rest[0]))
                return 0
            baselines.run(rest[0], rest[1:])
        elif command == "demo":
            from uqbench.demo import run_demo

            parser = argparse.ArgumentParser(prog="uqbench demo")
            parser.add_argument(
                "--output_dir", default=None, help="where to keep the run directories"
            )
            run_demo(parser.parse_args(rest).output_dir)
        else:
            print(f"uqbench: unknown command {command!r}\n\n{USAGE}", file=sys.stderr)
            return 2
    except KeyboardInterrupt:
        print("\ninterrupted; nothing was written for the unfinished run", file=sys.stderr)
        return 130
    except FloatingPointError as err:
        print(f"uqbench: training failed: {err}", file=sys.stderr)
        return 1
    except (ValueError, FileNotFoundError) as err:
        print(f"uqbench: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
