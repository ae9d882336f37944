"""Model registry: the paper's networks, adapted to the dataset's classes and input size.

- ``vgg16`` / ``vgg16_bn`` (torchvision). ``head='classic'`` keeps VGG's 7x7 average pool and
  three Linear layers (4096-4096-classes, ~134M parameters at 10 classes); ``head='compact'``
  replaces them with a global average pool and one Linear layer (~14.7M). ``auto`` picks the
  compact head for inputs up to 64 px, where the 7x7 pool would only repeat a 1x1 or 2x2 map.
- ``mobilenet_v1`` (timm ``mobilenetv1_100``, the MobileNet of the paper) and ``mobilenet_v2``
  (torchvision). For inputs up to 64 px the stem and the first stride-2 block use stride 1, so a
  32 px image is downsampled 8x instead of 32x (the usual CIFAR adaptation); weights are
  unchanged, so ImageNet checkpoints still load.

Every factory returns a module whose final classifier is reachable by ``classifier_name``.
"""
from __future__ import annotations

from typing import Callable

from torch import nn

from . import library_models
from .errors import UsageError

SMALL_INPUT = 64  # inputs up to this size get the compact VGG head and reduced strides


def _vgg(name: str) -> Callable:
    def make(num_classes: int, image_size: int, head: str = "auto") -> nn.Module:
        from torchvision import models

        if image_size < 32:  # five 2x2 max-pools: a smaller map reaches 0x0
            raise UsageError(f"{name} needs inputs of at least 32 px, got {image_size}: pass "
                             "--image-size 32 or more (or 0 for the dataset's own size)")
        # built as torchvision builds it, then the head replaced: the random numbers drawn for
        # a seed (and so the fractal checkpoint and every trial's init) are the ones the
        # recipes were chosen with. (Building on the meta device and initialising only the
        # layers kept saves ~2.5 s a trial but draws other numbers: the same seed then gave a
        # fractal checkpoint of corpus accuracy 0.894 instead of 0.964, and weaker fine-tuning.)
        model = getattr(models, name)(weights=None)
        if resolve_head(head, image_size) == "compact":
            model.avgpool = nn.AdaptiveAvgPool2d(1)
            model.classifier = nn.Linear(512, num_classes)
        else:
            model.classifier[6] = nn.Linear(4096, num_classes)
        return model

    return make


def resolve_head(head: str, image_size: int) -> str:
    """The VGG head 'auto' stands for: compact for inputs up to SMALL_INPUT px."""
    if head != "auto":
        return head
    return "compact" if image_size <= SMALL_INPUT else "classic"


def head_of(model: str, head: str, image_size: int) -> str:
    """The head a trial of ``model`` gets: the VGGs' resolved; the MobileNets have one head,
    so theirs stays as given ('auto')."""
    return resolve_head(head, image_size) if model.startswith("vgg") else head


def _set_stride(conv: nn.Conv2d) -> None:
    conv.stride = (1, 1)


def _mobilenet_v1(num_classes: int, image_size: int, head: str = "auto") -> nn.Module:
    import timm

    model = timm.create_model("mobilenetv1_100", pretrained=False, num_classes=num_classes)
    if image_size <= SMALL_INPUT:
        _set_stride(model.conv_stem)
        _set_stride(model.blocks[1][0].conv_dw)
    return model


def _mobilenet_v2(num_classes: int, image_size: int, head: str = "auto") -> nn.Module:
    from torchvision import models

    model = models.mobilenet_v2(weights=None, num_classes=num_classes)
    if image_size <= SMALL_INPUT:
        _set_stride(model.features[0][0])
        _set_stride(model.features[2].conv[1][0])
    return model


MODELS: dict[str, Callable[..., nn.Module]] = {
    "vgg16": _vgg("vgg16"),
    "vgg16_bn": _vgg("vgg16_bn"),
    "mobilenet_v1": _mobilenet_v1,
    "mobilenet_v2": _mobilenet_v2,
}


# The training recipe each family starts from when a trial leaves optimizer / lr / warmup on
# 'auto': {model: {regime: {optimizer: {"lr": peak lr, "warmup": fraction}}}}; the first
# optimizer listed is the default. Measured with benchmarks/lr_sweep.py (docs/recipe.md): the
# AdamW ones chosen on val (a default moves only when another lr beats it on val by more than
# one val image); the SGD ones are untuned.
GENERIC = "generic"  # the recipe family of every timm / torchvision model


def _recipes(rows) -> dict[str, dict[str, dict[str, dict]]]:
    out: dict = {}
    for model, regime, optimizer, lr, warmup in rows:
        out.setdefault(model, {}).setdefault(regime, {})[optimizer] = {"lr": lr,
                                                                       "warmup": warmup}
    return out


RECIPES = _recipes((  # (model, regime, optimizer, peak lr, warm-up fraction), the default first
    ("vgg16", "scratch", "adamw", 3e-4, 0.1), ("vgg16", "scratch", "sgd", 0.01, 0.2),
    ("vgg16", "pretrained", "adamw", 5e-4, 0.3), ("vgg16", "pretrained", "sgd", 0.01, 0.2),
    ("vgg16_bn", "scratch", "adamw", 1e-3, 0.1), ("vgg16_bn", "scratch", "sgd", 0.05, 0.1),
    ("vgg16_bn", "pretrained", "adamw", 1e-3, 0.1), ("vgg16_bn", "pretrained", "sgd", 0.05, 0.1),
    ("mobilenet_v1", "scratch", "adamw", 2e-2, 0.1), ("mobilenet_v1", "scratch", "sgd", 0.05, 0.1),
    ("mobilenet_v1", "pretrained", "adamw", 1e-2, 0.1),
    ("mobilenet_v1", "pretrained", "sgd", 0.05, 0.1),
    ("mobilenet_v2", "scratch", "adamw", 5e-3, 0.1), ("mobilenet_v2", "scratch", "sgd", 0.05, 0.1),
    ("mobilenet_v2", "pretrained", "adamw", 5e-3, 0.1),
    ("mobilenet_v2", "pretrained", "sgd", 0.05, 0.1),
    # any timm / torchvision model (library_models): see docs/your-own-model.md
    (GENERIC, "scratch", "adamw", 1e-3, 0.1), (GENERIC, "scratch", "sgd", 0.05, 0.1),
    (GENERIC, "pretrained", "adamw", 1e-3, 0.1), (GENERIC, "pretrained", "sgd", 0.05, 0.1)))


# The head init of a (model, regime) where a linear probe (training.probe) measured better on
# val than the random head; every other: "random". VGG16 was swept with both heads in both
# regimes and chose the random one in both (docs/recipe.md), so none is listed.
HEAD_INIT: dict[tuple[str, str], str] = {}


# The pruning criterion a family's weights are scored with when a trial leaves it on 'auto'
# (its search space's): LAMP where plain magnitudes would empty thin layers (the MobileNets'
# depthwise convolutions, docs/pruning.md); magnitude for every filter pruning.
# (an unknown architecture, GENERIC, gets LAMP too: global magnitudes would empty whatever thin
# layers it has)
CRITERION: dict[str, str] = {"mobilenet_v1": "lamp", "mobilenet_v2": "lamp", GENERIC: "lamp"}


# The recipe of an unpruned run (a study's baselines, whose mean is its regime's reference)
# where it differs from the family's: {(model, regime, optimizer): {"lr", "warmup",
# "head_init"}}. Chosen per regime on unpruned val accuracy alone, from the same grid in both
# regimes (docs/recipe.md): the reference is the best dense model val can pick, while the
# family recipe above is chosen on dense and pruned runs together. For VGG16 the linear-probe
# head wins unpruned in both regimes and loses pruned, hence the two recipes. The other
# families' unpruned val prefers no other recipe by more than one val image (docs/recipe.md).
DENSE: dict[tuple[str, str, str], dict] = {
    ("vgg16", "scratch", "adamw"): {"lr": 3e-4, "warmup": 0.3, "head_init": "probe"},
    ("vgg16", "pretrained", "adamw"): {"lr": 5e-4, "warmup": 0.3, "head_init": "probe"},
}


# Epochs of the fractal pre-training (sources.pretrain) where the default is not enough: VGG16
# (no BatchNorm) leaves its start-up plateau an epoch earlier or later with every numeric
# detail (precision, CPU kernels, seed), and after 4 epochs it still sat on the steep part of
# its curve (corpus accuracy 0.79-0.96); at 8 every seed and precision measured ends on the
# flat part. Chosen on the corpus's held-out split (benchmarks/pretrain_recipe.py,
# docs/pretraining.md).
PRETRAIN_EPOCHS: dict[str, int] = {"vgg16": 8, "mobilenet_v1": 6}
DEFAULT_PRETRAIN_EPOCHS = 4


def pretrain_epochs(model: str, epochs: int = -1) -> int:
    """The fractal pre-training's epochs: ``epochs``, or (-1) the family's."""
    return epochs if epochs > 0 else PRETRAIN_EPOCHS.get(family(model),
                                                         DEFAULT_PRETRAIN_EPOCHS)


def criterion(model: str, granularity: str = "weight") -> str:
    """The family's pruning criterion for ``granularity`` (see CRITERION)."""
    if granularity != "weight":
        return "magnitude"
    return CRITERION.get(family(model), "magnitude")


def family(model: str) -> str:
    """The recipe family of ``model``: its own name, or GENERIC for a timm / torchvision one."""
    return GENERIC if library_models.is_library(model) else model


def recipe(model: str, regime: str, optimizer: str | None = None, dense: bool = False
           ) -> dict:
    """{"optimizer", "lr", "warmup", "head_init"}: the family's default recipe (of
    ``optimizer`` if given); ``dense``: of an unpruned run (see DENSE)."""
    model = family(model)
    if model not in RECIPES:
        raise UsageError(f"unknown model {model!r}: use one of {', '.join(MODELS)}")
    by_optimizer = RECIPES[model][regime]
    optimizer = optimizer or next(iter(by_optimizer))
    out = {"optimizer": optimizer, "head_init": HEAD_INIT.get((model, regime), "random"),
           **by_optimizer[optimizer]}
    if dense:
        out.update(DENSE.get((model, regime, optimizer), {}))
    return out


def build(name: str, num_classes: int, image_size: int, head: str = "auto") -> nn.Module:
    if library_models.is_library(name):
        return library_models.build(name, num_classes, image_size)
    try:
        factory = MODELS[name]
    except KeyError:
        raise UsageError(f"unknown model {name!r}: use one of {', '.join(MODELS)}") from None
    return factory(num_classes, image_size, head)


def classifier(model: nn.Module) -> nn.Linear:
    """The final classification layer (never pruned): timm's ``get_classifier()``, else the
    last Linear layer."""
    return library_models.classifier(model)

