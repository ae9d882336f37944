"""The live view of a search in the terminal: one line per finished trial, and every few
seconds a status block per study (finished / running / failed, confirmation runs done / queued,
the front so far, elapsed and estimated time left). Also forwards the reason of a crashed
trial, and where Tune put each checkpoint, to the searcher."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import optuna
from ray.tune import Callback

from ...objectives import non_dominated
from .searcher import StudySearcher
from ..studies.study import is_confirmation, tally
from .messages import Report, TuneTrial

State = optuna.trial.TrialState


def front(trials) -> list[tuple[float, float]]:
    """Non-dominated (val_acc, remaining_fraction) points, densest first."""
    points = [(t.values[0], t.values[1]) for t in trials if t.values]
    kept = [p for p, on in zip(points, non_dominated(points)) if on] if points else []
    return sorted(kept, key=lambda p: (-p[1], -p[0]))


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600:d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


class Progress(Callback):
    def __init__(self, searcher: StudySearcher, interval: float = 20.0,
                 out: Callable[[str], None] = print):
        self.searcher, self.interval, self.out = searcher, interval, out
        self.started = time.time()
        self.last = 0.0
        self.done_before = {name: self._done(plan.tally())
                            for name, plan in searcher.plans.items()}

    @staticmethod
    def _done(counts) -> int:
        return counts.finished + counts.confirm_done

    def status(self, tune_trials=()) -> str:
        running = {}
        for t in tune_trials:
            if t.status == "RUNNING":
                study = TuneTrial.of(t.config).study
                running[study] = running.get(study, 0) + 1
        lines, finished_now, remaining = [], 0, 0
        for name, plan in self.searcher.plans.items():
            trials = plan.study.get_trials(deepcopy=False)
            counts = tally(trials)
            finished_now += self._done(counts) - self.done_before[name]
            remaining += (max(plan.target - counts.finished, 0)
                          + counts.confirm_total - counts.confirm_done)
            points = " ".join(f"{acc:.3f}@{rem:.0%}" for acc, rem in
                              front([t for t in trials if t.state == State.COMPLETE
                                     and not is_confirmation(t)])[:5])
            confirm = (f", confirm {counts.confirm_done}/{counts.confirm_total}"
                       if counts.confirm_total else "")
            lines.append(f"  {name}: {counts.finished}/{plan.target} finished{confirm}, "
                         f"{running.get(name, 0)} running, {counts.failed} failed, "
                         f"{counts.pruned} stopped early{plan.design.progress(trials)} | "
                         f"front (val_acc@params): {points or '-'}")
        elapsed = time.time() - self.started
        eta = (f"~{_clock(elapsed / finished_now * remaining)} left" if finished_now
               else "estimating time left")
        return "\n".join([f"[{_clock(elapsed)} elapsed, {eta}]"] + lines)

    def on_step_end(self, iteration, trials, **info):
        now = time.time()
        if now - self.last >= self.interval:
            self.last = now
            self.out(self.status(trials))

    def on_trial_complete(self, iteration, trials, trial, **info):
        result, spec = Report.of(trial.last_result), TuneTrial.of(trial.config)
        config = spec.config
        val, left = result.values if result.final else (0, 0)
        what = (f"val_acc {val:.4f}, test_acc {result.get('test_acc', 0):.4f}, "
                f"{left:.1%} params left" if result.final else
                f"failed: {result.fail_reason}" if result.fail_reason else
                f"stopped after epoch {result.epoch}")
        if spec.confirms is not None:
            what += f" (confirms #{spec.confirms}, seed {config.train.seed})"
        self.out(f"{spec.study} #{spec.number} (prune_ratio {config.prune.prune_ratio:.2f}, "
                 f"{config.prune.schedule}, lr {config.train.lr:.1e}): {what}")

    def on_checkpoint(self, iteration, trials, trial, checkpoint, **info):
        self.searcher.record_checkpoint(trial.trial_id, checkpoint.path)

    def on_trial_error(self, iteration, trials, trial, **info):
        reason = "the trial raised an error"
        try:
            text = Path(trial.error_file).read_text().strip().splitlines()
            reason = next(line for line in reversed(text) if line.strip())
        except (OSError, TypeError, StopIteration):
            pass
        self.searcher.record_error(trial.trial_id, reason)
        spec = TuneTrial.of(trial.config)
        self.out(f"{spec.study} #{spec.number}: FAILED: {reason}")
