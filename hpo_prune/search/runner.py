"""Running a search: data and pre-trained weights prepared once in the driver, the studies
opened, Ray started (or joined), one Tune experiment over all studies, trials.csv kept fresh."""
from __future__ import annotations

import logging
import os
import secrets
import time
import warnings
from pathlib import Path

import optuna

from .. import sources
from ..data import datasets, folder
from ..files import remove_stale_temporaries
from ..results import trials_table
from ..results.files import TRIALS_FILE, TUNE_DIR
from ..results.search_record import SearchRecord, StudyRecord
from ..resolution import resolve_data, resolve_trial, source_of
from ..settings import TrialConfig
from ..errors import UsageError
from .studies.keep import remove_models
from ..results.record import is_confirmation
from .search_settings import Cluster, SearchSettings
from ..results.storage import open_storage
from .studies.study import Mode, open_study, study_name, tally
from .tuning.messages import TuneTrial


def log(line: str) -> None:
    print(line, flush=True)


def prepare(configs: dict[tuple[str, str], TrialConfig]) -> tuple[dict, dict]:
    """Load each dataset once, and the pretrained weights once per dataset (building the
    fractal checkpoint now, before any trial waits for it); trials get both from Ray's object
    store, so no node reads or trains them again."""
    data, weights = {}, {}
    for (dataset, regime), config in configs.items():  # dataset: as config.data.dataset
        if dataset not in data:
            started = time.time()
            data[dataset] = datasets.load(resolve_data(config.data))
            d = data[dataset]
            log(f"{dataset}: {len(d.train)} train / {len(d.val)} val / {len(d.test)} test "
                f"images, {d.num_classes} classes ({time.time() - started:.1f}s)")
        if regime == "pretrained":
            log(f"pretrained weights for {config.net.model}: source "
                f"{source_of(config.weights, dataset)}")
            weights[dataset] = sources.load_weights(resolve_trial(config))
    return data, weights


def start_ray(cluster: Cluster) -> None:
    import ray

    if cluster.dashboard:
        import importlib.util

        if importlib.util.find_spec("aiohttp") is None:  # installed with ray[default] only
            raise UsageError("--dashboard needs Ray's dashboard: pip install -e "
                             "'.[dashboard]'")
    # trials report through Tune; their own log lines stay in Ray's log files
    kwargs = {"include_dashboard": cluster.dashboard, "log_to_driver": False}
    if cluster.dashboard:
        kwargs["dashboard_host"] = cluster.dashboard_host
    try:
        context = ray.init(address=cluster.address, **kwargs)
    except (ConnectionError, RuntimeError, ValueError) as err:
        where = cluster.address or "a local Ray instance"
        first = (str(err).strip().splitlines() or [type(err).__name__])[0].rstrip(".")
        raise UsageError(f"cannot start or reach {where}: {first}; check --address (e.g. "
                         "127.0.0.1:6379) and that the cluster is up") from None
    resources = ray.cluster_resources()
    log(f"Ray: {int(resources.get('CPU', 0))} CPUs, {resources.get('GPU', 0):g} GPUs, "
        f"{len([n for n in ray.nodes() if n.get('Alive')])} node(s)")
    if cluster.dashboard:
        url = getattr(context, "dashboard_url", None)
        log(f"Ray dashboard: http://{url}" if url else "Ray dashboard: not started (see Ray's "
            "log above)")
        token = Path.home() / ".ray" / "auth_token"
        if os.environ.get("RAY_AUTH_MODE", "token") != "disabled" and token.exists():
            log(f"  Ray's token authentication is on: the dashboard asks for the token "
                f"stored in {token} (cat it, or set RAY_AUTH_TOKEN)")


def run_search(search: SearchSettings) -> int:
    """Run ``search`` to its end (or until interrupted); the exit status: 0 done, 1 not
    finished or short of its trials because of failures."""
    # our own progress view and one-line failure reasons replace Tune's tables and tracebacks
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    os.environ.setdefault("TUNE_PRINT_ALL_TRIAL_ERRORS", "0")
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    logging.getLogger("ray.tune.tune").setLevel(logging.CRITICAL)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    design, folder, join = search.design, search.folder, search.mode is Mode.JOIN
    storage = open_storage(search.storage_url)  # a bad URL fails before minutes of preparation
    data, weights = prepare(search.base)
    # drivers sharing studies (--join) must not draw the same suggestions: each joining one
    # adds its own offset to the sampler seed (recorded in search.json)
    offset = secrets.randbelow(2**30) if join else 0
    plans = [open_study(storage, study_name(search.name, c.net.model, c.data.dataset,
                                            c.weights.init, r), c, d, search.mode, offset, r)
             for r, c, d in sorted((item for base in search.base.values()
                                    for item in design.replicated(base)),
                                   key=lambda item: item[0] or 0)]
    _write_record(search, plans, offset)
    csv_path = folder / TRIALS_FILE
    remove_stale_temporaries(csv_path)  # a driver killed while writing it left one

    def refresh() -> None:  # the models --keep-models removes go first: model_kept says so
        for plan in plans:
            removed = remove_models(plan, folder, search.keep_models)
            if removed:
                log(f"{plan.name}: removed the model of trial(s) "
                    f"{', '.join(f'#{n}' for n in removed)} (--keep-models "
                    f"{search.keep_models})")
        trials_table.write(csv_path, [p.study for p in plans])

    for plan in plans:  # a resumed study whose main trials are done: its missing confirmations
        plan.queue_confirmations()
    refresh()
    if not any(_to_run(p) for p in plans):  # finished, or running in other drivers
        log(f"every study already has {search.trials} finished or running trials and its "
            "confirmation runs: nothing to run")
        return _finish(folder, search.storage_url, plans, interrupted=False, join=join)

    start_ray(search.cluster)
    searcher, interrupted = _tune(search, plans, data, weights, refresh)
    failed = _report_failures(searcher, plans)
    # done when finished + RUNNING (other drivers' trials, with --join) reach the target and
    # no confirmation run waits
    interrupted = interrupted or any(_to_run(p) for p in plans)
    refresh()
    return _finish(folder, search.storage_url, plans, interrupted, join=join, failed=failed)


def _write_record(search: SearchSettings, plans, offset: int) -> None:
    """search.json: what the search is (read by --resume, the analysis and the export)."""
    design = search.design
    SearchRecord(
        name=search.name, model=search.model, datasets=tuple(search.datasets),
        regimes=tuple(search.regimes), storage=search.storage_url, seed=design.seed,
        join=search.mode is Mode.JOIN, seed_offset=offset, sampler=design.sampler,
        trials=design.target, epochs=search.epochs, baseline_seeds=design.baseline_seeds,
        confirm=design.confirm, levels=tuple(design.levels), replicates=design.replicates,
        first_run=design.first_run,
        keep_models=search.keep_models, early_stop=search.early_stop, preset=search.preset,
        space=str(design.space.path), settings=search.shaping,
        studies=tuple(StudyRecord(name=p.name, model=p.base.net.model,
                                  dataset=folder.label(p.base.data.dataset),
                                  regime=p.base.weights.init,
                                  source=source_of(p.base.weights, p.base.data.dataset),
                                  replicate=p.replicate, seed=p.base.train.seed)
                      for p in plans)).write(search.folder)


def _tune(search: SearchSettings, plans, data: dict, weights: dict, refresh):
    """One Tune experiment over every study; returns the searcher and whether Ctrl-C ended
    it."""
    import ray
    from ray import tune

    from .tuning.progress import Progress
    from .tuning.scheduler import for_design
    from .tuning.searcher import StudySearcher
    from .tuning.trainable import trainable

    design, cluster, folder = search.design, search.cluster, search.folder
    scheduler = for_design(search.epochs, design) if search.early_stop == "asha" else None
    searcher = StudySearcher(plans, stopped_early=scheduler.stopped if scheduler else None,
                             on_change=refresh, max_failures=max(3, design.target),
                             # drivers sharing a study (--join) each have their own folder:
                             # their trials' model_dir stays absolute, naming which
                             results=None if search.mode is Mode.JOIN else folder)
    refs = {name: ray.put(d) for name, d in data.items()}
    weight_refs = {name: ray.put(w) for name, w in weights.items()}
    resources = {"cpu": cluster.cpus_per_trial, "gpu": cluster.gpus_per_trial}
    tune_dir = folder / TUNE_DIR
    run_name = f"run-{len(list(tune_dir.glob('run-*'))) + 1}" if tune_dir.exists() else "run-1"
    precisions = "/".join(sorted({c.train.precision for c in search.base.values()}))
    replicates = f" x {design.replicates} replicates" if design.replicates else ""
    log(f"search {search.name}: {len(plans)} studies ({len(search.datasets)} dataset(s) x "
        f"{len(search.regimes)} regime(s){replicates}), {design.describe()}; {search.epochs} "
        f"epochs each in {precisions}, early stop {search.early_stop} -> {folder}")
    tuner = tune.Tuner(
        tune.with_resources(tune.with_parameters(trainable, data_refs=refs,
                                                 weight_refs=weight_refs), resources),
        tune_config=tune.TuneConfig(search_alg=searcher, scheduler=scheduler, num_samples=-1,
                                    max_concurrent_trials=cluster.max_concurrent,
                                    reuse_actors=True,  # no process start + imports per trial
                                    trial_name_creator=_trial_name,
                                    trial_dirname_creator=_trial_name),
        run_config=tune.RunConfig(
            name=run_name, storage_path=str(tune_dir), verbose=0,
            callbacks=[Progress(searcher, out=log)],
            failure_config=tune.FailureConfig(max_failures=cluster.retries),
            checkpoint_config=tune.CheckpointConfig(num_to_keep=1)))
    interrupted = False
    try:
        tuner.fit()
    except KeyboardInterrupt:
        interrupted = True
    searcher.flush()
    return searcher, interrupted


def _report_failures(searcher, plans) -> bool:
    """Say which studies cannot reach their target by running on (--resume won't help)."""
    failed = False
    for plan in plans:
        if searcher.failures[plan.name] >= searcher.max_failures:
            log(f"{plan.name}: stopped after {searcher.failures[plan.name]} failed trials "
                "(see fail_reason in trials.csv)")
            failed = True
        elif plan.exhausted() and plan.busy() < plan.target:
            log(f"{plan.name}: every grid point has run; {plan.target - plan.busy()} failed "
                "(see fail_reason in trials.csv) and are not run again")
            failed = True
        lost = plan.tally().confirm_failed
        if lost:
            log(f"{plan.name}: {lost} confirmation run(s) failed (see fail_reason in "
                "trials.csv) and are not run again")
            failed = True
    return failed


def _to_run(plan) -> bool:
    """Work left for a driver: main trials short of the target (finished + RUNNING ones, so
    other drivers' running trials count as done), or confirmation runs queued."""
    counts = plan.tally()
    return plan.main_open(counts) or counts.confirm_waiting > 0


def _trial_name(trial) -> str:
    return f"{TuneTrial.of(trial.config).name}_{trial.trial_id}"


def _finish(folder: Path, storage_url: str, plans, interrupted: bool, join: bool = False,
            failed: bool = False) -> int:
    from .tuning.progress import front

    log("")
    for plan in plans:
        trials = plan.study.get_trials(deepcopy=False)
        counts = tally(trials)
        points = front([t for t in trials if t.values and not is_confirmation(t)])
        others = counts.running + counts.confirm_running
        running = f", {others} running in other drivers" if others else ""
        confirm = (f", confirmation runs {counts.confirm_done}/{counts.confirm_total} done"
                   if counts.confirm_total else "")
        log(f"{plan.name}: {counts.finished}/{plan.target} finished{running}{confirm}; "
            "Pareto front (val_acc, params left): "
            + (", ".join(f"{a:.3f} @ {r:.1%}" for a, r in points) or "none yet"))
    log(f"\ntrials: {folder / 'trials.csv'}")
    log(f"analysis: python -m analysis --results {folder}")
    log(f"Optuna dashboard: optuna-dashboard {storage_url}  (pip install -e '.[dashboard]'; "
        "serves on 127.0.0.1:8080)")
    if failed:
        log("the search ended short of --trials because of failed trials: fix their cause "
            "(fail_reason), then run it again under a new --name")
        return 1
    if interrupted and join:
        log("the search did not finish: continue it with the same command (--join); once no "
            "driver runs, --resume also re-runs the trials a killed driver left RUNNING")
        return 1
    if interrupted:
        log("the search did not finish: continue it with the same command plus --resume")
        return 1
    return 0
