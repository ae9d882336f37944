"""The search's own code as the replay drives it: its space, designs, studies, samplers,
resolution and early stopping, imported from the project (never copied), with the Tune trial
the scheduler sees."""
from __future__ import annotations

import types
import warnings

from replay_table import Table


def project() -> types.SimpleNamespace:
    """The search's own modules (imported here so that --help stays fast)."""
    import optuna

    from hpo_prune.resolution import resolve_trial
    from hpo_prune.search.studies.designs import design_of
    from hpo_prune.search.studies.study import open_study
    from hpo_prune.settings import TrialConfig

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    return types.SimpleNamespace(optuna=optuna, resolve_trial=resolve_trial, spaces=Spaces,
                                 design_of=design_of, open_study=open_study,
                                 TrialConfig=TrialConfig)


class Spaces:
    """``search.studies.space.load``, each space read and checked once per process."""
    loaded: dict = {}

    @classmethod
    def load(cls, name, model):
        from hpo_prune.search.studies import space

        if (name, model) not in cls.loaded:
            cls.loaded[name, model] = space.load(name, model)
        return cls.loaded[name, model]


def base_config(table: Table, regime: str, seed: int):
    return project().TrialConfig(model=table.model, dataset="digits", init=regime,
                                 epochs=table.epochs, seed=seed, precision=table.precision)


def new_study(table: Table, regime: str, seed: int, space, sampler: str, target: int,
              levels: tuple = (), first_run: str = "sampler"):
    """(plan, design): a new in-memory study of ``regime`` as the search opens one, its design
    built by the search's own ``design_of`` (one baseline, no confirmation runs; with levels,
    each level's first run ``first_run``, as ``--first-run``)."""
    p = project()
    design = p.design_of(space, sampler, seed, target, baseline_seeds=1, confirm=0,
                         levels=levels, first_run=first_run)
    plan = p.open_study(p.optuna.storages.InMemoryStorage(), f"replay.{regime}",
                        base_config(table, regime, seed), design)
    return plan, design


def early_stopping(table: Table, design):
    """The search's scheduler as the search builds it for this design."""
    from hpo_prune.search.tuning.scheduler import for_design

    return for_design(table.epochs, design)


def tune_stub(plan, trial, config):
    """The Tune trial the scheduler sees: the config the searcher hands Tune."""
    from hpo_prune.search.tuning.messages import TuneTrial
    from ray.tune.experiment import Trial

    return Trial("trainable", config=TuneTrial(plan.name, trial.number, None, config).to_tune(),
                 stub=True)


def stopped_at(scheduler, plan, trial, config, row: dict, epochs: int) -> int:
    """The epoch at which ``scheduler`` stops a run that trains alone (0: it runs to its
    end), fed the run's per-epoch val accuracy."""
    from ray.tune.schedulers import TrialScheduler

    if scheduler is None:
        return 0
    stub = tune_stub(plan, trial, config)
    scheduler.on_trial_add(None, stub)
    for epoch in range(1, epochs):
        if scheduler.on_trial_result(None, stub, {"epoch": epoch, "val_acc": row[
                f"val_acc_{epoch}"]}) == TrialScheduler.STOP:
            scheduler.on_trial_remove(None, stub)
            return epoch
    scheduler.on_trial_complete(None, stub, {})
    return 0
