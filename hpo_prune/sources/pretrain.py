"""Pre-training without internet: train a model on the fractal corpus once, cache it, reuse it
(the command line is ``python -m hpo_prune.pretrain``).

The checkpoint lives in the cache directory ($HPO_PRUNE_CACHE, default
~/.cache/hpo_prune/pretrained) as ``<key>.pt`` (weights, ``torch.load(..., weights_only=True)``)
and ``<key>.json`` (settings and corpus accuracy), where the key hashes every setting that
determines the weights. Trials with ``--init pretrained --source fractal`` call
``weights(config)``, which trains the checkpoint on first use. A file lock makes concurrent
requests train it once; files appear by atomic rename, so no reader sees half a file.
Training is one ``training.fit`` on the corpus: the project's one loop, optimizer and schedule.
"""
from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Callable

import torch

from ..settings import PruneSettings, TrainSettings, TrialConfig
from ..data import fractal
from ..errors import UsageError, check
from ..training.precision import cpu_model
from ..files import CACHE_ENV, atomic_write, cache_dir, slug

FORMAT = 2  # bump when the corpus, the checkpoint layout or the training changes
HOLDOUT = 0.1  # fraction of each class held out to measure the corpus accuracy
RECIPE_FIELDS = ("epochs", "batch_size", "optimizer", "lr", "momentum", "weight_decay",
                 "lr_schedule", "warmup", "label_smoothing", "precision", "augment")
CORPORA: dict[str, Callable] = {"fractal": fractal.render}  # name -> render(C, M, size, seed)

Log = Callable[[str], None]


def settings(config: TrialConfig, source: str = "fractal") -> dict:
    """Everything that determines the pre-trained weights (the cache key hashes it)."""
    from .. import models

    config.require_resolved("the pre-training")  # image size, precision, epochs and lr given
    size = config.data.image_size
    # the key names the head the pre-training builds: a MobileNet's one head ('auto' in its
    # trial) by the name a VGG's of that size has, as every cached checkpoint was keyed
    head = models.resolve_head(config.net.head, size)
    # the recipe a pruned trial of this model would get (optimizer, warm-up, schedule,
    # batch...) from scratch, not the unpruned runs' (models.DENSE: its probe head is for a
    # fine-tuning); the corpus's random crops keep its labels (its classes are whole shapes)
    family = models.recipe(config.net.model, "scratch")
    fractal = config.fractal
    recipe = TrainSettings(epochs=fractal.epochs, lr=fractal.lr,
                           optimizer=family["optimizer"], warmup=family["warmup"],
                           head_init="random", augment="crop",
                           precision=config.train.precision)
    return {"format": FORMAT, "source": source, "model": config.net.model, "head": head,
            "image_size": size, "classes": fractal.classes, "per_class": fractal.per_class,
            "holdout": HOLDOUT, "seed": fractal.seed,
            "training": {name: getattr(recipe, name) for name in RECIPE_FIELDS}}


def cache_key(s: dict) -> str:
    digest = hashlib.sha256(json.dumps(s, sort_keys=True).encode()).hexdigest()[:16]
    model = slug(s["model"], keep=".")  # timm:NAME -> timm-NAME
    return f"{s['source']}-{model}-{s['image_size']}px-{digest}"


def command(s: dict) -> str:
    """The command line that (re)builds the checkpoint of these settings."""
    return (f"python -m hpo_prune.pretrain --source {s['source']} --model {s['model']} "
            f"--head {s['head']} --image-size {s['image_size']} --classes {s['classes']} "
            f"--per-class {s['per_class']} --epochs {s['training']['epochs']} "
            f"--lr {s['training']['lr']} --precision {s['training']['precision']} "
            f"--seed {s['seed']}")


def paths(s: dict) -> tuple[Path, Path]:
    key = cache_key(s)
    return cache_dir() / f"{key}.pt", cache_dir() / f"{key}.json"


def ensure(s: dict, device: str = "auto", rebuild: bool = False,
           log: Log = print) -> tuple[Path, bool]:
    """The checkpoint of settings ``s``, trained first unless cached; returns (path, trained).

    Concurrent callers (threads or processes) wait on one lock; the first trains, the others
    find its files. ``rebuild`` retrains even when a checkpoint exists (unless another caller
    rebuilt it while this one waited).
    """
    from filelock import FileLock, Timeout

    pt, meta = paths(s)
    if not rebuild and pt.exists() and meta.exists():
        return pt, False
    heads = _heads(s, device)  # settings that cannot train fail before the cache is touched
    try:
        pt.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UsageError(f"cannot create the cache directory {pt.parent}: {err}; point "
                         f"${CACHE_ENV} at a writable directory") from None
    lock = FileLock(str(pt.with_suffix(".lock")))
    waited = False
    try:
        lock.acquire(timeout=0)
    except Timeout:
        log(f"waiting for another process to finish pre-training {pt.name} ...")
        lock.acquire()
        waited = True
    try:
        if pt.exists() and meta.exists() and (waited or not rebuild):
            return pt, False
        meta.unlink(missing_ok=True)  # from here on the cache holds no finished result
        _train(s, pt, meta, device, log, heads)
        return pt, True
    finally:
        lock.release()


def _heads(s: dict, device: str) -> list[str]:
    """The names of the classifier head's tensors; a UsageError when ``s`` cannot train."""
    from .. import models
    from ..training.fit import resolve_device

    model_name, size = s["model"], s["image_size"]
    check(s["source"] in CORPORA, f"unknown pre-training source {s['source']!r}: use one of "
          f"{', '.join(CORPORA)} (downloaded weights such as imagenet are not trained here)")
    resolve_device(device)
    probe = models.build(model_name, s["classes"], size, s["head"]).eval()
    try:
        with torch.no_grad():
            probe(torch.zeros(1, 3, size, size))
    except RuntimeError as err:
        raise UsageError(f"{model_name} cannot take {size} px images ({str(err).strip()}); "
                         "use a larger --image-size (e.g. 32)") from None
    head = models.classifier(probe)
    heads = [f"{name}.{p}" for name, m in probe.named_modules() if m is head
             for p in ("weight", "bias")]
    return heads


def _train(s: dict, pt: Path, meta: Path, device: str, log: Log, heads: list[str]) -> None:
    from .. import models
    from ..data.datasets import Data, Split, normalisation
    from ..training.fit import fit

    model_name, size = s["model"], s["image_size"]
    started = time.perf_counter()
    log(f"pre-training {model_name} on the {s['source']} corpus ({s['classes']} classes x "
        f"{s['per_class']} images, {size} px), {s['training']['epochs']} epochs -> {pt}")
    corpus = CORPORA[s["source"]](s["classes"], s["per_class"], size, s["seed"])
    held = max(1, round(s["per_class"] * s["holdout"]))
    is_held = torch.arange(len(corpus)) % s["per_class"] >= s["per_class"] - held
    train = Split(corpus.x[~is_held], corpus.y[~is_held])
    holdout = Split(corpus.x[is_held], corpus.y[is_held])
    mean, std = normalisation(train.x)
    render_s = time.perf_counter() - started
    log(f"rendered {len(corpus)} images in {render_s:.1f}s ({len(train)} train, "
        f"{len(holdout)} held out)")
    # mirroring is label-preserving (the corpus mirrors at random); val = test = held out
    data = Data(s["source"], s["classes"], train, holdout, holdout, mean, std, True, size)
    recipe = TrainSettings(seed=s["seed"], device=device, head_init="random", **s["training"])
    torch.manual_seed(recipe.seed)
    model = models.build(model_name, s["classes"], size, s["head"])
    result = fit(model, recipe, PruneSettings(), data, log=log, name=model_name)
    state = {k: v.detach().cpu() for k, v in result.model.state_dict().items()}
    blob = {"format": FORMAT, "settings": s, "head": heads, "state_dict": state}
    record = {"settings": s, "key": cache_key(s), "corpus_acc": result.final["val_acc"],
              "train_images": len(train), "holdout_images": len(holdout),
              "epochs": result.epochs, "render_seconds": render_s,
              "seconds": time.perf_counter() - started, "device": str(
                  next(result.model.parameters()).device), "torch": torch.__version__,
              "cpu": cpu_model(), "by_epoch": [e["val_acc"] for e in result.epochs],
              "command": command(s)}
    atomic_write(pt, lambda tmp: torch.save(blob, tmp))
    atomic_write(meta, lambda tmp: tmp.write_text(json.dumps(record, indent=2)))  # last
    log(f"corpus accuracy {record['corpus_acc']:.4f} on {len(holdout)} held-out images, "
        f"{record['seconds']:.0f}s in all -> {pt}")


def load(s: dict) -> tuple[dict, dict]:
    """(checkpoint blob, record) of cached settings ``s``; a corrupt file is a UsageError."""
    pt, meta = paths(s)
    fix = f"delete it or rebuild it: {command(s)} --rebuild"
    try:
        blob = torch.load(pt, map_location="cpu", weights_only=True)
        check(isinstance(blob, dict) and isinstance(blob.get("state_dict"), dict)
              and blob.get("settings") == s, "it holds no checkpoint of these settings")
    except Exception as err:
        reason = " ".join(str(err).split()).split(". ")[0][:160]  # torch's first sentence
        raise UsageError(f"cached pre-training checkpoint {pt} is corrupt "
                         f"({type(err).__name__}: {reason}); {fix}") from None
    try:
        record = json.loads(meta.read_text())
        check(record.get("settings") == s, "it records other settings")
    except Exception as err:
        raise UsageError(f"cached pre-training record {meta} is corrupt ({type(err).__name__}"
                         f": {err}); {fix}") from None
    return blob, record


def weights(config: TrialConfig, source: str = "fractal", log: Log = print) -> dict:
    """The pre-trained tensors for a trial, less the corpus's classifier head; the checkpoint
    is trained first when it is not cached."""
    s = settings(config, source)
    with torch.random.fork_rng():  # a trial gets the same random numbers, cold cache or warm
        ensure(s, config.train.device, log=lambda line: log(f"[pretrain] {line}"))
    blob, _ = load(s)
    return {k: v for k, v in blob["state_dict"].items() if k not in blob["head"]}
