"""Init sources: where the ``pretrained`` regime's weights come from (``load_weights``: ImageNet
files, a checkpoint path, or the offline fractal pre-training of ``pretrain``) and how they
are applied to a freshly built model (``initialise``)."""
from .weights import SOURCES, initialise, load_weights, state_dict_of

__all__ = ["SOURCES", "initialise", "load_weights", "state_dict_of"]
