"""Pre-train a model on the offline fractal corpus and cache it (see ``sources.pretrain``).

    python -m hpo_prune.pretrain --model vgg16 --source fractal [--classes N --per-class M
        --epochs E --lr LR --seed S --image-size P --precision auto|bf16|fp32 --rebuild]
"""
from __future__ import annotations

import sys

from .errors import ArgumentParser, check, cli_main
from .resolution import check_names, precision_of, resolve_trial
from .settings import TrialConfig
from .settings.fields import flag_of
from .files import CACHE_ENV, DEFAULT_CACHE
from .sources.pretrain import CORPORA, ensure, load, settings

# the pre-training command's flags for the fractal settings' record keys (the context says
# "pretrain"); the model, --head, --image-size, --precision and --device are the trial's flags
KEEP = ("model", "head", "image_size", "precision", "device")
FLAGS = {"fractal_classes": "classes", "fractal_per_class": "per-class",
         "pretrain_epochs": "epochs", "pretrain_lr": "lr", "pretrain_seed": "seed"}


def parser() -> ArgumentParser:
    p = ArgumentParser(prog="python -m hpo_prune.pretrain",
                       description="Pre-train a model on a formula-driven (fractal) corpus and "
                       f"cache the checkpoint in ${CACHE_ENV} (default {DEFAULT_CACHE}); "
                       "trials with --init pretrained --source fractal reuse it.")
    p.add_argument("--source", dest="corpus", default="fractal",
                   help=f"pre-training corpus {{{', '.join(CORPORA)}}} (default: %(default)s)")
    p.add_argument("--rebuild", action="store_true",
                   help="train again and replace the cached checkpoint (e.g. a corrupt one)")
    skip = tuple(key for key in TrialConfig.keys()
                 if TrialConfig.field(key).metadata["group"] != "pretrain" and key not in KEEP)
    TrialConfig.add_arguments(p, skip=skip, flags=FLAGS, defaults={"image_size": 32})
    return p


@cli_main
def main(argv=None) -> int:
    args = parser().parse_args(argv)
    check(args.corpus in CORPORA, f"unknown pre-training source {args.corpus!r}: use one of "
          f"{', '.join(CORPORA)} (downloaded weights such as imagenet need no pre-training)")
    flags = (lambda key: FLAGS.get(key, flag_of(key)))  # errors name this command's flags
    config = check_names(TrialConfig.from_args(args).validate(flags), flags)
    config = resolve_trial(config.replace(precision=precision_of(
        config.train.precision, config.train.device, log=lambda line: print(line, flush=True))))
    s = settings(config, args.corpus)
    pt, trained = ensure(s, config.train.device, rebuild=args.rebuild,
                         log=lambda line: print(line, flush=True))
    _, record = load(s)
    if not trained:
        print(f"using cached checkpoint {pt} (corpus accuracy {record['corpus_acc']:.4f}; "
              "--rebuild trains it again)")
    print(f"settings and corpus accuracy: {pt.with_suffix('.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
