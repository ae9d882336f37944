"""TrialConfig: the one typed description of a trial.

CLI flags, YAML keys, metrics.json "config", trials.csv columns and the run hash all derive
from the dataclass fields below. A field's metadata holds its help text, its accepted values
and whether it changes the result (``hashed``); defaults are left out of the hash, so adding a
field with a default keeps every old hash.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass, field
from typing import Any, Callable

from .errors import UsageError, check


OPTIMIZERS = ("adamw", "sgd")  # --optimizer (besides 'auto'); training.recipe builds them


def _opt(default, help: str, choices: tuple | Callable[[], tuple] | None = None,
         hashed: bool = True, group: str = "trial"):
    return field(default=default, metadata={"help": help, "choices": choices,
                                            "hashed": hashed, "group": group})


def _models() -> tuple:
    from .models import MODELS
    return tuple(MODELS)


def _datasets() -> tuple:
    from .data.datasets import DATASETS
    return tuple(DATASETS)


def _criteria() -> tuple:
    from .pruning.layers import CRITERIA
    return ("auto", *CRITERIA)


def _schedules() -> tuple:
    from .pruning.schedules import SCHEDULES
    return tuple(SCHEDULES)


@dataclass(frozen=True)
class TrialConfig:
    # --- data
    dataset: str = _opt("digits", "dataset name; 'digits' is the embedded offline default",
                        _datasets, group="data")
    data_dir: str = _opt("", "root directory of the datasets (default: $HPO_PRUNE_DATA or "
                         "~/.cache/hpo_prune/data)", hashed=False, group="data")
    download: bool = _opt(False, "download a missing dataset (torchvision's downloaders)",
                          hashed=False, group="data")
    val_fraction: float = _opt(0.0, "fraction of the training split held out (stratified) as "
                               "validation data; 0 = the dataset's default (digits 0.2, so its "
                               "val split holds 288 images; others 0.1)", group="data")
    split_seed: int = _opt(0, "seed of the train/val split (and of --train-subset); kept apart "
                           "from --seed so every trial sees the same val data. The test split "
                           "never moves: official, or seed 0 for digits/caltech101",
                           group="data")
    image_size: int = _opt(0, "input size in pixels; 0 = the dataset's own (32; caltech101: 64)",
                           group="data")
    train_subset: int = _opt(0, "use at most this many training images (stratified; 0 = all); "
                             "for smoke tests and quick runs", group="data")
    # --- model and init
    model: str = _opt("vgg16", "network architecture", _models, group="model")
    head: str = _opt("auto", "VGG classifier head: 'compact' = global pool + one Linear "
                     "(~14.7M params), 'classic' = 7x7 pool + 3 Linear layers (~134M); 'auto' = "
                     "compact for inputs up to 64 px", ("auto", "compact", "classic"),
                     group="model")
    init: str = _opt("scratch", "init regime: 'scratch' (library init, seeded) or 'pretrained' "
                     "(weights from --source, then fine-tuned)", ("scratch", "pretrained"),
                     group="model")
    source: str = _opt("", "weights of the pretrained regime: 'imagenet', 'fractal', or a path "
                       "to a checkpoint file; '' = the dataset's default (digits: fractal, "
                       "else imagenet)", group="model")
    # --- training
    epochs: int = _opt(4, "training epochs", group="train")
    batch_size: int = _opt(32, "mini-batch size", group="train")
    optimizer: str = _opt("auto", "'sgd' (with momentum) or 'adamw'; 'auto' = the model "
                          "family's measured default (see README, Training recipe)",
                          ("auto", *OPTIMIZERS), group="train")
    lr: float = _opt(0.0, "peak learning rate; 0 = the model family's measured default for the "
                     "optimizer and init regime", group="train")
    momentum: float = _opt(0.9, "SGD momentum (AdamW: beta1)", group="train")
    weight_decay: float = _opt(5e-4, "weight decay (SGD: L2; AdamW: decoupled)", group="train")
    lr_schedule: str = _opt("cosine", "learning-rate schedule after the warm-up: 'cosine' "
                            "decays to 0 over the remaining optimizer steps, 'constant' keeps "
                            "the peak; 'onecycle' is torch's OneCycleLR (cosine up over the "
                            "warm-up, then down)", ("cosine", "constant", "onecycle"),
                            group="train")
    warmup: float = _opt(-1.0, "fraction of the optimizer steps spent warming the learning rate "
                         "up linearly from 0, in [0, 1); -1 = the model family's default",
                         group="train")
    head_init: str = _opt("auto", "the classifier head's start: 'probe' = fitted by logistic "
                          "regression on the frozen initial features of the training split "
                          "(pre-trained, or the seeded init's from scratch) before training "
                          "(LP-FT); 'random' = its seeded library init; 'auto' = the model "
                          "family's measured default for the regime (README, Training recipe)",
                          ("auto", "probe", "random"), group="train")
    augment: str = _opt("auto", "training augmentation: 'crop' = pad by 1/8 of the size and "
                        "crop at random (plus horizontal flips where they keep the label); "
                        "'none'; 'auto' = the dataset's default (digits: none, else crop)",
                        ("auto", "crop", "none"), group="train")
    label_smoothing: float = _opt(0.0, "label smoothing of the cross-entropy loss, in [0, 1)",
                                  group="train")
    precision: str = _opt("bf16", "compute precision of convolutions and matmuls: 'bf16' "
                          "autocast (weights, optimizer and loss stay float32; ~1.8x faster on "
                          "CPUs with AVX512-BF16 and on GPUs) or 'fp32'", ("bf16", "fp32"),
                          group="train")
    seed: int = _opt(0, "seed of init, shuffling and augmentation", group="train")
    device: str = _opt("auto", "'auto' (cuda if available), 'cpu', 'cuda' or 'cuda:N'",
                       hashed=False, group="train")
    # --- pruning
    prune_ratio: float = _opt(0.0, "fraction of the prunable parameters to remove, in [0, 1)",
                              group="prune")
    granularity: str = _opt("weight", "'weight' (unstructured masks) or 'filter' (structured; "
                            "filters physically removed at the end)", ("weight", "filter"),
                            group="prune")
    scope: str = _opt("global", "'global' = one threshold across all prunable layers; 'local' "
                      "= the same ratio in each layer", ("global", "local"), group="prune")
    criterion: str = _opt("auto", "'magnitude' (weight magnitude / filter norm), 'lamp' "
                          "(weight granularity: layer-adaptive magnitude, Lee et al. 2021, so a "
                          "global threshold does not empty thin layers) or 'random' (the "
                          "baseline); 'auto' = the model family's (lamp for the MobileNets' "
                          "weights, else magnitude), as its search space prunes", _criteria,
                          group="prune")
    norm: int = _opt(1, "filter norm used as score: 1 (L1) or 2 (L2)", (1, 2), group="prune")
    schedule: str = _opt("agp", "sparsity schedule over the pruning window", _schedules,
                         group="prune")
    prune_start: float = _opt(0.2, "start of the pruning window, as a fraction of training: "
                              "the network trains dense first (magnitudes of an untrained "
                              "network rank nothing)", group="prune")
    prune_end: float = _opt(0.6, "end of the pruning window, as a fraction of training; after "
                            "it training fine-tunes with fixed masks", group="prune")
    prune_steps: int = _opt(3, "number of equal steps of the 'iterative' schedule", group="prune")
    prune_every: int = _opt(2, "recompute masks every this many optimizer steps inside the "
                            "window (and always at its end); small steps of sparsity keep a "
                            "network without BatchNorm from collapsing (README, Pruning "
                            "window)", group="prune")
    # --- pre-training of the 'fractal' source (python -m hpo_prune.pretrain)
    fractal_classes: int = _opt(10, "classes (random IFS systems) of the fractal pre-training "
                                "corpus", group="pretrain")
    fractal_per_class: int = _opt(500, "images per class of the fractal corpus (10% of them "
                                  "held out to measure the corpus accuracy)", group="pretrain")
    pretrain_epochs: int = _opt(4, "epochs of pre-training on the fractal corpus",
                                group="pretrain")
    pretrain_lr: float = _opt(0.0, "peak learning rate of the pre-training (the model family's "
                              "recipe otherwise); 0 = the family's default", group="pretrain")
    pretrain_seed: int = _opt(0, "seed of the fractal corpus and of the pre-training",
                              group="pretrain")

    # ------------------------------------------------------------------ derived values
    @property
    def resolved_source(self) -> str:
        if self.init != "pretrained":
            return ""
        if self.source:
            return self.source
        return "fractal" if self.dataset == "digits" else "imagenet"

    def resolved(self) -> "TrialConfig":
        """This config with the training recipe's 'auto' values set: optimizer, lr,
        warm-up, head init and pruning criterion from the model family's measured defaults
        (``models.recipe``; an unpruned run's from ``models.DENSE`` where it has one), the
        augmentation from the dataset's (``data.datasets.AUGMENT``)."""
        done = self
        if self.criterion == "auto":
            from .models import criterion

            done = done.replace(criterion=criterion(self.model, self.granularity))
        if self.augment == "auto":
            from .data.datasets import AUGMENT, DEFAULT_AUGMENT

            done = done.replace(augment=AUGMENT.get(self.dataset, DEFAULT_AUGMENT))
        if (self.optimizer != "auto" and self.lr > 0 and self.warmup >= 0
                and self.head_init != "auto"):
            return done
        from .models import recipe

        defaults = recipe(self.model, self.init,
                          None if self.optimizer == "auto" else self.optimizer,
                          dense=self.prune_ratio == 0)
        return done.replace(optimizer=defaults["optimizer"],
                            lr=self.lr if self.lr > 0 else defaults["lr"],
                            warmup=self.warmup if self.warmup >= 0 else defaults["warmup"],
                            head_init=defaults["head_init"] if self.head_init == "auto"
                            else self.head_init)

    # ------------------------------------------------------------------ validation
    def validate(self) -> "TrialConfig":
        for f in dataclasses.fields(self):
            choices = f.metadata.get("choices")
            if choices is None:
                continue
            allowed = choices() if callable(choices) else choices
            value = getattr(self, f.name)
            check(value in allowed, f"unknown {f.name} {value!r}: use one of "
                  f"{', '.join(map(str, allowed))} (--{_flag(f.name)})")
        for name in ("lr", "momentum", "weight_decay", "val_fraction", "prune_ratio", "warmup",
                     "label_smoothing",
                     "prune_start", "prune_end"):
            value = getattr(self, name)
            check(math.isfinite(value), f"--{_flag(name)} must be a finite number, got {value}")
        check(self.lr >= 0, f"--lr must be > 0 (or 0 for the model's default), got {self.lr}")
        check(self.warmup == -1 or 0 <= self.warmup < 1, "--warmup must be in [0, 1) (or -1 for "
              f"the model's default), got {self.warmup}")
        check(0 <= self.label_smoothing < 1,
              f"--label-smoothing must be in [0, 1), got {self.label_smoothing}")
        check(self.epochs >= 1, f"--epochs must be >= 1, got {self.epochs}")
        check(self.batch_size >= 1, f"--batch-size must be >= 1, got {self.batch_size}")
        check(0 <= self.momentum < 1, f"--momentum must be in [0, 1), got {self.momentum}")
        check(self.weight_decay >= 0, f"--weight-decay must be >= 0, got {self.weight_decay}")
        check(0 <= self.val_fraction < 1, "--val-fraction must be in (0, 1) (or 0 for the "
              f"dataset's default), got {self.val_fraction}")
        check(self.image_size == 0 or self.image_size >= 16,
              f"--image-size must be 0 (dataset default) or >= 16, got {self.image_size}")
        check(self.train_subset >= 0, f"--train-subset must be >= 0, got {self.train_subset}")
        check(0 <= self.prune_ratio < 1,
              f"--prune-ratio must be in [0, 1), got {self.prune_ratio}")
        check(0 <= self.prune_start < self.prune_end <= 1,
              "the pruning window must satisfy 0 <= --prune-start < --prune-end <= 1, got "
              f"[{self.prune_start}, {self.prune_end}]")
        check(self.prune_steps >= 1, f"--prune-steps must be >= 1, got {self.prune_steps}")
        check(self.prune_every >= 1, f"--prune-every must be >= 1, got {self.prune_every}")
        check(self.fractal_classes >= 2, "--fractal-classes must be >= 2 (a classifier needs "
              f"two classes), got {self.fractal_classes}")
        check(self.fractal_per_class >= 2, "--fractal-per-class must be >= 2 (one image per "
              f"class is held out), got {self.fractal_per_class}")
        check(self.pretrain_epochs >= 1, f"--pretrain-epochs must be >= 1, got "
              f"{self.pretrain_epochs}")
        check(math.isfinite(self.pretrain_lr) and self.pretrain_lr >= 0,
              f"--pretrain-lr must be a finite number > 0 (0 = the model's default), got "
              f"{self.pretrain_lr}")
        check(self.criterion != "lamp" or self.granularity == "weight",
              "--criterion lamp scores single weights: use it with --granularity weight, or "
              "--criterion magnitude for filters")
        check(self.source == "" or self.init == "pretrained",
              f"--source {self.source!r} only applies to --init pretrained: pass --init "
              "pretrained, or drop --source")
        return self

    # ------------------------------------------------------------------ (de)serialisation
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any], where: str = "config") -> "TrialConfig":
        known = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - set(known))
        check(not unknown, f"{where}: unknown key(s) {', '.join(unknown)}; known keys: "
              f"{', '.join(known)}")
        typed = {}
        for name, value in values.items():
            typed[name] = _coerce(known[name], value, where)
        return cls(**typed)

    def replace(self, **changes) -> "TrialConfig":
        return dataclasses.replace(self, **changes)

    def run_hash(self) -> str:
        """Hash of the fields that change the result, defaults left out."""
        changed = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                   if f.metadata["hashed"] and getattr(self, f.name) != f.default}
        blob = json.dumps(changed, sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    # ------------------------------------------------------------------ command line
    @classmethod
    def add_arguments(cls, parser, groups: tuple[str, ...] | None = None,
                      defaults: dict[str, Any] | None = None, skip: tuple[str, ...] = (),
                      flags: dict[str, str] | None = None) -> None:
        """Add one --flag per field (of the given groups, less `skip`) to a parser; `flags`
        renames some (field -> flag without dashes) where a command's context says it."""
        defaults, flags = defaults or {}, flags or {}
        titles = {"data": "data", "model": "model and init", "train": "training",
                  "prune": "pruning", "pretrain": "pre-training (the fractal source)"}
        made = {}
        for f in dataclasses.fields(cls):
            group = f.metadata["group"]
            if (groups is not None and group not in groups) or f.name in skip:
                continue
            if group not in made:
                made[group] = parser.add_argument_group(titles.get(group, group))
            default = defaults.get(f.name, f.default)
            kwargs: dict[str, Any] = {"dest": f.name, "default": default}
            if f.type in ("bool", bool):
                kwargs["action"] = "store_true"
            else:
                kwargs["type"] = {"int": int, "float": float}.get(str(f.type), str)
                kwargs["metavar"] = f.name.upper()
            choices = f.metadata.get("choices")
            help_text = f.metadata["help"]
            if choices is not None and not callable(choices):
                help_text += f" {{{', '.join(map(str, choices))}}}"
            if not kwargs.get("action"):
                help_text += " (default: %(default)s)"
            flag = flags.get(f.name, _flag(f.name))
            made[group].add_argument(f"--{flag}", help=help_text.replace("%", "%%")
                                     .replace("%%(default)s", "%(default)s"), **kwargs)

    @classmethod
    def from_args(cls, namespace) -> "TrialConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in vars(namespace).items() if k in names})


def _flag(name: str) -> str:
    return name.replace("_", "-")


def _coerce(f: dataclasses.Field, value: Any, where: str) -> Any:
    kind = str(f.type)
    try:
        if kind == "bool":
            if isinstance(value, bool):
                return value
            raise ValueError
        if kind == "int":
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError
            return int(value)
        if kind == "float":
            if isinstance(value, bool):
                raise ValueError
            return float(value)
        if not isinstance(value, str):
            raise ValueError
        return value
    except (TypeError, ValueError):
        raise UsageError(f"{where}: {f.name} must be of type {kind}, got {value!r}") from None
