"""Parameter importances on the Optuna pages: a 2-objective study where each objective is a
deterministic function of a different parameter (and a third parameter matters to neither)
gives that parameter nearly all the importance, for each objective, from the trial count the
pages draw importances at; below it the plots are skipped with a note."""
import math
import warnings

import optuna
import pytest
from optuna.importance import get_param_importances

from analysis.optuna_pages import MIN_IMPORTANCE_TRIALS, importance_evaluator, study_page

TITLES = ("Parameter importances for val_acc (fANOVA)",
          "Parameter importances for remaining_fraction (fANOVA)")


def two_objective_study(n_trials: int, seed: int) -> optuna.Study:
    """val_acc depends on lr only (peaked at 1e-2), remaining_fraction on prune_ratio only;
    schedule is irrelevant to both."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(directions=["maximize", "minimize"],
                                sampler=optuna.samplers.RandomSampler(seed=seed))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names(["val_acc", "remaining_fraction"])

    def objective(trial):
        prune_ratio = trial.suggest_float("prune_ratio", 0.0, 0.99)
        lr = trial.suggest_float("lr", 1e-3, 0.1, log=True)
        trial.suggest_categorical("schedule", ["agp", "one_shot", "iterative"])
        return 0.9 - 0.1 * (math.log10(lr) + 2) ** 2, 1.0 - prune_ratio

    study.optimize(objective, n_trials=n_trials)
    return study


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_each_objective_s_own_parameter_gets_the_importance(seed):
    study = two_objective_study(MIN_IMPORTANCE_TRIALS, seed)
    for i, parameter in ((0, "lr"), (1, "prune_ratio")):
        importances = get_param_importances(study, evaluator=importance_evaluator(),
                                            target=lambda t: t.values[i])
        assert importances[parameter] >= 0.8, (i, importances)
        assert max(importances, key=importances.get) == parameter


def test_pages_draw_importances_only_from_enough_trials(tmp_path):
    few = study_page(two_objective_study(MIN_IMPORTANCE_TRIALS - 1, 0), tmp_path / "few.html",
                     "few")
    for title in TITLES:
        assert few[title].startswith(f"skipped: {MIN_IMPORTANCE_TRIALS - 1} completed trial(s), "
                                     f"this plot needs {MIN_IMPORTANCE_TRIALS} (importances "
                                     "from fewer trials were measured to be unreliable)")
    enough = study_page(two_objective_study(MIN_IMPORTANCE_TRIALS, 0), tmp_path / "ok.html",
                        "enough")
    assert all(enough[title] == "" for title in TITLES)
    assert "fANOVA" in (tmp_path / "ok.html").read_text()
