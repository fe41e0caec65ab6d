"""The ``uqbench`` command: ``list``, ``run <baseline> [--flags]``, ``eval``, ``search``,
``report``, ``compare``, ``demo``."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence

import uqbench

USAGE = """usage: uqbench <command> [...]

commands:
  list [datasets|baselines|models|metrics|corruptions]
                                      what is available, one line each
  run <baseline> [--flags]            run a baseline, e.g.
                                      uqbench run uci/ensemble --dataset=boston --split=all
                                      (uqbench run <baseline> --help lists its flags)
  eval RUN_DIR [--dataset=D] [--ood=uniform_noise,...] [--output_dir=DIR]
                                      evaluate a saved image or text classifier again (other data,
                                      other OOD sets); writes a new run directory and prints
                                      its path (uqbench eval --help: where by default)
  search --dataset=D --trials=N --output_dir=DIR [--spec=FILE] [--algorithm=adaptive|random|evolution]
         [--resume] [--workers=N] [--executor=local|ray] [--ray_address=ADDR]
                                      search for a model; exits 0 only when all N trials
                                      finished and at least one is done (uqbench search
                                      --help: every flag with its default, the exit codes)
  search show DIR [--pareto=M1,M2]    the top trials, their architectures and parents, or
                                      the Pareto front of two metrics (e.g. nll,params)
  search export DIR [--trial=N] [--output=FILE]
                                      the best model (or trial N's) as one checkpoint that
                                      uqbench.load_run() applies to raw input
  search blocks                       the building blocks a search space can use
  report PATH... [--out=DIR] [--format=html,md,csv] [--num_bins=N] [--binning=width|mass]
         [--classwise] [--no_figures]
                                      tables (mean ± standard error over seeds and splits),
                                      figures and one self-contained HTML page from every run
                                      and search directory under the paths
  compare PATH... [--all]             the same tables, aligned in the terminal
  demo [--output_dir=DIR]             compare the baselines on built-in data, then a short
                                      model search on digits (about 30 s)
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
        print("text models (--model for the text baselines; uqbench.models.get_text_model):")
        from uqbench.models import text_registry

        for name, description in text_registry.describe():
            print(f"  {name:<18} {description}")
    if what in ("all", "metrics"):
        print("metrics (uqbench.metrics):")
        for name, description in metrics.describe():
            print(f"  {name:<28} {description}")
    if what in ("all", "corruptions"):
        from uqbench.data import shift

        print("corruptions (--corruptions, severities 1-5; uqbench.data.shift):")
        for name in shift.CORRUPTIONS:
            print(f"  {name}")


def _eval(argv: Sequence[str]) -> None:
    """``uqbench eval RUN_DIR ...``: re-evaluate a saved classifier into a new run directory."""
    import uqbench.search.blocks  # noqa: F401  (registers SearchNet: trials of a search re-evaluate too)
    from uqbench.training.reevaluate import reevaluate

    parser = argparse.ArgumentParser(
        prog="uqbench eval", description="Evaluate a saved image classifier again."
    )
    parser.add_argument(
        "run_dir", help="run directory of an image/ or text/ baseline or a search trial"
    )
    parser.add_argument("--dataset", default=None, help="default: the data set it was trained on")
    parser.add_argument("--data_dir", default=None)
    parser.add_argument(
        "--ood",
        default=None,
        help="comma-separated OOD sets (uniform_noise, the default, gaussian_noise, pairs, a name "
        "or a path); for a text run oos_test (the default) and oos_val",
    )
    parser.add_argument(
        "--output_dir",
        default=None,
        help="default: RUN_DIR-eval-<time> beside the run; for a search trial "
        "(SEARCH/trials/<id>), SEARCH-evals/trial<id>-<time> beside the search",
    )
    parser.add_argument("--overwrite", action="store_true")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--batch_size", type=int, default=1000)
    parser.add_argument(
        "--corruptions",
        default="",
        help="CIFAR-10-C corruptions to evaluate: all, or names separated by commas "
        "(uqbench list corruptions); default none",
    )
    parser.add_argument("--corruption_severities", default="1,2,3,4,5", help="default 1,2,3,4,5")
    parser.add_argument(
        "--corruption_images",
        type=int,
        default=1000,
        help="test images to corrupt (a class-stratified subset, the same for every method); "
        "0 for all; default 1000",
    )
    parser.add_argument(
        "--cifar10c_dir", default=None, help="read corrupted images from a CIFAR-10-C folder"
    )
    parser.add_argument(
        "--temperature_scaling",
        action="store_true",
        help="fit a temperature on the run's validation set first (post-hoc calibration; the "
        "run must have trained with a validation carve-out)",
    )
    args = parser.parse_args(argv)
    if args.corruption_images < 0:
        raise ValueError("--corruption_images must be >= 0 (0: every test image)")
    reevaluate(
        args.run_dir,
        dataset=args.dataset,
        data_dir=args.data_dir,
        ood=[s for s in args.ood.split(",") if s] if args.ood is not None else None,
        output_dir=args.output_dir,
        overwrite=args.overwrite,
        device=args.device,
        batch_size=args.batch_size,
        corruptions=args.corruptions,
        corruption_severities=args.corruption_severities,
        corruption_images=args.corruption_images or None,
        cifar10c_dir=args.cifar10c_dir,
        temperature_scaling=args.temperature_scaling,
    )


def _report_parser(prog: str) -> argparse.ArgumentParser:
    """The flags ``uqbench report`` and ``uqbench compare`` share."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Group run directories by their flags (all but seed, split and output "
        "directory), average seeds and splits, and compare; searches are summarised too.",
    )
    parser.add_argument("paths", nargs="+", help="run or search directories, or folders of them")
    parser.add_argument(
        "--num_bins",
        type=int,
        default=None,
        help="recompute a calibration error from the saved predictions with this many bins "
        "(beside the recorded 15-bin ECE; default: none recomputed)",
    )
    parser.add_argument(
        "--binning",
        choices=["width", "mass"],
        default=None,
        help="bins of the recomputed calibration error: equal-width or equal-mass (default width)",
    )
    parser.add_argument(
        "--classwise", action="store_true", help="recompute the classwise calibration error"
    )
    return parser


def _calibration(args: argparse.Namespace):
    """The user's calibration-error definition, or ``None`` when no flag asks for one."""
    from uqbench.analysis.recompute import Calibration

    if args.num_bins is None and args.binning is None and not args.classwise:
        return None
    return Calibration(args.num_bins or 15, args.binning or "width", args.classwise)


def _report(argv: Sequence[str]) -> None:
    """``uqbench report PATH...``: write report.html, report.md and CSV files."""
    from uqbench.analysis.report import FORMATS, build_report, check_formats, write_report

    parser = _report_parser("uqbench report")
    parser.add_argument("--out", default="report", help="output folder (default: ./report)")
    parser.add_argument(
        "--format", default=",".join(FORMATS), help="comma-separated: html, md, csv (default: all)"
    )
    parser.add_argument("--no_figures", action="store_true", help="tables only (faster)")
    args = parser.parse_args(argv)
    formats = [f.strip() for f in args.format.split(",") if f.strip()]
    check_formats(formats)
    start = time.perf_counter()
    report = build_report(args.paths, _calibration(args), figures=not args.no_figures)
    written = write_report(report, args.out, formats)
    for path, why in report.skipped:
        print(f"skipped {path}: {why}", file=sys.stderr)
    print(
        f"report: {report.runs} runs, {report.searches} searches, {len(report.tables)} tables, "
        f"{len(report.figures)} figures in {time.perf_counter() - start:.1f}s; wrote "
        + ", ".join(str(p) for p in written)
    )


def _compare(argv: Sequence[str]) -> None:
    """``uqbench compare PATH...``: the report's tables aligned in the terminal."""
    from uqbench.analysis.report import build_report
    from uqbench.analysis.text_formats import aligned

    parser = _report_parser("uqbench compare")
    parser.add_argument(
        "--all", action="store_true", help="also every corruption type and severity"
    )
    args = parser.parse_args(argv)
    report = build_report(args.paths, _calibration(args), figures=False)
    tables = [t for t in report.tables if args.all or t.section != "corrupted by type"]
    print(aligned(tables))
    for path, why in report.skipped:
        print(f"skipped {path}: {why}")


SEARCH_EPILOG = """\
Failed and infeasible trials count toward --trials: the budget is done when every one of the
--trials trials has finished (done, failed or infeasible). The last line printed (on stderr)
says how the search ended:
  search finished: 30 of 30 trials (28 done, 1 failed, 1 infeasible); best trial 17 val/nll ...
  search failed: all 8 trials failed; first error (trial 1): ...
  search incomplete: 29 of 30 trials finished (...); 1 abandoned by a worker that died
    (trial 30): run the same command with --resume to finish it

exit codes:
  0    finished: the budget is done and at least one trial is done (some may have failed:
       a failing trial is data for the search; the last line counts them)
  1    failed (the budget is done but no trial is done, or every worker crashed) or
       incomplete (trials left unfinished): the last line says which; --resume finishes
       an incomplete search
  2    bad input (flags, spec, data set, output directory): nothing was trained
  130  interrupted (Ctrl-C): finished trials are kept; --resume continues
"""


def _search_parser() -> argparse.ArgumentParser:
    """The parser of ``uqbench search``: every flag with a one-line help and its default."""
    from uqbench.search.algorithms import CHOICES
    from uqbench.search.executors import EXECUTORS

    parser = argparse.ArgumentParser(
        prog="uqbench search",
        description="Search for a model: every trial trains on the training split and is "
        "scored on the\nvalidation split; the test split is evaluated once per trial, for the "
        "record.\nAlso: uqbench search show DIR, search export DIR (each takes --help), "
        "search blocks.",
        epilog=SEARCH_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add = parser.add_argument
    add(
        "--dataset",
        required=True,
        help="required: digits, cifar10, iris, boston, ... (uqbench list), an image folder or a "
        "CSV file",
    )
    add("--split", type=int, default=0, help="the standard split of a table (default: 0)")
    add("--target", default=None, help="the column to predict, for a CSV file (default: none)")
    add(
        "--task",
        default=None,
        metavar="{classification,regression}",
        help="override the task a CSV file's target suggests (default: inferred)",
    )
    add("--output_dir", required=True, help="required: the search directory (new or empty)")
    add(
        "--trials",
        type=int,
        default=30,
        help="trial budget; failed and infeasible trials count (default: 30)",
    )
    add("--spec", default=None, help="search space TOML file (default: the built-in space)")
    add(
        "--algorithm",
        default="adaptive",
        metavar="{" + ",".join(CHOICES) + "}",
        help="how trials are suggested; optuna needs uqbench[optuna]; package.module:factory "
        "is your own (docs/search.md) (default: adaptive)",
    )
    add("--seed", type=int, default=0, help="seed of the suggestions and trials (default: 0)")
    add(
        "--validation_fraction",
        type=float,
        default=0.2,
        help="share of the training data that scores trials (default: 0.2)",
    )
    add(
        "--data_dir",
        default=None,
        help="where data sets are read (default: $UQBENCH_DATA_DIR, else ~/.cache/uqbench/data)",
    )
    add("--resume", action="store_true", help="continue the search in --output_dir (default: off)")
    add("--workers", type=int, default=1, help="parallel worker processes (default: 1)")
    add(
        "--executor",
        default="local",
        metavar="{" + ",".join(EXECUTORS) + "}",
        help="where workers run: local processes or Ray tasks (default: local)",
    )
    add(
        "--ray_address",
        default=None,
        help="join a Ray cluster: auto or host:port (default: start a local Ray)",
    )
    add(
        "--ray_storage",
        default=None,
        help="a folder every Ray node and this machine see, through which trials' run "
        "directories travel (default: none: they travel through Ray as bytes)",
    )
    add(
        "--cpus_per_trial",
        type=float,
        default=1.0,
        help="CPUs (torch threads) per worker with --workers>1 or Ray (default: 1.0)",
    )
    add(
        "--gpus_per_trial",
        type=float,
        default=0.0,
        help="GPUs each Ray task asks for, --executor=ray only (default: 0.0)",
    )
    add("--device", default=None, help="auto, cpu, cuda, cuda:1 (default: auto: a GPU if any)")
    add(
        "--quiet",
        action="store_true",
        help="no line per trial; the last line is still printed (default: off)",
    )
    return parser


def _search(argv: Sequence[str]) -> int:
    """``uqbench search ...``; returns the exit code (see ``SEARCH_EPILOG``)."""
    from uqbench.search import blocks, driver, executors, outputs, pareto

    if argv and argv[0] == "show":
        parser = argparse.ArgumentParser(
            prog="uqbench search show",
            description="The top trials, their architectures and parents.",
        )
        parser.add_argument("directory", help="the --output_dir of a search")
        parser.add_argument("--top", type=int, default=10, help="trials to list (default: 10)")
        parser.add_argument(
            "--pareto",
            default=None,
            metavar="METRIC,METRIC",
            help="the Pareto front of two metrics over the completed trials, e.g. nll,params or "
            "accuracy,ece (val/ by default; test/..., params, ms_per_example)",
        )
        args = parser.parse_args(argv[1:])
        if args.pareto is not None:
            names = [n for n in args.pareto.split(",") if n.strip()]
            if len(names) != 2:
                raise ValueError(
                    f"--pareto takes two metrics, e.g. nll,params; got {args.pareto!r}"
                )
            print(pareto.show_pareto(args.directory, *names))
            return 0
        print(outputs.show(args.directory, args.top))
        return 0
    if argv and argv[0] == "export":
        parser = argparse.ArgumentParser(
            prog="uqbench search export",
            description="Write a trial's model as one checkpoint (uqbench.search.load_model).",
        )
        parser.add_argument("directory", help="the --output_dir of a search")
        parser.add_argument(
            "--output",
            default=None,
            help=f"the checkpoint to write (default: DIR/{outputs.EXPORT_FILE})",
        )
        parser.add_argument(
            "--trial", type=int, default=None, help="the trial to export (default: the best)"
        )
        args = parser.parse_args(argv[1:])
        path = outputs.export(args.directory, args.output, args.trial)
        print(f"wrote {path}; predict with uqbench.load_run({str(path)!r}).predict(raw_inputs)")
        return 0
    if argv and argv[0] == "blocks":
        for name, kind, description in blocks.describe():
            print(f"  {name:<22} {kind:<5} {description}")
        return 0
    args = _search_parser().parse_args(argv)
    try:
        driver.run_search(driver.SearchRequest(**vars(args)))
    except executors.WorkersFailed as err:
        print(
            f"uqbench: search failed: {err}; fix that, then run the same command with --resume",
            file=sys.stderr,
        )
        return 1
    print(outputs.show(args.output_dir, top=5), flush=True)
    status, line = outputs.conclusion(args.output_dir)
    print(line, file=sys.stderr, flush=True)
    return 0 if status == "complete" else 1


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
                choices=["all", "datasets", "baselines", "models", "metrics", "corruptions"],
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
        elif command == "search":
            code = _search(rest)
            if code:
                return code
        elif command == "report":
            _report(rest)
        elif command == "compare":
            _compare(rest)
        elif command == "demo":
            from uqbench.demo import run_demo
            from uqbench.search.outputs import SearchNotComplete

            parser = argparse.ArgumentParser(prog="uqbench demo")
            parser.add_argument(
                "--output_dir", default=None, help="where to keep the run directories"
            )
            try:
                run_demo(parser.parse_args(rest).output_dir)
            except SearchNotComplete as err:
                print(f"uqbench: {err}", file=sys.stderr)
                return 1
        else:
            print(f"uqbench: unknown command {command!r}\n\n{USAGE}", file=sys.stderr)
            return 2
    except BrokenPipeError:  # output piped into e.g. `head`, which stopped reading
        sys.stdout = open(os.devnull, "w")  # so the interpreter's final flush stays quiet
        return 0
    except KeyboardInterrupt:
        if command == "search":
            print(
                "\ninterrupted; finished trials are kept, the unfinished one was handed back: "
                "run the same command with --resume to continue",
                file=sys.stderr,
            )
        else:
            print("\ninterrupted; nothing was written for the unfinished run", file=sys.stderr)
        return 130
    except FloatingPointError as err:
        print(f"uqbench: training failed: {err}; nothing was written", file=sys.stderr)
        return 1
    except (ValueError, FileNotFoundError) as err:
        print(f"uqbench: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
