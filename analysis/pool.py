"""Several searches of one design pooled into one verdict: their replicates together.

``python -m analysis --results A B C`` reads each search (``load.load_results``) and pools
them when they are replicates of the same experiment: the same model, datasets, regimes and
level design (levels, trials, baselines, fresh seeds, replicates, sampler, epochs, early stop
and every setting that shapes a result, the seed aside), and no trial seed in common (searches
run with different ``--seed`` values draw disjoint seed blocks, ``hpo_prune.levels``). Each
search's studies keep their names, prefixed with the search's position ("2:") where two
searches share a name, so every replicate stays its own unit (``StudyResult.unit``).
Anything else is refused with one line naming what differs.
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pandas as pd

from hpo_prune.errors import UsageError
from hpo_prune.results.search_record import SearchRecord

from .load import Results

# search.json keys that make searches replicates of one design ("settings" is compared too,
# without its seed)
DESIGN = ("model", "datasets", "regimes", "levels", "trials", "baseline_seeds", "confirm",
          "replicates", "first_run", "sampler", "epochs", "early_stop")


def _flat(search: SearchRecord) -> dict:
    """The design of a search: DESIGN, then its settings but the seed."""
    out = {key: getattr(search, key) for key in DESIGN}
    out.update((key, list(value)) for key, value in out.items() if isinstance(value, tuple))
    out.update((k, v) for k, v in search.settings.items()
               if k != "seed" and k not in out)
    return out


def _seeds(results: Results) -> set[int]:
    return {int(s) for s in pd.to_numeric(results.trials["seed"], errors="coerce").dropna()}


def pool(parts: list[Results], names: list[str]) -> Results:
    """One Results of ``parts`` (their results directories named ``names``), or a UsageError
    naming why they cannot be pooled."""
    first, where = parts[0], names[0]
    for part, name in zip(parts, names):
        if not part.search:
            raise UsageError(f"--results {name} has no search.json: only whole searches pool "
                             "(pass the results directories written by "
                             "python -m hpo_prune.search)")
        if not part.search.levels or not part.search.replicates:
            raise UsageError(f"--results {name} is not a replicated level search (run with "
                             "--levels and --replicates): only those pool into one verdict")
    mine = _flat(first.search)
    for part, name in zip(parts[1:], names[1:]):
        theirs = _flat(part.search)
        for key in sorted(set(mine) | set(theirs)):
            if mine.get(key) != theirs.get(key):
                raise UsageError(f"--results {name} differs from {where} in {key} "
                                 f"({theirs.get(key)} vs {mine.get(key)}): only searches of "
                                 "one design pool; analyse them apart")
    seen: dict[int, str] = {}
    for part, name in zip(parts, names):
        for seed in sorted(_seeds(part)):
            if seed in seen:
                raise UsageError(f"--results {name} and {seen[seed]} share trial seed {seed}: "
                                 "they were run with the same --seed, so their replicates are "
                                 "not independent; pool searches run with different --seed "
                                 "values")
        seen.update((seed, name) for seed in _seeds(part))
    studies = [s for part in parts for s in part.studies]
    clash = len(studies) != len(set(studies))
    frames = []
    for i, part in enumerate(parts, start=1):
        frame = part.trials.copy()
        if clash:
            frame["study"] = f"{i}:" + frame["study"]
        frames.append(frame)
    trials = pd.concat(frames, ignore_index=True)
    search = replace(first.search, replicates=sum(p.search.replicates for p in parts),
                     pooled=tuple(str(Path(n)) for n in names))
    return Results(trials, "pooled searches " + ", ".join(names), None,
                   sorted(set(trials["study"])), search, None,
                   [n for p in parts for n in p.notes]
                   + [f"{len(parts)} searches pooled: {', '.join(names)} "
                      f"({search.replicates} replicates in all)"])
