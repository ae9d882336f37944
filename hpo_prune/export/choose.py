"""Which trial an export takes: ``--trial N``, or ``--pick within-Xpt``, the analysis's own
selection rule (``analysis.selection``, through ``analysis.summary.analyse_study``: the
configuration that removes the most parameters with a mean val accuracy within X points of the
mean of the study's baseline runs; test accuracy never takes part). The trials come from the
results folder as the analysis reads them (``analysis.load_results``), and a trial's model
from its ``model_dir``; a model that ``--keep-models`` removed is refused with which setting
would have kept it (as the search recorded its front rule: ``results.record``).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ..errors import UsageError
from ..results.files import model_file
from ..results.record import DEFAULT_KEEP, FRONT_KEEPS
from analysis.selection import TOLERANCES

PICKS = {f"within-{100 * x:g}pt": x for x in TOLERANCES}  # --pick: the analysis's own


@dataclass
class Chosen:
    study: str
    row: pd.Series  # the trial's row of the trials table
    picked: dict | None  # --pick: the rule and what it selected; None for --trial
    trials: pd.DataFrame  # every trial of the study

    @property
    def number(self) -> int:
        return int(self.row["trial"])


def load(results: str | Path):
    from analysis.load import load_results

    return load_results(results)


def study_of(results, name: str | None) -> str:
    """The study ``name`` names (its full name, or a unique ending after a dot such as
    ``digits.pretrained``); the only one when None."""
    known = sorted(set(results.trials["study"]))
    if name is None:
        if len(known) == 1:
            return known[0]
        raise UsageError(f"{results.directory} holds {len(known)} studies: pass --study with "
                         f"one of {', '.join(known)}")
    found = [s for s in known if s == name] or [s for s in known if s.endswith("." + name)]
    if len(found) != 1:
        what = "is ambiguous" if found else "is not a study of the search"
        raise UsageError(f"--study {name!r} {what}: use one of {', '.join(known)}")
    return found[0]


def choose(results, study: str, trial: int | None, pick: str | None) -> Chosen:
    trials = results.trials[results.trials["study"] == study].reset_index(drop=True)
    picked = None
    if pick is not None:
        trial, picked = _pick(study, trials, pick)
    rows = trials[trials["trial"] == trial]
    if rows.empty:
        raise UsageError(f"study {study} has no trial {trial}: its trials are "
                         f"{int(trials['trial'].min())} to {int(trials['trial'].max())}")
    row = rows.iloc[0]
    if row["state"] != "COMPLETE":
        reason = f" ({row['fail_reason']})" if row.get("fail_reason") else ""
        raise UsageError(f"trial {trial} of {study} is {row['state']}{reason}: only COMPLETE "
                         "trials have a trained model; pick a COMPLETE one (trials.csv)")
    return Chosen(study, row, picked, trials)


def _pick(study: str, trials: pd.DataFrame, pick: str) -> tuple[int, dict]:
    from analysis.summary import analyse_study

    tolerance = PICKS[pick]
    result = analyse_study(study, trials, tolerances=(tolerance,), n_boot=0)
    if result.reference is None:
        raise UsageError(f"--pick {pick} needs the study's unpruned reference and {study} has "
                         f"none ({result.baseline_note}); pass --trial N instead")
    chosen = result.selections[0]
    ref = result.reference
    return chosen.trial, {
        # as in the analysis's table: the rule still selects, but says it means little
        "note": "" if result.meaningful else ref.untrained_note,
        "rule": f"largest fraction of parameters removed with a mean val accuracy within "
                f"{100 * tolerance:g} pt of the reference (analysis.selection)",
        "pick": pick, "tolerance": tolerance,
        "reference": {"val_acc": ref.val_acc, "test_acc": ref.test_acc,
                      "trials": ref.trials},
        "configuration": {"trial": chosen.trial, "removed": chosen.removed,
                          "val_acc": chosen.val_acc, "test_acc": chosen.test_acc,
                          "test_acc_std": None if pd.isna(chosen.test_std) else chosen.test_std,
                          "n_seeds": chosen.n_seeds}}


def model_folder(results, chosen: Chosen) -> Path:
    """The folder holding the chosen trial's model; UsageError when it is not there."""
    row, where = chosen.row, f"trial {chosen.number} of {chosen.study}"
    path = model_file(row["model_dir"] or None, results.directory)
    if path is None:
        raise UsageError(f"{where} records no model folder (model_dir is empty): its search "
                         "kept no model of it; run its settings again with "
                         "python -m hpo_prune.train")
    if path.is_file():
        return path.parent
    keep = results.search.keep_models if results.search else DEFAULT_KEEP
    # what the search recorded of its front rule (record.front_keeps); unknown for searches
    # from before the record: all keeps every model
    kept = row.get(FRONT_KEEPS)
    would = "front" if pd.notna(kept) and bool(kept) else "all"
    if keep == "all" or keep == would:
        raise UsageError(f"{where}: its model file {path} is missing (moved or deleted: "
                         f"--keep-models {keep} keeps it); pass the results folder that holds "
                         "its tune/ folder")
    raise UsageError(f"{where}: its model was not kept (the search ran with --keep-models "
                     f"{keep}); --keep-models {would} would have kept it: run the search with "
                     "it, or the trial's settings with python -m hpo_prune.train")
