"""Turn a pruning search into an offline report and print its headline table.

    python -m analysis --results results/vgg16_quick            # writes results/vgg16_quick/report/
    python -m analysis --results results/s0 results/s1 results/s2 --out pooled   # one verdict
    python -m analysis --storage sqlite:///results/x/optuna.db --study NAME --out report
"""
from __future__ import annotations

import sys
from pathlib import Path

from hpo_prune.errors import ArgumentParser, UsageError, cli_main

from .selection import N_BOOT


def parser() -> ArgumentParser:
    p = ArgumentParser(prog="python -m analysis",
                       description="Pareto fronts, fitted fronts with bootstrap bands, "
                       "hypervolume and the fine-tuned vs scratch verdict of a pruning search; "
                       "writes an offline report (index.html, summary.csv, comparison.csv, "
                       "fronts.csv, figures, Optuna pages) and prints the headline table.")
    source = p.add_mutually_exclusive_group()
    source.add_argument("--results", metavar="DIR", nargs="+", help="the results directory "
                        "of python -m hpo_prune.search (search.json, optuna.db, trials.csv); "
                        "several directories of one replicated level design, run with "
                        "different --seed values, pool into one verdict (needs --out)")
    source.add_argument("--storage", metavar="URL", help="an Optuna storage URL, e.g. "
                        "sqlite:///results/NAME/optuna.db (needs --out)")
    p.add_argument("--study", nargs="+", metavar="NAME", help="analyse only these studies "
                   "(default: all of the search / storage)")
    p.add_argument("--out", metavar="DIR", help="report directory (default: DIR/report with "
                   "--results); an earlier report there is replaced")
    p.add_argument("--trials-from", choices=("auto", "storage", "csv"), default="auto",
                   help="with --results: read the Optuna storage (live) or trials.csv; auto = "
                   "the storage when there is one (default: %(default)s)")
    p.add_argument("--bootstrap", type=int, default=N_BOOT, metavar="N",
                   help="bootstrap resamples for the 95%% intervals (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="seed of the bootstrap (default: "
                   "%(default)s)")
    p.add_argument("--no-optuna-pages", action="store_true",
                   help="skip Optuna's per-study HTML pages (about 5 MB each)")
    return p


@cli_main
def main(argv=None) -> int:
    args = parser().parse_args(argv)
    if args.bootstrap < 100:
        raise UsageError(f"--bootstrap must be >= 100 for a 95% interval, got {args.bootstrap}")
    if args.results is None and args.storage is None:
        raise UsageError("pass --results DIR (a search's results directory) or --storage URL")
    from .load import load_results, load_storage
    from .report import build_report

    if args.results is not None and len(args.results) > 1:
        from .pool import pool

        if args.out is None:
            raise UsageError("several --results pool into one report: pass --out DIR, the "
                             "directory to write it to")
        results = pool([load_results(d, prefer=args.trials_from) for d in args.results],
                       args.results)
        out = Path(args.out)
    elif args.results is not None:
        results = load_results(args.results[0], prefer=args.trials_from)
        out = Path(args.out) if args.out else Path(args.results[0]) / "report"
    else:
        if args.out is None:
            raise UsageError("--storage needs --out DIR, the directory to write the report to")
        results = load_storage(args.storage, args.study)
        out = Path(args.out)
    if args.study:
        known = sorted(set(results.trials["study"]))
        unknown = [s for s in args.study if s not in known]
        if unknown:
            raise UsageError(f"unknown study {unknown[0]!r}: use one of {', '.join(known)}")
        results.trials = results.trials[results.trials["study"].isin(args.study)]
        results.studies = [s for s in results.studies if s in args.study]
    report = build_report(results, out, n_boot=args.bootstrap, seed=args.seed,
                          optuna_pages=not args.no_optuna_pages)
    print(report.text)
    print(f"report: {out / 'index.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
