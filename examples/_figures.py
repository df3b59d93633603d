"""Plumbing shared by the theory example scripts: their command line and figure saving.

Not an example itself (the leading underscore keeps ``tests/test_examples.py`` from
running it); the scripts import it from their own folder, which Python puts first on the
module path when a script runs.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib.pyplot as plt


def save_figure(fig, out_dir, name):
    """Write ``fig`` to out_dir/name at dpi 100 (creating the folder), close it, say so."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / name
    fig.savefig(path, dpi=100)
    plt.close(fig)
    print(f"wrote {path}")
    return path


def run(main, doc, default_out, quick_help="a few seconds, small n and reps"):
    """``main(quick=..., out_dir=...)`` from the command line: ``--quick``, ``--out-dir``."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=quick_help)
    parser.add_argument("--out-dir", default=str(default_out), help="folder for the PNG")
    args = parser.parse_args()
    return main(quick=args.quick, out_dir=args.out_dir)
