"""Channel groups: which parameter slices belong to each prunable channel of a model.

Torch-Pruning's dependency graph traces the model and groups coupled channels: a filter of a
convolution, the BatchNorm channel after it, the input channel of every layer that reads it,
the depthwise filter that follows it, and every other filter added to it by a residual
connection. Masking and removing whole groups keeps the masked model and the physically
pruned model numerically identical.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import nn

from ..errors import UsageError
from ..models import classifier
from .layers import prunable_layers


@dataclass
class Slice:
    """Parameter ``name`` along ``dim`` (0 = output, 1 = input channels): entry ``index[i]``
    belongs to channel ``root[i]`` of its group."""
    name: str
    dim: int
    index: torch.Tensor
    root: torch.Tensor


@dataclass
class Group:
    root: nn.Module
    root_name: str
    fn: Callable
    channels: int
    slices: list[Slice] = field(default_factory=list)
    filters: list[Slice] = field(default_factory=list)  # output slices of prunable weights


def example_input(model: nn.Module, input_shape=None) -> torch.Tensor:
    """Zeros of ``input_shape`` (default: one 32x32 image) on the model's device and dtype."""
    param = next(model.parameters())
    if input_shape is None:
        first = next(m for m in model.modules() if isinstance(m, nn.Conv2d))
        input_shape = (1, first.in_channels, 32, 32)
    return torch.zeros(tuple(input_shape), device=param.device, dtype=param.dtype)


def _depthwise(conv: nn.Conv2d) -> bool:
    return conv.groups > 1 and conv.groups == conv.in_channels == conv.out_channels


class ChannelGroups:
    """The prunable channel groups of ``model`` (its final classifier keeps its outputs).

    A group coupled to a layer this module cannot cut exactly (a grouped convolution, a
    LayerNorm over the channels, ...) is left alone whole, its layers named in ``left_alone``.
    Raises UsageError when the dependency graph does not see every prunable layer, or when no
    group is left."""

    def __init__(self, model: nn.Module, input_shape=None, what: str = "this model"):
        import torch_pruning as tp

        self.model = model
        self.prunable = {f"{name}.weight" for name, _ in prunable_layers(model)}
        names = {m: n for n, m in model.named_modules()}
        head = classifier(model)
        hint = "use --granularity weight"
        # the groups Torch-Pruning traces but this module cannot mask exactly: {their prunable
        # layers' weights: why}; those filters are left alone (see left_alone)
        self.skipped: dict[str, str] = {}
        self.param_names = {p: n for n, p in model.named_parameters()}
        training = model.training
        try:
            with torch.enable_grad():
                self.graph = tp.DependencyGraph().build_dependency(
                    model, example_inputs=example_input(model, input_shape), verbose=False)
            tp_groups = list(self.graph.get_all_groups(
                ignored_layers=[head], root_module_types=[nn.Conv2d, nn.Linear]))
        except UsageError:
            raise
        except Exception as err:  # the tracer's own failure on an unsupported model
            message = " ".join(str(err).split())[:200]
            raise UsageError(f"filter pruning cannot trace {what} ({type(err).__name__}: "
                             f"{message}); {hint}") from None
        finally:
            model.train(training)  # tracing switches the model to eval mode
        self.groups = [g for g in (self._group(tp_g, names) for tp_g in tp_groups)
                       if g is not None]
        covered = {s.name for g in self.groups for s in g.filters}
        self.skipped = {name: why for name, why in self.skipped.items() if name not in covered}
        missing = sorted(self.prunable - covered - set(self.skipped))
        if missing:  # the graph did not see them run: masking its groups could break them
            raise UsageError(f"filter pruning cannot handle {what}: the dependency graph finds "
                             f"no prunable channel group for {', '.join(missing[:3])}; {hint}")
        if not self.groups:
            why = next(iter(self.skipped.values()), "it has no prunable layer")
            raise UsageError(f"filter pruning cannot handle {what}: no layer's filters can be "
                             f"removed ({why}); {hint}")

    @property
    def left_alone(self) -> list[str]:
        """The prunable layers whose filters filter pruning leaves alone, each with why (a
        grouped convolution, or a layer type it cannot cut coupled to their channels)."""
        return [f"{name.removesuffix('.weight')}: {why}"
                for name, why in sorted(self.skipped.items())]

    def _group(self, tp_group, names) -> Group | None:
        """The group's slices; None for the model's outputs and for a group this module
        cannot mask exactly (recorded in ``skipped``)."""
        import torch_pruning as tp

        first = tp_group[0]
        root = first.dep.target.module
        group = Group(root, names[root], first.dep.handler, len(first.idxs))
        merged: dict[tuple[str, int], tuple[list, list]] = {}
        problem = None
        for item in tp_group:
            module, handler = item.dep.target.module, item.dep.handler
            if isinstance(module, tp.ops._OutputOp):
                return None  # these channels are an output of the model: never pruned
            if isinstance(module, nn.Parameter):  # a bare per-channel tensor (layer scale)
                name = self.param_names.get(module)
                if name is None or module.dim() != 1:
                    problem = problem or f"coupled to a parameter of shape {tuple(module.shape)}"
                    continue
                index, root_idx = merged.setdefault((name, 0), ([], []))
                index.extend(item.idxs)
                root_idx.extend(item.root_idxs)
                continue
            own = [n for n, _ in module.named_parameters(recurse=False)]
            if not own:
                continue  # additions, reshapes, activations: nothing to mask
            name = names.get(module, type(module).__name__)
            out = self.graph.is_out_channel_pruning_fn(handler)
            if isinstance(module, nn.Conv2d) and module.groups > 1 and not _depthwise(module):
                problem = problem or (f"coupled to {name}, a grouped convolution "
                                      f"(groups={module.groups})")
                dims = {"weight": 0 if out else 1}
            elif isinstance(module, nn.Conv2d):
                dims = {"weight": 0 if out or _depthwise(module) else 1}
                if module.bias is not None and dims["weight"] == 0:
                    dims["bias"] = 0
            elif isinstance(module, nn.Linear):
                dims = {"weight": 0 if out else 1}
                if module.bias is not None and out:
                    dims["bias"] = 0
            elif isinstance(module, nn.modules.batchnorm._BatchNorm):
                dims = {p: 0 for p in own}  # affine weight and bias
            else:  # e.g. a LayerNorm over the channels: masking changes its statistics
                problem = problem or f"coupled to {name} ({type(module).__name__})"
                continue
            for param, dim in dims.items():
                index, root_idx = merged.setdefault((f"{name}.{param}", dim), ([], []))
                index.extend(item.idxs)
                root_idx.extend(item.root_idxs)
        for (name, dim), (index, root_idx) in merged.items():
            s = Slice(name, dim, torch.tensor(index, dtype=torch.long),
                      torch.tensor(root_idx, dtype=torch.long))
            group.slices.append(s)
            if dim == 0 and name in self.prunable:
                group.filters.append(s)
        if problem is not None:  # left alone: every tensor of the group stays as it is
            for s in group.filters:
                self.skipped.setdefault(s.name, problem)
            return None
        return group

    # ------------------------------------------------------------------ masks from channels
    def dim_keep(self, keep: list[torch.Tensor]) -> dict[str, dict[int, torch.Tensor]]:
        """Per parameter and dim, which entries survive when group ``i`` keeps ``keep[i]``."""
        params = dict(self.model.named_parameters())
        out: dict[str, dict[int, torch.Tensor]] = {}
        for g, kept in zip(self.groups, keep):
            dropped = ~kept
            for s in g.slices:
                vec = out.setdefault(s.name, {}).get(s.dim)
                if vec is None:
                    vec = out[s.name][s.dim] = torch.ones(params[s.name].shape[s.dim],
                                                          dtype=torch.bool)
                vec[s.index[dropped[s.root]]] = False
        return out

    def kept_prunable(self, keep: list[torch.Tensor]) -> int:
        """Prunable weights that survive ``keep`` (exact, without building full masks)."""
        dims = self.dim_keep(keep)
        params = dict(self.model.named_parameters())
        total = 0
        for name in self.prunable:
            shape = params[name].shape
            n = 1
            for d, size in enumerate(shape):
                vec = dims.get(name, {}).get(d)
                n *= int(vec.sum()) if vec is not None else size
            total += n
        return total

    def masks(self, keep: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        """``{parameter name: bool mask}`` (True = kept) of every parameter a removal touches."""
        params = dict(self.model.named_parameters())
        result = {}
        for name, dims in self.dim_keep(keep).items():
            p = params[name]
            mask = torch.ones(p.shape, dtype=torch.bool)
            for d, vec in dims.items():
                view = [1] * p.dim()
                view[d] = -1
                mask &= vec.view(view)
            result[name] = mask.to(p.device)
        return result

    def remove(self, keep: list[torch.Tensor]) -> None:
        """Physically remove the channels ``keep`` drops (Torch-Pruning, in place)."""
        for g, kept in zip(self.groups, keep):
            dropped = (~kept).nonzero().flatten().tolist()
            if dropped:
                self.graph.get_pruning_group(g.root, g.fn, dropped).prune(record_history=False)
