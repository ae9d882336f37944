"""Init regimes: where the weights of the ``pretrained`` regime come from, and how they load.

A source is a name in ``SOURCES`` (a function config -> state dict) or a path to a checkpoint
file. Tensors are matched by name and shape; those that don't fit (the new classifier head)
keep their fresh, seeded initialisation. Everything loads with ``weights_only=True``.
"""
from __future__ import annotations

import hashlib
import urllib.request
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from .. import library_models, models
from ..resolution import source_of
from ..settings import TrialConfig
from ..errors import UsageError
from ..files import atomic_write

# torchvision's ImageNet weights (the standard weights API's files and URLs)
_TORCHVISION = {"vgg16": "VGG16_Weights", "vgg16_bn": "VGG16_BN_Weights",
                "mobilenet_v2": "MobileNet_V2_Weights"}
# timm's ImageNet weights for the paper's MobileNet (v1)
_TIMM = {"mobilenet_v1": "mobilenetv1_100.ra4_e3600_r224_in1k"}


def hub_checkpoints() -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints"


def _imagenet(config: TrialConfig) -> dict[str, torch.Tensor]:
    """torchvision's / timm's ImageNet weights, from their caches (downloaded when missing;
    for a timm:NAME / torchvision:NAME model only read from the library's offline cache)."""
    if library_models.is_library(config.net.model):
        return _read(library_models.imagenet_file(config.net.model), "ImageNet weights",
                     fix="delete it and place a good copy there")
    if config.net.model in _TORCHVISION:
        from torchvision import models

        url = getattr(models, _TORCHVISION[config.net.model]).IMAGENET1K_V1.url
        return _read(_cached(url, hub_checkpoints() / Path(url).name, config.net.model),
                     "ImageNet weights", fix="delete it and place a good copy there")
    if config.net.model in _TIMM:
        name = _TIMM[config.net.model]
        local = hub_checkpoints() / f"{name}.safetensors"
        if not local.exists():  # timm's own cache (Hugging Face hub), without network
            try:
                from huggingface_hub import hf_hub_download

                return _read(Path(hf_hub_download(f"timm/{name}", "model.safetensors",
                                                  local_files_only=True)), "ImageNet weights")
            except UsageError:
                raise
            except Exception:
                pass
        url = f"https://huggingface.co/timm/{name}/resolve/main/model.safetensors"
        return _read(_cached(url, local, config.net.model), "ImageNet weights",
                     fix="delete it and place a good copy there")
    raise UsageError(f"no ImageNet weights known for {config.net.model}; pass a checkpoint path "
                     "as --source")


def _cached(url: str, target: Path, model: str) -> Path:
    """`target` if it exists, else downloaded from `url` first (fails fast when offline)."""
    if target.exists():
        return target
    print(f"downloading {url} to {target}", flush=True)
    match = torch.hub.HASH_REGEX.search(target.name)  # torchvision names carry a sha256 prefix

    def write(tmp: Path) -> None:
        digest = hashlib.sha256()
        request = urllib.request.Request(url, headers={"User-Agent": "hpo_prune"})
        with urllib.request.urlopen(request, timeout=60) as response, open(tmp, "wb") as f:
            while chunk := response.read(1 << 20):
                f.write(chunk)
                digest.update(chunk)
        if match and not digest.hexdigest().startswith(match.group(1)):
            raise ValueError(f"sha256 {digest.hexdigest()[:12]}... does not match the name")

    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(target, write)
    except Exception as err:
        raise UsageError(f"ImageNet weights for {model} are not cached and could not be "
                         f"downloaded ({type(err).__name__}: {err}): place {target.name} "
                         f"(from {url}) in {target.parent}") from None
    return target


def _fractal(config: TrialConfig) -> dict[str, torch.Tensor]:
    """Weights pre-trained on the offline fractal corpus (trained and cached on first use)."""
    from .pretrain import weights

    return weights(config, "fractal")


SOURCES: dict[str, Callable[[TrialConfig], dict]] = {"imagenet": _imagenet, "fractal": _fractal}


def _read(path: Path, what: str = "checkpoint",
          fix: str = "pass a torch state dict saved with torch.save (loads use "
          "weights_only=True: pickled objects and code are refused)") -> dict[str, torch.Tensor]:
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            blob = load_file(str(path))
        else:
            blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch's first sentence: its advice (weights_only=False) is
        reason = " ".join(str(err).split()).split(". ")[0][:200]  # not for a user to follow
        raise UsageError(f"cannot read {what} {path}: {type(err).__name__}: {reason}; {fix}") \
            from None
    return state_dict_of(blob, path)


def state_dict_of(blob, path) -> dict[str, torch.Tensor]:
    """The tensors of a checkpoint: a plain state dict, or one under 'state_dict' / 'model'."""
    for key in ("state_dict", "model", "model_state"):
        if isinstance(blob, dict) and isinstance(blob.get(key), dict):
            blob = blob[key]
            break
    if not isinstance(blob, dict) or not any(isinstance(v, torch.Tensor) for v in blob.values()):
        raise UsageError(f"{path} holds no state dict of tensors; save one with "
                         "torch.save(model.state_dict(), path)")
    return {k: v for k, v in blob.items() if isinstance(v, torch.Tensor)}


def load_weights(config: TrialConfig) -> dict[str, torch.Tensor]:
    """The tensors of the pretrained regime's source."""
    source = source_of(config.weights, config.data.dataset)
    if source in SOURCES:
        return SOURCES[source](config)
    path = Path(source).expanduser()
    if not path.is_file():
        raise UsageError(f"unknown source {source!r}: use one of {', '.join(SOURCES)} or the "
                         "path of an existing checkpoint file")
    return _read(path)


def initialise(model: nn.Module, config: TrialConfig,
               weights: dict[str, torch.Tensor] | None = None) -> dict:
    """Apply the init regime to a freshly built (seeded) model; returns what was loaded.
    ``weights``: the source's tensors when the caller already has them (a search resolves
    them once in its driver), else they are resolved here."""
    own = model.state_dict()
    source, name = source_of(config.weights, config.data.dataset), config.net.model
    info = {"regime": config.weights.init, "source": source, "tensors_total": len(own),
            "tensors_loaded": 0, "params_loaded": 0, "not_loaded": []}
    if config.weights.init == "scratch":
        info["not_loaded"] = list(own)
        return info
    weights = load_weights(config) if weights is None else weights
    fitting = {k: v for k, v in weights.items() if k in own and own[k].shape == v.shape}
    if not fitting:
        raise UsageError(f"checkpoint {source!r} does not fit {name}: "
                         "no tensor matches by name and shape; pass weights of the same "
                         "architecture")
    params = dict(model.named_parameters())
    head = models.classifier(model)
    head_params = {k for k, p in params.items() if any(p is q for q in head.parameters())}
    missing = [k for k in params if k not in fitting and k not in head_params]
    if missing:  # only the new classifier head may keep its fresh init
        raise UsageError(f"checkpoint {source!r} does not fit {name}: "
                         f"{len(missing)} of its {len(params) - len(head_params)} weight tensors "
                         f"outside the classifier (e.g. {missing[0]}) match none by name and "
                         "shape; pass weights of the same architecture")
    model.load_state_dict(fitting, strict=False)
    info.update(tensors_loaded=len(fitting),
                params_loaded=sum(v.numel() for k, v in fitting.items() if k in params),
                not_loaded=[k for k in own if k not in fitting])
    return info
