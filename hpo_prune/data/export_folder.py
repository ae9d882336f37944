"""Write a built-in dataset as an image folder (torchvision's ImageFolder layout), e.g. to try
``--dataset folder:PATH`` offline on the embedded digits:

    python -m hpo_prune.data.export_folder digits_png

writes ``digits_png/train/<class>/<n>.png`` (the official training images: the search carves
its val split out of them) and ``digits_png/test/<class>/<n>.png`` (the official test split),
as RGB PNG files at the dataset's own size.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from ..errors import ArgumentParser, UsageError, cli_main
from ..settings import DataSettings
from . import datasets


def parser() -> ArgumentParser:
    p = ArgumentParser(prog="python -m hpo_prune.data.export_folder",
                       description="Write a built-in dataset's train and test images as PNG "
                       "files in torchvision's ImageFolder layout (OUT/train/<class>/*.png, "
                       "OUT/test/<class>/*.png).")
    p.add_argument("out", help="folder to write (must not hold a train/ folder yet)")
    p.add_argument("--dataset", default="digits", choices=sorted(datasets.DATASETS),
                   help="the dataset to write (default: %(default)s)")
    p.add_argument("--data-dir", default="", help="root of the datasets (default: "
                   "$HPO_PRUNE_DATA or ~/.cache/hpo_prune/data)")
    return p


def write(out: Path, dataset: str = "digits", data_dir: str = "") -> dict[str, int]:
    """Write ``dataset`` under ``out``; returns the images written per split."""
    from PIL import Image

    settings = DataSettings(dataset=dataset, data_dir=data_dir)
    raw = datasets.DATASETS[dataset](datasets.data_root(settings), settings)
    if (out / "train").exists():
        raise UsageError(f"{out} already holds a train/ folder: choose another OUT")
    counts = {}
    for split, x, y in (("train", raw.train_x, raw.train_y), ("test", raw.test_x, raw.test_y)):
        for n, (image, label) in enumerate(zip(x, y)):
            folder = out / split / f"{int(label):03d}"
            folder.mkdir(parents=True, exist_ok=True)
            pixels = np.ascontiguousarray(image.permute(1, 2, 0).numpy())
            Image.fromarray(pixels, "RGB").save(folder / f"{n:05d}.png")
        counts[split] = len(y)
    return counts


@cli_main
def main(argv=None) -> int:
    args = parser().parse_args(argv)
    out = Path(args.out).expanduser()
    counts = write(out, args.dataset, args.data_dir)
    print(f"wrote {counts['train']} train and {counts['test']} test images of {args.dataset} to "
          f"{out} (use it as --dataset folder:{out})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
