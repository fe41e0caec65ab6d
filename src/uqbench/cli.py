"""The ``uqbench`` command: ``list``, ``run <baseline> [--flags]``, ``demo``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import uqbench

USAGE = """usage: uqbench <command> [...]

commands:
  list [datasets|baselines|models|metrics]
                                      what is available, one line each
  run <baseline> [--flags]            run a baseline, e.g.
                                      uqbench run uci/ensemble --dataset=boston --split=all
                                      (uqbench run <baseline> --help lists its flags)
  eval RUN_DIR [--dataset=D] [--ood=noise,...] [--output_dir=DIR]
                                      evaluate a saved image classifier again (other data,
                                      other OOD sets); writes a new run directory
  demo [--output_dir=DIR]             compare the baselines on built-in data (under a minute)
  --version                           print the version
"""


def _print_list(what: str) -> None:
    from uqbench import baselines, data, metrics, models

    if what in ("all", "datasets"):
        print("data sets:")
        for name, kind, description in data.describe():
            print(f"  {name:<18} {kind:<15} {description}")
    if what in ("all", "baselines"):
        print("baselines (uqbench run <name> --help for flags):")
        for name in baselines.names():
            print(f"  {name:<18} {baselines.describe(name)}")
    if what in ("all", "models"):
        print("models (--model for the image baselines; uqbench.models.get):")
        for name, description in models.describe():
            print(f"  {name:<18} {description}")
    if what in ("all", "metrics"):
        print("metrics (uqbench.metrics):")
        for name, description in metrics.describe():
            print(f"  {name:<28} {description}")


def _eval(argv: Sequence[str]) -> None:
    from uqbench.training.reevaluate import reevaluate

    parser = argparse.ArgumentParser(
        prog="uqbench eval", description="Evaluate a saved image classifier again."
    )
    parser.add_argument("run_dir", help="run directory of an image/ baseline")
    parser.add_argument("--dataset", default=None, help="default: the data set it was trained on")
    parser.add_argument("--data_dir", default=None)
    parser.add_argument(
        "--ood", default="noise", help="comma-separated OOD sets (noise, pairs, a name or a path)"
    )
    parser.add_argument("--output_dir", default=None, help="default: RUN_DIR-eval-<time>")
    parser.add_argument("--overwrite", action="store_true")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--batch_size", type=int, default=1000)
    args = parser.parse_args(argv)
    reevaluate(
        args.run_dir,
        dataset=args.dataset,
        data_dir=args.data_dir,
        ood=[s for s in args.ood.split(",") if s],
        output_dir=args.output_dir,
        overwrite=args.overwrite,
        device=args.device,
        batch_size=args.batch_size,
    )


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
                choices=["all", "datasets", "baselines", "models", "metrics"],
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
        elif command == "eval":
            _eval(rest)
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
