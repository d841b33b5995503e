"""``python -m benchmarks``: run the benchmarks and print each as a ratio to PyTorch and plain NumPy.

    python -m benchmarks                          # every workload (under 10 minutes on 2 cores)
    python -m benchmarks --quick                  # smoke run: 1 repetition of 2 calls each
    python -m benchmarks --only 'conv2d*' mlp_784 --json results.json
    python -m benchmarks --list
    python -m benchmarks --render results.json    # the README's Markdown table from a result
    python -m benchmarks --render results.json --readme README.md
    python -m benchmarks --breakdown mnist1d_mlp  # each part of our step next to plain NumPy
    python -m benchmarks --profile lenet_step     # cProfile of our side, in this process
    python -m benchmarks --profile lenet_step --threads 1  # ... on one thread

See ``benchmarks/README.md`` for how to read the output.
"""

from __future__ import annotations

import argparse
import cProfile
import fnmatch
import json
import pstats
import sys
from functools import partial
from pathlib import Path

from benchmarks import report, runner
from benchmarks.registry import FRAMEWORKS, OURS, WORKLOADS, Workload, by_name


def select(patterns: list[str] | None) -> list[Workload]:
    """The workloads whose names match any of ``patterns`` (shell globs); all of them for ``None``."""
    if not patterns:
        return list(WORKLOADS)
    chosen = [w for w in WORKLOADS if any(fnmatch.fnmatchcase(w.name, p) for p in patterns)]
    if not chosen:
        names = ", ".join(w.name for w in WORKLOADS)
        raise SystemExit(f"--only {' '.join(patterns)} matches no workload; the workloads are: {names}")
    return chosen


def profile(workload: Workload, calls: int) -> None:
    """cProfile of functional_dl's side of ``workload``, threads pinned as in a worker, by own time."""
    limiter = runner.pin_threads(OURS, workload.threads)
    run = workload.builders[OURS](False)
    for _ in range(workload.warmup):
        run()
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(calls):
        run()
    prof.disable()
    pstats.Stats(prof).sort_stats("tottime").print_stats(25)
    del limiter


def _write(path: Path, doc: runner.Json) -> None:
    path.write_text(json.dumps(doc, indent=1) + "\n")


def _log(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", nargs="+", metavar="NAME", help="workload names or globs to run")
    parser.add_argument("--frameworks", nargs="+", choices=FRAMEWORKS, default=list(FRAMEWORKS))
    parser.add_argument("--quick", action="store_true", help="1 repetition of 2 calls, smaller data")
    parser.add_argument("--reps", type=int, help="repetitions per framework (default: per workload)")
    parser.add_argument("--json", type=Path, metavar="FILE", help="write the results here")
    parser.add_argument("--list", action="store_true", help="list the workloads and exit")
    parser.add_argument("--render", type=Path, metavar="FILE", help="print a result file as Markdown")
    parser.add_argument("--readme", type=Path, help="with --render: write the table into this file")
    parser.add_argument("--breakdown", metavar="NAME", help="time each part of a workload's step")
    parser.add_argument("--profile", metavar="NAME", help="cProfile functional_dl's side of a workload")
    parser.add_argument("--calls", type=int, default=300, help="calls for --breakdown and --profile")
    parser.add_argument(
        "--threads", type=int, help="with --breakdown or --profile: pin this many threads, not the workload's"
    )
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        spec = json.loads(args.worker)
        timing = runner.Timing(**spec["timing"])
        print(json.dumps(runner.worker(spec["name"], spec["framework"], timing)))
    elif args.list:
        for w in WORKLOADS:
            print(f"{w.name:<18}{w.title} [{', '.join(w.builders)}]")
    elif args.render:
        doc = json.loads(args.render.read_text())
        if args.readme:
            report.update_readme(args.readme, doc)
        else:
            print(report.markdown(doc))
    elif args.breakdown:
        workload = by_name(args.breakdown)
        if workload.breakdown is None:
            raise SystemExit(f"{workload.name} has no breakdown")
        limiter = runner.pin_threads(OURS, args.threads or workload.threads)
        workload.breakdown(args.calls)
        del limiter
    elif args.profile:
        workload = by_name(args.profile)
        profile(workload._replace(threads=args.threads or workload.threads), args.calls)
    else:
        save = partial(_write, args.json) if args.json else None
        doc = runner.run_all(select(args.only), args.frameworks, args.quick, args.reps, log=_log, save=save)
        print(report.text(doc))


if __name__ == "__main__":
    main()
