"""Any classifier of timm or torchvision: ``--model timm:NAME`` and ``--model torchvision:NAME``.

The model is built by its library (``timm.create_model`` / ``torchvision.models.get_model``)
with ``num_classes`` set to the dataset's classes, so the library itself gives it a head of
the right size; no per-model table. Its classifier is found generically: timm's
``get_classifier()``, else the last Linear layer; a model without a Linear classifier (e.g.
SqueezeNet's convolution) is refused. BatchNorm layers get a momentum of at least 0.1
(``BN_MOMENTUM``). The pretrained regime reads the library's ImageNet
weights from its usual offline cache (``imagenet_file``): the Hugging Face hub cache for timm,
torch hub's checkpoints folder for torchvision.
"""
from __future__ import annotations

import difflib
from pathlib import Path

import torch
from torch import nn

from .errors import UsageError
from .files import slug

TIMM, TORCHVISION = "timm:", "torchvision:"
# BatchNorm momentum at least PyTorch's default: some models are built with 0.01 (torchvision's
# MobileNetV3, EfficientNet), made for ImageNet's long runs; in this project's short trials
# (a few hundred steps) their running statistics stay near the init and evaluation in eval
# mode sits at chance while the training loss falls (MobileNetV3-Small on digits: val 9.7%).
BN_MOMENTUM = 0.1
LIBRARIES = (TIMM, TORCHVISION)


def is_library(name: str) -> bool:
    return name.startswith(LIBRARIES)


def label(name: str) -> str:
    """The model's name in study names: no dots (they separate a study name's parts)."""
    return slug(name, keep=":")


def _split(name: str) -> tuple[str, str]:
    prefix = TIMM if name.startswith(TIMM) else TORCHVISION
    return prefix, name[len(prefix):]


def _known(prefix: str) -> list[str]:
    if prefix == TIMM:
        import timm

        return timm.list_models()
    from torchvision import models

    return models.list_models()


def check(name: str) -> None:
    """A UsageError naming the closest known names unless the library has model ``name``."""
    prefix, bare = _split(name)
    known = _known(prefix)
    if bare in known or (prefix == TIMM and bare.split(".")[0] in known):  # timm's name.tag
        return
    close = difflib.get_close_matches(bare, known, n=5, cutoff=0.5)
    hint = (f"did you mean {', '.join(prefix + c for c in close)}?" if close else
            f"see {'timm.list_models()' if prefix == TIMM else 'torchvision.models.list_models()'}")
    raise UsageError(f"unknown model {name!r}: {prefix[:-1]} has no model {bare!r}; {hint} "
                     "(--model)")


def build(name: str, num_classes: int, image_size: int) -> nn.Module:
    """The library's model ``name`` with a ``num_classes`` head, checked on one image of
    ``image_size`` px."""
    check(name)
    prefix, bare = _split(name)
    if prefix == TIMM:
        import timm

        model = timm.create_model(bare, pretrained=False, num_classes=num_classes)
    else:
        from torchvision import models

        kwargs = {"aux_logits": False, "init_weights": True} if bare in ("googlenet",
                                                                          "inception_v3") else {}
        model = models.get_model(bare, weights=None, num_classes=num_classes, **kwargs)
    for layer in model.modules():  # see the top: running statistics that follow the weights
        if isinstance(layer, nn.modules.batchnorm._BatchNorm) and layer.momentum is not None:
            layer.momentum = max(layer.momentum, BN_MOMENTUM)
    head = classifier(model)
    if head is None or head.out_features != num_classes:
        raise UsageError(f"{name}: its classifier cannot be found (no final Linear layer with "
                         f"{num_classes} outputs); choose a model whose head is a Linear layer")
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros(2, 3, image_size, image_size))
    except (RuntimeError, ValueError, AssertionError) as err:
        reason = " ".join(str(err).split())[:160]
        raise UsageError(f"{name} does not take {image_size} px inputs ({reason}); pass a "
                         "larger --image-size") from None
    model.train()
    return model


def classifier(model: nn.Module) -> nn.Linear | None:
    """The final classification layer: timm's ``get_classifier()``, else the last Linear."""
    get = getattr(model, "get_classifier", None)
    if callable(get):
        head = get()
        if isinstance(head, nn.Linear):
            return head
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    return linears[-1] if linears else None


def imagenet_file(name: str) -> Path:
    """The library's ImageNet weights of ``name`` from its offline cache; a UsageError naming
    the file and where to put it when it is not there (nothing is downloaded)."""
    prefix, bare = _split(name)
    hub = Path(torch.hub.get_dir()) / "checkpoints"
    if prefix == TIMM:
        import timm
        from huggingface_hub import try_to_load_from_cache

        config = timm.models.get_pretrained_cfg(bare)
        repo = getattr(config, "hf_hub_id", None) or f"timm/{bare}"
        for filename in ("model.safetensors", "pytorch_model.bin"):
            found = try_to_load_from_cache(repo, filename)  # the Hugging Face hub cache
            if isinstance(found, str):
                return Path(found)
        local = hub / f"{repo.split('/')[-1]}.safetensors"  # or torch hub's folder
        if local.is_file():
            return local
        raise UsageError(f"timm's ImageNet weights of {bare} are not cached: place "
                         f"{local.name} (model.safetensors of huggingface.co/{repo}) in "
                         f"{local.parent}, or fill the Hugging Face cache where the hub can be "
                         f"reached (huggingface-cli download {repo}), or pass a weights file "
                         "as --source")
    from torchvision import models

    try:
        weights = models.get_model_weights(bare).DEFAULT
    except (ValueError, KeyError, AttributeError):
        raise UsageError(f"torchvision has no ImageNet weights for {bare}; pass a weights "
                         "file as --source") from None
    target = hub / Path(weights.url).name
    if not target.is_file():
        raise UsageError(f"torchvision's ImageNet weights of {bare} are not cached: place "
                         f"{target.name} (from {weights.url}) in {target.parent}, or pass a "
                         "weights file as --source")
    return target
