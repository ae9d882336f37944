"""``python -m hpo_prune.export``: one trial of a search as a folder a user deploys.

    python -m hpo_prune.export --results results/vgg16_quick --study pretrained \\
        --pick within-1pt --out exported/vgg16 [--format pt|onnx] [--overwrite]

Every check runs before anything is written (the folder, the ONNX packages, the study, the
trial and its model); the export is then built in a temporary folder beside ``--out`` and
renamed into place once complete, so a failure leaves nothing half written.
"""
from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from ..errors import ArgumentParser, UsageError, cli_main
from ..files import EXPORT_FILE, MODEL_FILE, ONNX_FILE
from .choose import PICKS

OWN_FILES = (MODEL_FILE, EXPORT_FILE, ONNX_FILE)


def parser() -> ArgumentParser:
    p = ArgumentParser(
        prog="python -m hpo_prune.export",
        description="Write one trial's trained, pruned model as a deployable folder: model.pt "
        "(compact for weight pruning; the smaller module for filter pruning; hpo_prune."
        "load_model(OUT) reads it), model.onnx with --format onnx, and model.json (its "
        "settings, val/test accuracy, parameter and MAC counts, file sizes, CPU latency "
        "against the unpruned model).")
    p.add_argument("--results", required=True, metavar="DIR",
                   help="the search's results folder, e.g. results/vgg16_quick")
    p.add_argument("--study", default=None, metavar="S", help="the study: its full name or "
                   "its ending, e.g. digits.pretrained or pretrained (default: the only one)")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--trial", type=int, metavar="N", help="the trial number (trials.csv)")
    which.add_argument("--pick", choices=sorted(PICKS), help="the analysis's rule: the "
                       "configuration removing the most parameters with a mean val accuracy "
                       "within X points of the unpruned reference")
    p.add_argument("--out", required=True, metavar="DIR", help="the folder to write")
    p.add_argument("--format", choices=("pt", "onnx"), default="pt",
                   help="onnx adds model.onnx, checked against PyTorch on the same input "
                   "(needs pip install -e '.[onnx]') (default: %(default)s)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace a finished export already in --out")
    p.add_argument("--repeats", type=int, default=10,
                   help="timed rounds per batch size for the latency (default: %(default)s)")
    p.add_argument("--precision", default="auto", choices=("auto", "bf16", "fp32"),
                   help="compute precision of the latency measurement: 'auto' = bf16 only "
                   "where this CPU computes it natively and measures it faster, else fp32 "
                   "(the trials' rule, measured once per machine) (default: %(default)s)")
    p.add_argument("--threads", type=int, default=0,
                   help="CPU threads torch uses, the latency measurement included (default: "
                   "0 = torch's own choice); on a machine shared with other jobs, 1 gives "
                   "steadier figures")
    return p


def check_out(out: Path, overwrite: bool) -> None:
    """--out must be new, empty, or (with --overwrite) a finished export and nothing else."""
    if not out.exists():
        existing = out
        while not existing.exists():
            existing = existing.parent
        if not existing.is_dir():
            raise UsageError(f"--out {out}: {existing} is a file; pass a folder path")
        if not os.access(existing, os.W_OK):
            raise UsageError(f"--out {out}: {existing} is not writable; choose another --out")
        return
    if not out.is_dir():
        raise UsageError(f"--out {out} is a file; pass a folder path")
    entries = sorted(p.name for p in out.iterdir())
    others = [name for name in entries if name not in OWN_FILES]
    if others:
        raise UsageError(f"--out {out} holds other files ({', '.join(others[:3])}): choose a "
                         "new or empty folder")
    if EXPORT_FILE in entries and not overwrite:
        raise UsageError(f"--out {out} already holds a finished export ({EXPORT_FILE}): pass "
                         "--overwrite to replace it, or choose another --out")


def _place(staged: Path, out: Path) -> None:
    """Move the complete export into ``out`` (replacing what check_out allowed there)."""
    old = None
    if out.exists():
        old = out.with_name(f".{out.name}.old{os.getpid()}")
        os.replace(out, old)
    os.replace(staged, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


@cli_main
def main(argv=None) -> int:
    args = parser().parse_args(argv)
    if args.repeats < 1:
        raise UsageError(f"--repeats must be >= 1, got {args.repeats}")
    if args.threads < 0:
        raise UsageError(f"--threads must be >= 0 (0 = torch's own choice), got "
                         f"{args.threads}")
    out = Path(args.out).expanduser().absolute()
    check_out(out, args.overwrite)
    from . import onnx_file

    if args.format == "onnx":
        onnx_file.require()
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(args.threads or threads)
    try:
        info = export(args, out)
    finally:  # main(argv) called in a process that goes on (tests): leave torch as it was
        torch.set_num_threads(threads)
    _report(out, info)
    return 0


def export(args, out: Path) -> dict:
    """Choose the trial, then build the export beside ``out`` and move it there; returns
    model.json's document."""
    from ..resolution import precision_of
    from ..training.checkpoint import read_model
    from . import artifact, choose

    results = choose.load(args.results)
    study = choose.study_of(results, args.study)
    chosen = choose.choose(results, study, args.trial, args.pick)
    saved = read_model(choose.model_folder(results, chosen))
    missing = [p for p in out.parents if not p.exists()]  # made here, removed on failure
    out.parent.mkdir(parents=True, exist_ok=True)
    staged = out.with_name(f".{out.name}.tmp{os.getpid()}")
    try:
        staged.mkdir()
        info = artifact.write(staged, saved, chosen, Path(args.results), args.format,
                              args.repeats, precision_of(args.precision, "cpu"))
        _place(staged, out)
    except BaseException:
        shutil.rmtree(staged, ignore_errors=True)
        if missing:
            shutil.rmtree(missing[-1], ignore_errors=True)
        raise
    return info


def _report(out: Path, info: dict) -> None:
    c, f, lat = info["counts"], info["files"], info["latency"]
    acc = info["accuracy"]
    picked = info["picked"]
    what = (f" ({picked['pick']}: reference val {picked['reference']['val_acc']:.4f})"
            if picked else "")
    print(f"{info['source']['study']} trial #{info['source']['trial']}{what}: val_acc "
          f"{acc['val_acc']:.4f}, test_acc {acc['test_acc']:.4f}, params "
          f"{c['params_nonzero']:,}/{c['unpruned_params']:,} "
          f"({c['remaining_fraction']:.1%}), MACs {c['macs']:,}/{c['unpruned_macs']:,}")
    print(f"{MODEL_FILE}: {f[MODEL_FILE] / 1e6:.2f} MB ({f['ratio_to_unpruned']:.1%} of the "
          f"unpruned model's {f['unpruned_dense_bytes'] / 1e6:.2f} MB)"
          + (f", {ONNX_FILE}: {f[ONNX_FILE] / 1e6:.2f} MB (checked: max difference "
             f"{info['onnx']['check']['max_abs_diff']:.2g})" if info["onnx"] else ""))
    print("CPU latency vs the unpruned model: " + ", ".join(
        f"batch {key.split('_')[1]} {v['model_ms']:.1f} ms vs {v['dense_ms']:.1f} ms"
        for key, v in lat.items() if key.startswith("batch_")))
    if info["picked"] and info["picked"]["note"]:
        print(f"note: {info['picked']['note']}")
    print(f"-> {out}")


if __name__ == "__main__":
    sys.exit(main())
