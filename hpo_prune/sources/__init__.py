"""Init sources: where the ``pretrained`` regime's weights come from (``resolve``: ImageNet
files, a checkpoint path, or the offline fractal pre-training of ``pretrain``) and how they
are applied to a freshly built model (``initialise``)."""
from .resolve import SOURCES, initialise, resolve, state_dict_of

__all__ = ["SOURCES", "initialise", "resolve", "state_dict_of"]
