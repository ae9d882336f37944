"""Long-run benchmark: do the search driver's memory and its per-trial scheduling overhead stay
flat over hundreds of trials? (prints figures; not a test)

Runs ONE search (`python -m hpo_prune.search`, one study: --regimes scratch) of --trials very
short trials (mobilenet_v2 on 32 digits images of 16 px, one batch of 32, one epoch) as a
child process, and records at each milestone (by default 1/6, 1/2 and all of --trials: 50, 150
and 300 finished trials):

- the driver's memory: its resident set (RSS) when the milestone is reached, its peak RSS so
  far (the largest of the samples taken every --interval s and the kernel's VmHWM where Linux
  provides it) and its unique set (USS: the pages no other process shares, read at milestones
  only). This is the driver process alone; the total RSS of its Ray child processes (GCS,
  raylet, workers; shared pages such as the object store count once per process), sampled
  every 5 s, is printed beside it as context only (the largest sample in the window: at the
  last milestone Ray is already stopping its workers);
- per window between milestones (0-50, 50-150, 150-300): the scheduling overhead per trial =
  (window wall time x concurrency - sum of the trials' own wall_seconds) / trials finished in
  the window, and the throughput in trials per minute. wall_seconds is the time a trial spent
  inside its worker (a user attribute of each Optuna trial), so the overhead is everything
  else a slot spends per trial: Tune's bookkeeping, the searcher's ask/tell (sampling
  included), trials.csv rewrites, result and checkpoint handling, actor reuse. Concurrency is
  min(--max-concurrent, Ray's CPUs); one trial takes one CPU.

Also recorded: the results folder's size on disk at each milestone. Every finished trial keeps
its model as its one checkpoint (about 9 MB for the default trial), so 300 trials take about
2.6 GB there; the script warns when less is free. A temporary results folder is deleted at the end.

Milestones are detected by polling the study's SQLite storage (a read-only count of the
finished -- COMPLETE, PRUNED or FAIL -- trials) every --interval s. After the run the trials
are attributed to windows by their finish time (Optuna's datetime_complete): the first window
starts when the first trial was asked (Ray's start, data loading and the studies' creation are
reported apart, as start-up), window k ends when the milestone-k-th trial finished. A trial is
counted whole in the window it finishes in, so each boundary shifts at most one trial's time
per slot between neighbouring windows; the first window also carries the one-off start of
the worker processes (imports), the last one the drain at the end (one slot idle while the
last trial runs). Both edge effects shrink as the windows grow.

Verdicts (milestones m1 < ... < mk, at least three):
- memory: growth from m1 to mk in MB and per 100 trials. "Sub-linear" means the driver's RSS
  grew more slowly per trial in the last window than in the one before: growth m(k-1)->mk is
  smaller than growth m(k-2)->m(k-1) scaled by the trial counts (i.e. the RSS at mk lies below
  the linear extrapolation of the previous window). Growth below the noise floor (10 MB or 2%
  of the RSS at m1, the larger) is reported as flat.
- overhead: the ratio of the last window's overhead to the first's (as asked) and to the
  second's (steady state: the first window carries the workers' start). "Flat" means the last
  window's overhead is at most 1.5x the second window's (the first's with two windows), or at
  most 0.05 s/trial above it.

    python benchmarks/bench_long_run.py                       # 300 trials, TPE (the default)
    python benchmarks/bench_long_run.py --sampler random      # asks that cost next to nothing
    python benchmarks/bench_long_run.py --trials 30 --milestones 10,20,30   # quick check

Figures are wall-clock: run it on a quiet machine. --out FILE also writes them as JSON (with a
5-s series of the driver's and Ray's RSS). The search runs this checkout's hpo_prune (its root
goes first on the child's PYTHONPATH) with the environment as it is (Ray's token
authentication included); its output goes to long_driver.log in the results directory.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from contextlib import closing
from datetime import datetime
from pathlib import Path

try:
    import psutil
except ModuleNotFoundError:
    sys.exit("bench_long_run needs psutil: pip install psutil (or the project's [test] extra)")

REPO = Path(__file__).resolve().parent.parent
MB = 1024 * 1024
FINISHED = ("COMPLETE", "PRUNED", "FAIL")
NAME = "long"
DISK_PER_TRIAL_MB = 12  # the tiny mobilenet_v2 trial's model and logs (measured: 8.8 MB)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python benchmarks/bench_long_run.py", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--trials", type=int, default=300,
                   help="trials that must finish (default: %(default)s)")
    p.add_argument("--milestones", default=None, help="comma-separated finished-trial counts "
                   "to record at, ascending, at most --trials (default: trials/6, trials/2, "
                   "trials: 50,150,300)")
    p.add_argument("--sampler", default="tpe", choices=("tpe", "random", "nsga2"),
                   help="Optuna sampler of the search; tpe is the search's own default, "
                   "random costs next to nothing per ask (default: %(default)s)")
    p.add_argument("--max-concurrent", type=int, default=2,
                   help="most trials at once (default: %(default)s)")
    p.add_argument("--model", default="mobilenet_v2",
                   help="network of every trial (default: %(default)s)")
    p.add_argument("--train-subset", type=int, default=32,
                   help="training images per trial (default: %(default)s)")
    p.add_argument("--batch-size", type=int, default=32,
                   help="mini-batch size (default: %(default)s)")
    p.add_argument("--image-size", type=int, default=16,
                   help="input size in pixels, >= 16 (default: %(default)s)")
    p.add_argument("--epochs", type=int, default=1,
                   help="epochs per trial (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of the sampler and the trials (default: %(default)s)")
    p.add_argument("--results", default=None, help="directory for the search (folder "
                   f"{NAME}/) and its log, kept afterwards (default: a temporary one, deleted "
                   "at the end)")
    p.add_argument("--interval", type=float, default=0.5,
                   help="seconds between memory samples and storage polls (default: "
                   "%(default)s)")
    p.add_argument("--timeout", type=float, default=0,
                   help="interrupt the search after this many seconds; 0 = no limit "
                   "(default: %(default)s)")
    p.add_argument("--out", default=None,
                   help="also write the figures as JSON to this file (default: print only)")
    args = p.parse_args(argv)
    if args.trials < 1:
        p.error(f"--trials must be >= 1, got {args.trials}")
    if args.milestones is None:
        marks = sorted({max(1, round(args.trials / 6)), max(1, round(args.trials / 2)),
                        args.trials})
    else:
        try:
            marks = [int(m) for m in args.milestones.split(",") if m.strip()]
        except ValueError:
            p.error(f"--milestones must be comma-separated integers, got {args.milestones!r}")
        if not marks or marks != sorted(set(marks)) or marks[0] < 1 or marks[-1] > args.trials:
            p.error(f"--milestones must ascend strictly, from >= 1 to <= --trials "
                    f"({args.trials}), got {args.milestones!r}")
    args.marks = marks
    if args.interval <= 0:
        p.error("--interval must be > 0")
    return args


def search_command(args, results: Path) -> list[str]:
    return [sys.executable, "-m", "hpo_prune.search", "--model", args.model, "--regimes",
            "scratch", "--trials", str(args.trials), "--sampler", args.sampler,
            "--max-concurrent", str(args.max_concurrent), "--train-subset",
            str(args.train_subset), "--batch-size", str(args.batch_size), "--image-size",
            str(args.image_size), "--epochs", str(args.epochs), "--early-stop", "none",
            "--baseline-seeds", "1", "--confirm", "0",  # exactly --trials trials, as measured
            "--seed", str(args.seed), "--results", str(results), "--name", NAME]


def child_env() -> dict:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    # run this checkout's package, whatever copy of it is installed (Ray's workers inherit it)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    return env


# ---------------------------------------------------------------------------- measuring
def finished_count(db: Path) -> int | None:
    """Finished trials in the storage, or None while it does not exist yet (read-only)."""
    if not db.exists():
        return None
    try:
        with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1)) as con:
            return con.execute(f"SELECT COUNT(*) FROM trials WHERE state IN "
                               f"({','.join('?' * len(FINISHED))})", FINISHED).fetchone()[0]
    except sqlite3.Error:  # tables not created yet, or locked for a moment
        return None


def hwm_mb(proc: psutil.Process) -> float:
    """The kernel's peak RSS of the process (VmHWM; 0 where not available)."""
    try:
        text = Path(f"/proc/{proc.pid}/status").read_text()
        return int(re.search(r"VmHWM:\s+(\d+) kB", text).group(1)) / 1024
    except (OSError, AttributeError):
        return 0.0


def disk_mb(folder: Path) -> float:
    """Bytes under folder, in MB (files that vanish meanwhile are skipped)."""
    total = 0
    for root, _, files in os.walk(folder):
        for name in files:
            try:
                total += os.stat(os.path.join(root, name)).st_size
            except OSError:
                pass
    return total / MB


def ray_children(proc: psutil.Process, detail: bool = False) -> tuple[float, int, dict]:
    """Total RSS (MB) and count of the driver's descendants (Ray's); with detail also their
    RSS and USS (MB) summed by process name (USS reads each process's page map: milestones
    only)."""
    total, count, by_name = 0.0, 0, {}
    for child in proc.children(recursive=True):
        try:
            mb = child.memory_info().rss / MB
            if detail:
                name, uss = child.name(), child.memory_full_info().uss / MB
        except psutil.Error:
            continue
        total += mb
        count += 1
        if detail:
            entry = by_name.setdefault(name, {"n": 0, "rss_mb": 0.0, "uss_mb": 0.0})
            entry["n"] += 1
            entry["rss_mb"] = round(entry["rss_mb"] + mb, 1)
            entry["uss_mb"] = round(entry["uss_mb"] + uss, 1)
    return total, count, by_name


def monitor(proc: subprocess.Popen, db: Path, marks: list[int], interval: float,
            timeout: float, started: float) -> tuple[list[dict], list[tuple], float]:
    """Sample the driver until it exits: milestone records, a series (every 5 s: seconds,
    finished trials, driver RSS, Ray's RSS) and the driver's peak RSS."""
    driver = psutil.Process(proc.pid)
    peak, records, series, last_series = 0.0, [], [], -1e9
    ray_max = 0.0  # Ray's total RSS, largest sample since the last milestone
    pending = list(marks)
    while proc.poll() is None:
        now = time.monotonic()
        if timeout and now - started > timeout:
            print(f"--timeout {timeout:g}s reached: stopping the search", flush=True)
            stop(proc)
            break
        try:
            rss = driver.memory_info().rss / MB
        except psutil.Error:
            break
        peak = max(peak, rss, hwm_mb(driver))
        count = finished_count(db)
        if now - last_series >= 5:
            ray_mb, _, _ = ray_children(driver)
            ray_max = max(ray_max, ray_mb)
            series.append((round(now - started, 1), count or 0, round(rss, 1), round(ray_mb)))
            last_series = now
        while pending and count is not None and count >= pending[0]:
            mark = pending.pop(0)
            try:
                uss = driver.memory_full_info().uss / MB
                ray_mb, children, by_name = ray_children(driver, detail=True)
            except psutil.Error:
                uss, ray_mb, children, by_name = None, 0.0, None, {}
            ray_max = max(ray_max, ray_mb)
            records.append({"milestone": mark, "finished_when_seen": count,
                            "seen_after_s": round(now - started, 2), "rss_mb": round(rss, 1),
                            "peak_rss_mb": round(peak, 1),
                            "uss_mb": None if uss is None else round(uss, 1),
                            "ray_rss_mb_window_max": round(ray_max, 1),
                            "ray_processes": children, "ray_by_name_now": by_name,
                            "results_disk_mb": round(disk_mb(db.parent))})
            print(f"  milestone {mark}: {count} finished after {now - started:.0f}s, driver "
                  f"RSS {rss:.0f} MB (peak {peak:.0f}), USS {uss or 0:.0f} MB; Ray's "
                  f"{children} processes {ray_max:.0f} MB at most since the last", flush=True)
            ray_max = 0.0
        time.sleep(interval)
    return records, series, peak


def stop(proc: subprocess.Popen) -> None:
    """Interrupt the search (the driver stops Tune and Ray itself); kill its process group
    (the driver and Ray's processes) if it has not ended a minute later."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def trials_of(db: Path) -> tuple[list[dict], datetime | None]:
    """Finished trials in finish order: start, finish (datetime) and wall_seconds."""
    with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)) as con:
        rows = con.execute(
            "SELECT t.number, t.state, t.datetime_start, t.datetime_complete, a.value_json "
            "FROM trials t LEFT JOIN trial_user_attributes a ON a.trial_id = t.trial_id AND "
            f"a.key = 'wall_seconds' WHERE t.state IN ({','.join('?' * len(FINISHED))}) "
            "AND t.datetime_complete IS NOT NULL ORDER BY t.datetime_complete, t.number",
            FINISHED).fetchall()
        first = con.execute("SELECT MIN(datetime_start) FROM trials").fetchone()[0]
    out = [{"number": n, "state": s, "start": datetime.fromisoformat(a),
            "complete": datetime.fromisoformat(c), "wall": json.loads(w) if w else 0.0}
           for n, s, a, c, w in rows]
    return out, datetime.fromisoformat(first) if first else None


def windows(trials: list[dict], first_start: datetime, marks: list[int],
            concurrency: int) -> list[dict]:
    out, begin, done = [], first_start, 0
    for mark in marks:
        if mark > len(trials):
            break
        chunk = trials[done:mark]
        end = chunk[-1]["complete"]
        span = (end - begin).total_seconds()
        busy = sum(t["wall"] for t in chunk)
        out.append({"window": f"{done}-{mark}", "trials": len(chunk),
                    "failed": sum(t["state"] == "FAIL" for t in chunk),
                    "wall_s": round(span, 2), "trial_wall_s": round(busy, 2),
                    "mean_trial_wall_s": round(busy / len(chunk), 3),
                    "overhead_s_per_trial": round((span * concurrency - busy) / len(chunk), 3),
                    "trials_per_min": round(60 * len(chunk) / span, 2) if span > 0 else None})
        begin, done = end, mark
    return out


# ---------------------------------------------------------------------------- verdicts
def memory_verdict(records: list[dict]) -> tuple[str, dict]:
    if len(records) < 2:
        return "memory growth: fewer than two milestones reached, no verdict", {}
    a, z = records[0], records[-1]
    growth = z["rss_mb"] - a["rss_mb"]
    per_100 = 100 * growth / (z["milestone"] - a["milestone"])
    noise = max(10.0, 0.02 * a["rss_mb"])
    figures = {"growth_mb": round(growth, 1), "mb_per_100_trials": round(per_100, 2),
               "noise_floor_mb": round(noise, 1)}
    line = (f"memory growth {a['milestone']}->{z['milestone']}: {growth:+.1f} MB "
            f"({per_100:+.1f} MB per 100 trials); sub-linear? ")
    if len(records) < 3:
        figures["sub_linear"] = None
        return line + "needs three milestones to tell", figures
    x, y = records[-3], records[-2]
    early = (y["rss_mb"] - x["rss_mb"]) / (y["milestone"] - x["milestone"])
    late = (z["rss_mb"] - y["rss_mb"]) / (z["milestone"] - y["milestone"])
    linear = y["rss_mb"] + early * (z["milestone"] - y["milestone"])
    figures.update(mb_per_trial_before=round(early, 4), mb_per_trial_last=round(late, 4),
                   linear_extrapolation_mb=round(linear, 1))
    if abs(growth) <= noise:
        figures["sub_linear"] = True
        verdict = f"yes: flat (|growth| within the {noise:.0f} MB noise floor)"
    else:
        figures["sub_linear"] = late < early
        verdict = ("yes" if late < early else "NO") + (
            f": {late * 100:+.1f} MB/100 trials in {y['milestone']}-{z['milestone']} vs "
            f"{early * 100:+.1f} before; RSS at {z['milestone']} {z['rss_mb']:.0f} MB vs "
            f"{linear:.0f} MB extrapolated linearly")
    return line + verdict, figures


def overhead_verdict(wins: list[dict]) -> tuple[str, dict]:
    if len(wins) < 2:
        return "overhead flat? fewer than two windows, no verdict", {}
    first, last = wins[0]["overhead_s_per_trial"], wins[-1]["overhead_s_per_trial"]
    ref = wins[1]["overhead_s_per_trial"] if len(wins) >= 3 else first

    def ratio(a, b):
        return a / b if b > 0 else None

    r_first, r_ref = ratio(last, first), ratio(last, ref)
    flat = last <= 1.5 * ref or last - ref <= 0.05
    figures = {"last_over_first": None if r_first is None else round(r_first, 3),
               "last_over_second": None if r_ref is None or len(wins) < 3 else round(r_ref, 3),
               "flat": flat}
    text = "n/a" if r_first is None else f"{r_first:.2f}"
    line = (f"overhead flat? {'yes' if flat else 'NO'}: window {len(wins)} / window 1 = {text} "
            f"({last:.3f} vs {first:.3f} s/trial)")
    if len(wins) >= 3:
        text = "n/a" if r_ref is None else f"{r_ref:.2f}"
        line += f"; window {len(wins)} / window 2 (steady state) = {text} ({ref:.3f} s/trial)"
    return line, figures


# ---------------------------------------------------------------------------- main
def main(argv=None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench_long_run_") as tmp:
        results = Path(args.results).expanduser().resolve() if args.results else Path(tmp)
        results.mkdir(parents=True, exist_ok=True)
        folder = results / NAME
        if folder.exists():
            sys.exit(f"{folder} exists already: pass another --results")
        log_path = results / f"{NAME}_driver.log"
        free = psutil.disk_usage(str(results)).free / MB
        if free < DISK_PER_TRIAL_MB * args.trials:
            print(f"warning: {free / 1024:.1f} GB free under {results}; the search keeps each "
                  f"trial's model, about {DISK_PER_TRIAL_MB} MB a trial here "
                  f"({DISK_PER_TRIAL_MB * args.trials / 1024:.1f} GB)", file=sys.stderr)
        command = search_command(args, results)
        print(f"search of {args.trials} trials ({args.model}, {args.train_subset} images of "
              f"{args.image_size} px, {args.epochs} epoch(s)), sampler {args.sampler}, "
              f"max {args.max_concurrent} at once; milestones "
              f"{','.join(map(str, args.marks))}", flush=True)
        print(f"driver log: {log_path}" + ("" if args.results else " (deleted at the end)"),
              flush=True)
        wall_start = datetime.now()  # Optuna's timestamps are naive local time, as this
        started = time.monotonic()
        with open(log_path, "w") as log:
            proc = subprocess.Popen(command, cwd=results, env=child_env(), stdout=log,
                                    stderr=subprocess.STDOUT, start_new_session=True)
            try:
                records, series, peak = monitor(proc, folder / "optuna.db", args.marks,
                                                args.interval, args.timeout, started)
            except KeyboardInterrupt:
                stop(proc)
                raise
            rc = proc.wait()
        command_s = time.monotonic() - started
        disk = disk_mb(folder)
        driver_log = log_path.read_text(errors="replace")
        if rc != 0 or not (folder / "optuna.db").exists():
            print(f"the search exited with {rc}; the end of its output:\n"
                  + driver_log[-3000:], file=sys.stderr)
            if not (folder / "optuna.db").exists():
                return 1
        cpus = re.search(r"^Ray: (\d+) CPUs", driver_log, re.M)
        concurrency = min(args.max_concurrent, int(cpus.group(1)) if cpus else
                          args.max_concurrent)
        trials, first_start = trials_of(folder / "optuna.db")
        if not trials:
            print("no trial finished", file=sys.stderr)
            return 1
        wins = windows(trials, first_start, args.marks, concurrency)
        startup = (first_start - wall_start).total_seconds()
        print(f"\n{len(trials)} trials finished ({sum(t['state'] == 'FAIL' for t in trials)} "
              f"failed) in {command_s:.0f}s; start-up (command to first trial) {startup:.1f}s; "
              f"mean trial wall time {sum(t['wall'] for t in trials) / len(trials):.2f}s; "
              f"concurrency {concurrency}; driver peak RSS (shutdown included) {peak:.0f} MB; "
              f"results folder {disk:.0f} MB on disk ({disk / len(trials):.1f} MB a trial)")
        print(f"{'trials':>6} {'elapsed s':>9} {'RSS MB':>7} {'peak MB':>7} {'USS MB':>7} "
              f"{'Ray MB':>7} | {'window':>9} {'overhead s/trial':>16} {'trials/min':>10}")
        by_mark = {r["milestone"]: r for r in records}
        for i, mark in enumerate(args.marks):
            r = by_mark.get(mark, {})
            w = wins[i] if i < len(wins) else {}
            end = trials[mark - 1]["complete"] if mark <= len(trials) else None
            elapsed = (end - wall_start).total_seconds() if end else None

            def f(value, spec):
                return format(value, spec) if value is not None else "-"

            print(f"{mark:>6} {f(elapsed, '9.1f')} {f(r.get('rss_mb'), '7.1f')} "
                  f"{f(r.get('peak_rss_mb'), '7.1f')} {f(r.get('uss_mb'), '7.1f')} "
                  f"{f(r.get('ray_rss_mb_window_max'), '7.0f')} | {w.get('window', '-'):>9} "
                  f"{f(w.get('overhead_s_per_trial'), '16.3f')} "
                  f"{f(w.get('trials_per_min'), '10.1f')}")
            if r:
                r["elapsed_s"] = None if elapsed is None else round(elapsed, 2)
        print("(RSS, peak, USS: the driver process alone. Ray MB, context only: total RSS of "
              "the driver's Ray\n child processes, largest 5-s sample in the window; shared "
              "pages count once per process)\n")
        mem_line, mem = memory_verdict(records)
        ovh_line, ovh = overhead_verdict(wins)
        print(mem_line)
        print(ovh_line)
        if args.out:
            settings = {k: v for k, v in vars(args).items() if k not in ("out", "marks")}
            figures = {"settings": {**settings, "milestones": args.marks},
                       "command": command[1:], "exit_code": rc, "command_s": round(command_s, 1),
                       "startup_s": round(startup, 2), "concurrency": concurrency,
                       "finished": len(trials),
                       "failed": sum(t["state"] == "FAIL" for t in trials),
                       "driver_peak_rss_mb": round(peak, 1), "results_disk_mb": round(disk),
                       "milestones": records,
                       "windows": wins, "memory": mem, "overhead": ovh,
                       "series": [{"s": s, "finished": n, "rss_mb": m, "ray_rss_mb": r}
                                  for s, n, m, r in series]}
            Path(args.out).write_text(json.dumps(figures, indent=2) + "\n")
            print(f"figures: {args.out}")
        return 0 if rc == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
