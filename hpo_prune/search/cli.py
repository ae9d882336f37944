"""The search: Ray Tune runs the trials, Optuna samples them, for both init regimes.

    python -m hpo_prune.search --model vgg16

runs the embedded default (digits, both regimes, fractal pre-training for `pretrained`) at the
quick preset. One Optuna study per (model, dataset, regime); all studies in one Tune
experiment. See --help for every flag.
"""
from __future__ import annotations

import argparse
import math
import shutil
import socket
import sys
from pathlib import Path

from ..resolution import check_names, precision_of
from ..settings import TrainSettings, TrialConfig
from ..errors import ArgumentParser, UsageError, check, cli_main
from ..files import slug
from ..results import search_record
from ..results.files import SEARCH_FILE, STORAGE_FILE
from ..results.record import DEFAULT_KEEP, KEEP_MODELS, queued_baselines
from ..results.search_record import SearchRecord
from ..objectives import REGIMES
from .search_settings import Cluster, SearchSettings
from ..levels import FIRST_RUNS, check_levels, check_replicates
from .studies.designs import Design, design_of
from .studies.study import Mode, recipe_params

# trials: per study (one per regime and replicate), the unpruned baselines included; levels:
# pruning levels (fractions of weights removed) every pruned trial is assigned, shared by both
# regimes; confirm: fresh seeds that value each level's chosen configuration (0: one run per
# level values itself); replicates: independent runs of that whole design per regime, the
# verdict's unit (hpo_prune.levels, analysis.levels). quick: 5 replicates of 1 baseline + 1
# run per level, 30 trainings: the smallest design whose simulated digits searches are
# informative at 80% and 95% in >= 80% of searches (docs/verdict.md)
PRESETS = {
    # first_run and early_stop as the replay of real trainings picked them (docs/evidence.md)
    "quick": {"dataset": ["digits"], "trials": 3, "epochs": 4, "early_stop": "none",
              "levels": (0.8, 0.95), "confirm": 0, "baseline_seeds": 1, "replicates": 5,
              "first_run": "sampler"},
    "paper": {"dataset": ["cifar10", "cifar100", "svhn", "caltech101"], "trials": 20,
              "epochs": 30, "early_stop": "none", "levels": (0.5, 0.8, 0.9, 0.95),
              "confirm": 3, "baseline_seeds": 3, "replicates": 3,
              "first_run": "recipe"},
}
CONFIRM_FRONT = 1  # --confirm of a continuous search (--levels none): seeds per front config
PRECISION_CHOICES = TrialConfig.field("precision").metadata["choices"]


def parser() -> ArgumentParser:
    p = ArgumentParser(
        prog="python -m hpo_prune.search",
        description="Multi-objective pruning search (val_acc up, remaining parameters down): one "
        "Optuna study per dataset and init regime, all trials scheduled by Ray Tune. Results "
        "go to RESULTS/NAME/: search.json, optuna.db, trials.csv and the Tune experiment.")
    p.add_argument("--model", default="vgg16", help="network to prune: vgg16, vgg16_bn, "
                   "mobilenet_v1, mobilenet_v2, or any timm:NAME / torchvision:NAME classifier "
                   "(default: %(default)s)")
    p.add_argument("--preset", default="quick", choices=sorted(PRESETS),
                   help=f"budget: 'quick' = digits, {PRESETS['quick']['trials']} trials x "
                   f"{PRESETS['quick']['epochs']} epochs per study "
                   f"({PRESETS['quick']['baseline_seeds']} baseline, one trial per level) in "
                   f"each of {PRESETS['quick']['replicates']} replicates (about 35 minutes on "
                   "2 CPU cores with native bf16, the pre-training included); "
                   f"'paper' = cifar10, cifar100, svhn, caltech101, "
                   f"{PRESETS['paper']['trials']} trials x {PRESETS['paper']['epochs']} "
                   f"epochs, each level's recipe then TPE's draws, "
                   f"{PRESETS['paper']['replicates']} replicates (default: %(default)s)")
    p.add_argument("--dataset", nargs="+", default=None,
                   help="one or more datasets: digits, cifar10, cifar100, svhn, caltech101, or "
                   "folder:PATH (your images, ImageFolder layout) (default: the preset's)")
    p.add_argument("--regimes", nargs="+", default=list(REGIMES), choices=REGIMES,
                   help="init regimes, each its own study (default: both)")
    p.add_argument("--source", default="", help="weights of the pretrained regime: imagenet, "
                   "fractal or a checkpoint path (default: fractal for digits, else imagenet)")
    p.add_argument("--trials", type=int, default=None,
                   help="trials that must finish per study, the unpruned baselines included "
                   "and the confirmation runs (--confirm) not (default: the preset's; with "
                   "--sampler grid, the grid's size)")
    p.add_argument("--epochs", type=int, default=None,
                   help="training epochs per trial (default: the preset's)")
    p.add_argument("--space", default=None, help="search space: a YAML file, or a name under "
                   "search_spaces/ (default: vgg.yaml or mobilenet.yaml by model; generic.yaml "
                   "for timm: / torchvision: models)")
    p.add_argument("--sampler", default="tpe", choices=("tpe", "nsga2", "random", "grid"),
                   help="Optuna sampler; 'grid' runs the space's grid values, e.g. the paper's "
                   "fixed sparsities with --space paper_grid (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of the samplers and of every trial (default: %(default)s); "
                   "baselines and confirmation runs add their own offset")
    p.add_argument("--baseline-seeds", type=int, default=None,
                   help="unpruned baseline trials queued first in every new study, with the "
                   "model family's default learning rate and the trial seeds --seed, --seed + "
                   "1, ...; they count toward --trials (at most --trials of them; not with "
                   "--sampler grid) (default: the preset's, quick "
                   f"{PRESETS['quick']['baseline_seeds']}, paper "
                   f"{PRESETS['paper']['baseline_seeds']}; --resume keeps the search's own)")
    p.add_argument("--levels", nargs="+", default=None, type=_level, metavar="LEVEL",
                   help="pruning levels, fractions of the prunable weights removed, e.g. 0.5 "
                   "0.8 0.9 0.95: every pruned trial gets one (round robin, the same levels, "
                   "order and trial seeds in both regimes) and the sampler chooses the rest; "
                   "each level's best run on val is then valued on --confirm fresh seeds and "
                   "the regimes are compared level by level. 'none' = the space's continuous "
                   "ratio and the Pareto-front confirmation (default: the preset's: quick "
                   f"{' '.join(map(str, PRESETS['quick']['levels']))}, paper "
                   f"{' '.join(map(str, PRESETS['paper']['levels']))}; none with --sampler "
                   "grid; --resume keeps the search's own)")
    p.add_argument("--confirm", type=int, default=None,
                   help="with --levels: fresh seeds each level's chosen configuration is re-run "
                   "with (its accuracy is their mean); without: once a study has its --trials "
                   "finished trials, re-run every configuration on its Pareto front (baselines "
                   "aside) with this many more seeds (the trial's seed + 1, + 2, ...). These "
                   "runs come on top of --trials; 0 = none (default: with levels the preset's, "
                   f"quick {PRESETS['quick']['confirm']}, paper {PRESETS['paper']['confirm']}; "
                   f"with --levels none {CONFIRM_FRONT})")
    p.add_argument("--replicates", type=int, default=None, metavar="R",
                   help="with --levels: independent replicates of the whole design per regime, "
                   "each with its own baselines, sampler seed and trial seeds (its own block "
                   "of seeds, shared by both regimes); the verdict's interval is built over "
                   "them (default: the preset's, quick "
                   f"{PRESETS['quick']['replicates']}, paper {PRESETS['paper']['replicates']};"
                   " 1 with --levels none; --resume keeps the search's own)")
    p.add_argument("--first-run", default=None, choices=FIRST_RUNS,
                   help="with --levels: each level's first search run. 'recipe' = the model "
                   "family's recipe (its default learning rate and schedule), the sampler "
                   "drawing the later runs, so one run per level is no tuning; 'sampler' = the "
                   "sampler draws every run (default: the preset's, quick "
                   f"{PRESETS['quick']['first_run']}, paper {PRESETS['paper']['first_run']}; "
                   "--resume keeps the search's own)")
    p.add_argument("--keep-models", default=None, choices=KEEP_MODELS,
                   help="which finished trials keep their model file: 'front' removes a "
                   "trial's model once another configuration of its study dominates it for "
                   "good (the unpruned baselines are always kept), 'all' keeps every one, "
                   f"'none' none (default: {DEFAULT_KEEP}; --resume keeps the search's own)")
    p.add_argument("--storage", default=None, help="Optuna storage URL, e.g. "
                   "postgresql://user:pass@host/db (default: sqlite:///RESULTS/NAME/optuna.db)")
    p.add_argument("--results", default="results",
                   help="directory holding searches (default: %(default)s)")
    p.add_argument("--name", default=None,
                   help="name of this search and its folder (default: MODEL_PRESET)")
    p.add_argument("--address", default=None, help="address of an existing Ray cluster, e.g. "
                   "127.0.0.1:6379 or 'auto' (default: start a local one)")
    p.add_argument("--cpus-per-trial", type=float, default=1.0,
                   help="CPU cores per trial (default: %(default)s)")
    p.add_argument("--gpus-per-trial", type=float, default=0.0,
                   help="GPUs per trial, fractions allowed, e.g. 0.25 (default: %(default)s)")
    p.add_argument("--max-concurrent", type=int, default=None,
                   help="most trials at once (default: as many as the resources allow)")
    p.add_argument("--early-stop", default=None, choices=("none", "asha"),
                   help="'asha' stops weak trials early, comparing only trials of the same "
                   "study and similar target sparsity; they are recorded PRUNED (default: the "
                   "preset's)")
    p.add_argument("--retries", type=int, default=2,
                   help="times Tune retries a crashed trial from its last checkpoint "
                   "(default: %(default)s)")
    p.add_argument("--join", action="store_true", help="run alongside other drivers of the "
                   "same search (same --name and settings, each with its own --results) on a "
                   "shared server --storage such as PostgreSQL: open its studies (creating "
                   "those not there yet), leave the other drivers' RUNNING trials alone and "
                   "stop once each study has --trials finished trials between all drivers")
    p.add_argument("--resume", action="store_true", help="continue an interrupted search of "
                   "the same --name up to --trials finished trials per study; every setting "
                   "that shapes a result must be given as the search was started (search.json "
                   "records them), while --trials and --confirm may be raised")
    p.add_argument("--dashboard", action="store_true",
                   help="start Ray's dashboard and print its URL")
    p.add_argument("--dashboard-host", default="127.0.0.1",
                   help="address the dashboard listens on; anything but 127.0.0.1 exposes it "
                   "(token-protected) to the network (default: %(default)s)")
    TrialConfig.add_arguments(p, groups=("data", "pretrain"), skip=("dataset",))
    p.add_argument("--batch-size", type=int, default=TrainSettings.batch_size,
                   help="mini-batch size (default: %(default)s)")
    p.add_argument("--device", default="auto",
                   help="device inside each trial: auto, cpu, cuda (default: %(default)s)")
    p.add_argument("--precision", default="auto", choices=PRECISION_CHOICES,
                   help="compute precision of every trial and of the fractal pre-training: "
                   "'auto' = bf16 only where the trials' device computes it natively and "
                   "measures it faster (a CUDA GPU that supports it, a CPU with AVX512-BF16 / "
                   "AMX or Arm's bf16), else fp32; measured once per machine on the driver, "
                   "so on a cluster of other machines give it; --resume keeps the search's "
                   "own (default: %(default)s)")
    return p


def _level(text: str):
    """One --levels value: a fraction, or 'none' (checked with the others in settings)."""
    if text.lower() == "none":
        return None
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number: give fractions of "
                                         "weights removed, e.g. 0.8 0.9, or none") from None


def check_flags(args, preset: dict) -> None:
    """The flags that are wrong whatever the search: one line each, before anything is read."""
    check(args.levels is None or None not in args.levels or args.levels == [None],
          "--levels none stands alone: give either levels or none")
    check(args.trials is None or args.trials >= 1, f"--trials must be >= 1, got {args.trials}")
    check(args.epochs is None or args.epochs >= 1, f"--epochs must be >= 1, got {args.epochs}")
    check(args.cpus_per_trial > 0, f"--cpus-per-trial must be > 0, got {args.cpus_per_trial}")
    check(args.gpus_per_trial >= 0, f"--gpus-per-trial must be >= 0, got {args.gpus_per_trial}")
    check(args.max_concurrent is None or args.max_concurrent >= 1,
          f"--max-concurrent must be >= 1, got {args.max_concurrent}")
    check(args.retries >= 0, f"--retries must be >= 0, got {args.retries}")
    check(args.baseline_seeds is None or args.baseline_seeds >= 1,
          f"--baseline-seeds must be >= 1 (the unpruned reference trials of each study), got "
          f"{args.baseline_seeds}")
    check(args.confirm is None or args.confirm >= 0, f"--confirm must be >= 0 (0 = no "
          f"confirmation runs), got {args.confirm}")
    check(len(set(args.regimes)) == len(args.regimes),
          "--regimes lists a regime twice: list each once")
    datasets = args.dataset or preset["dataset"]
    check(len(set(datasets)) == len(datasets),
          "--dataset lists a dataset twice: list each once")
    check(not args.source or "pretrained" in args.regimes,
          "--source only applies to the pretrained regime: add it to --regimes")
    check(not (args.join and args.resume), "--join and --resume contradict: --join runs "
          "alongside live drivers, --resume takes over from a dead one (it fails the trials "
          "left RUNNING); pass one of them")
    check(not args.join or bool(args.storage) and not args.storage.startswith("sqlite"),
          "--join needs a database server that every driver reaches, as --storage "
          "postgresql://user:pass@host:5432/db (SQLite is not safe for concurrent drivers)")


def search_name(args) -> str:
    name = args.name or slug(f"{args.model}_{args.preset}")
    check(name.replace("-", "").replace("_", "").isalnum(),
          f"--name {name!r} may hold only letters, digits, '-' and '_'")
    return name


def _base_keys() -> list[str]:
    """The TrialConfig flags a search takes as they are (the data and pre-training ones)."""
    return [key for key in TrialConfig.keys() if key != "dataset"
            and TrialConfig.field(key).metadata["group"] in ("data", "pretrain")]


def base_configs(args, datasets: list[str], epochs: int) -> dict[tuple[str, str], TrialConfig]:
    """(dataset, regime) -> the fixed part of its studies' trials, checked."""
    out = {}
    for dataset in datasets:
        for regime in args.regimes:
            config = check_names(TrialConfig(
                **{key: getattr(args, key) for key in _base_keys()},
                model=args.model, dataset=dataset, init=regime,
                source=args.source if regime == "pretrained" else "", epochs=epochs,
                seed=args.seed, batch_size=args.batch_size, device=args.device).validate())
            out[config.data.dataset, regime] = config  # an image folder by its absolute path
    return out


# settings that shape a trial's result, recorded in search.json ("settings") and compared by
# --resume: name in the record -> its flag. Not among them: --trials and --confirm (a resume
# may raise them: more runs of the same kind), --keep-models (applies from then on);
# --baseline-seeds and --levels are the search's own (check_results_dir)
SHAPING = {"datasets": "dataset", "regimes": "regimes", "source": "source", "epochs": "epochs",
           "sampler": "sampler", "seed": "seed", "early_stop": "early-stop",
           "batch_size": "batch-size", "space": "space", "precision": "precision"}


def shaping_settings(args, datasets: list[str], epochs: int, early_stop: str, precision: str,
                     space) -> dict:
    """What search.json records under "settings": every setting that shapes a trial's
    result. ``space`` is the digest of what the space samples (its comments may change)."""
    out = {"datasets": list(datasets), "regimes": list(args.regimes),
           "source": args.source, "epochs": epochs, "sampler": args.sampler,
           "seed": args.seed, "early_stop": early_stop, "batch_size": args.batch_size,
           "space": space.digest(), "precision": precision}
    out.update((key, getattr(args, key)) for key in _base_keys()
               if TrialConfig.field(key).metadata["hashed"])
    return out


def check_same_settings(record: SearchRecord | None, name: str, args,
                        settings_now: dict) -> None:
    """--resume: every recorded setting that shapes a result must be given the same (a
    resumed search that trained its new trials otherwise would mix incomparable runs in one
    front). Records from before "settings" check what they hold."""
    if not args.resume or record is None:
        return
    recorded = record.settings
    for key, now in settings_now.items():
        if key not in recorded or recorded[key] == now:
            continue
        flag = SHAPING.get(key, key.replace("_", "-"))
        if key == "space":
            raise UsageError(f"--space {args.space or '(the default)'} samples another space "
                             f"than the one search {name!r} was started with (digest "
                             f"{now} vs {recorded[key]}): restore that file, or start a new "
                             "search with --name")
        was, given = _shown(recorded[key]), _shown(now)
        raise UsageError(f"--{flag} {given} differs from the {was} search {name!r} was "
                         f"started with (its trials ran with it): pass --{flag} {was} to "
                         "resume it, or start a new search with --name")


def _shown(value) -> str:
    if isinstance(value, list):
        return " ".join(map(str, value))
    return "''" if value in ("", None) else str(value)


def check_results_dir(folder: Path, name: str, args) -> SearchRecord | None:
    """The search already in ``folder`` (None: a new one), checked against the flags."""
    record = search_record.read(folder, fix="choose another --name")
    if record is None:
        if args.resume:
            raise UsageError(f"--resume: {folder} holds no search to resume; drop --resume to "
                             "start one")
        return None
    if record.model != args.model:
        raise UsageError(f"{folder} holds a search of model {record.model!r}, not "
                         f"{args.model!r}: choose another --name or --results")
    if not args.resume and not args.join:  # a joining driver may come back to its folder
        raise UsageError(f"{folder} already holds search {name!r}: pass --resume to "
                         "continue it, or --name for a new one")
    return record


def build_design(args, preset: dict, resumed: SearchRecord | None, space,
                 name: str) -> Design:
    """The search's design, built once: the flags over the preset, a grid's size as its
    trials; a resumed search (``resumed``) keeps its own baselines, levels and replicates (its
    studies were created with them), and a flag that differs is refused."""
    if args.levels is None:  # the preset's (none with a grid, which fixes its own ratios)
        levels = () if args.sampler == "grid" else tuple(preset["levels"])
    else:
        levels = () if args.levels == [None] else tuple(args.levels)
    trials = args.trials or preset["trials"]
    check(bool(space.params) or args.sampler == "grid", f"{space.path} samples nothing but "
          "its grid: run it with --sampler grid")
    if args.sampler == "grid" and args.trials is None:  # one trial per grid point
        trials = max(math.prod(len(v) for v in space.grid_values(r).values())
                     for r in args.regimes)
    baseline_seeds = args.baseline_seeds or preset["baseline_seeds"]
    if resumed is not None:
        if args.baseline_seeds is not None and args.baseline_seeds != resumed.baseline_seeds:
            raise UsageError(f"--baseline-seeds {args.baseline_seeds} differs from the "
                             f"{resumed.baseline_seeds} search {name!r} was started with "
                             "(its studies queued their baselines then): pass "
                             f"--baseline-seeds {resumed.baseline_seeds} or drop the flag")
        baseline_seeds = resumed.baseline_seeds
        if args.levels is not None and levels != resumed.levels:
            given = " ".join(f"{x:g}" for x in levels) or "none"
            raise UsageError(f"--levels {given} differs from the levels search "
                             f"{name!r} was started with "
                             f"({' '.join(f'{x:g}' for x in resumed.levels) or 'none'}): its "
                             "trials were assigned those; drop --levels to keep them")
        levels = resumed.levels
        if args.replicates is not None and args.replicates != max(resumed.replicates, 1):
            raise UsageError(f"--replicates {args.replicates} differs from the "
                             f"{max(resumed.replicates, 1)} search {name!r} was started "
                             "with: drop --replicates to keep them")
        replicates = resumed.replicates
        if args.first_run is not None and args.first_run != resumed.first_run:
            raise UsageError(f"--first-run {args.first_run} differs from the "
                             f"{resumed.first_run} search {name!r} was started with: drop "
                             "--first-run to keep it")
        first_run = resumed.first_run
    else:
        first_run = args.first_run or preset["first_run"]
        default = preset["replicates"] if levels else 1
        replicates = check_replicates(default if args.replicates is None else args.replicates,
                                      levels, args.sampler, args.seed)
        replicates = replicates if levels else 0  # front, grid: one study a regime
    check(args.first_run is None or bool(levels), f"--first-run {args.first_run} applies to "
          "the level design only: drop it, or give --levels")
    confirm = args.confirm
    if confirm is None:  # the preset's for levels; one seed per front configuration else
        confirm = preset["confirm"] if levels else CONFIRM_FRONT
    if levels:
        baselines = queued_baselines(baseline_seeds, trials, args.sampler)
        levels = check_levels(levels, trials - baselines, args.sampler, confirm)
        space = space.with_levels(levels)
        if first_run == "recipe":  # the recipe must be a point of the space, in every regime
            for config in base_configs(args, (args.dataset or preset["dataset"])[:1],
                                       1).values():
                recipe_params(space, config, levels[0])
    return design_of(space, args.sampler, args.seed, trials, baseline_seeds, confirm, levels,
                     replicates, first_run)


def trial_precision(args, name: str, recorded: str | None) -> str:
    """The precision every trial computes in: --precision, or (auto) the resumed search's
    own, else the one the trials' device does well (measured here, on the driver)."""
    import torch

    device = "cuda" if args.gpus_per_trial > 0 else args.device
    if args.precision == "auto" and recorded is None and device.startswith("cuda") and (
            not torch.cuda.is_available()):
        raise UsageError("--precision auto is measured on this machine, which has no GPU for "
                         "the trials: pass --precision bf16 or fp32")
    if recorded is None:
        return precision_of(args.precision, device, log=lambda line: print(line, flush=True))
    if args.precision not in ("auto", recorded):
        raise UsageError(f"--precision {args.precision} differs from the {recorded} search "
                         f"{name!r} was started with "
                         f"(its trials ran with it): pass --precision {recorded} or auto to "
                         "resume it, or start a new search with --name")
    from ..training.fit import resolve_device
    from ..training.precision import emulated

    if torch.cuda.is_available() or not device.startswith("cuda"):
        if emulated(recorded, resolve_device(device)):
            print(f"note: the search computes in {recorded}, as it was started; this "
                  f"machine emulates {recorded}, so its trials run several times slower",
                  flush=True)
    return recorded


def check_address(address: str | None) -> None:
    """Fail fast (Ray itself retries for minutes) when --address names no reachable head."""
    if address in (None, "auto", "local") or address.startswith("ray://"):
        return
    host, _, port = address.rpartition(":")
    check(bool(host) and port.isdigit(), f"--address {address!r} must be HOST:PORT (e.g. "
          "127.0.0.1:6379), 'auto' or ray://HOST:PORT")
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except OSError as err:
        raise UsageError(f"cannot reach the Ray cluster at --address {address} "
                         f"({err.strerror or err}): start it with `ray start --head` or fix "
                         "the address") from None


@cli_main
def main(argv=None) -> int:
    args = parser().parse_args(argv)
    preset = PRESETS[args.preset]
    check_flags(args, preset)
    name = search_name(args)
    from .studies import space as spaces

    space = spaces.load(args.space, args.model)
    datasets, epochs = args.dataset or preset["dataset"], args.epochs or preset["epochs"]
    early_stop = args.early_stop or preset["early_stop"]
    configs = base_configs(args, datasets, epochs)
    folder = Path(args.results).expanduser().resolve() / name
    record = check_results_dir(folder, name, args)
    resumed = record if args.resume else None
    design = build_design(args, preset, resumed, space, name)
    precision = trial_precision(args, name, resumed.precision if resumed else None)
    configs = {key: config.replace(precision=precision) for key, config in configs.items()}
    # --keep-models: the flag, else a resumed search's own (another applies from now on)
    keep_models = args.keep_models or (resumed.keep_models if resumed else DEFAULT_KEEP)
    shaping = shaping_settings(args, datasets, epochs, early_stop, precision, space)
    check_same_settings(record, name, args, shaping)
    check_address(args.address)
    storage_url = args.storage or f"sqlite:///{folder / STORAGE_FILE}"
    if args.storage is None and resumed and resumed.storage:
        storage_url = resumed.storage
    created = not folder.exists()
    top = folder  # the outermost folder made here, removed again if nothing ran
    while not top.parent.exists():
        top = top.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UsageError(f"cannot create the results folder {folder} ({err.strerror}): pass "
                         "a writable directory as --results") from None

    from .folder_lock import one_driver
    from .runner import run_search

    search = SearchSettings(
        name=name, model=args.model, preset=args.preset,
        mode=Mode.JOIN if args.join else Mode.RESUME if args.resume else Mode.NEW,
        folder=folder, storage_url=storage_url, design=design, base=configs, epochs=epochs,
        early_stop=early_stop, keep_models=keep_models, shaping=shaping,
        cluster=Cluster(args.address, args.dashboard, args.dashboard_host, args.cpus_per_trial,
                        args.gpus_per_trial, args.max_concurrent, args.retries))
    try:
        with one_driver(folder):
            return run_search(search)
    except UsageError:
        if created and not (folder / SEARCH_FILE).exists():  # nothing ran: leave no trace
            shutil.rmtree(top, ignore_errors=True)
        raise

if __name__ == "__main__":
    sys.exit(main())
