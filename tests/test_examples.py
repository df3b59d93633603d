"""Every script in examples/ runs in quick mode and writes its figure.

The interface every example follows: ``python examples/NAME.py --quick --out-dir DIR``
finishes in a few seconds and writes at least one PNG into DIR. New scripts are picked up
automatically.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

# every script of examples/; modules named _*.py are their shared plumbing, not examples
EXAMPLES = sorted(p for p in (Path(__file__).parents[1] / "examples").glob("*.py")
                  if not p.name.startswith("_"))
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_there_are_examples():
    assert len(EXAMPLES) >= 3


@pytest.mark.parametrize("script", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_runs_in_quick_mode_and_writes_a_png(script, tmp_path):
    pytest.importorskip("matplotlib")
    env = {**os.environ, "MPLBACKEND": "Agg", "FGSM_CVX_QUICK": "1"}
    proc = subprocess.run([sys.executable, str(script), "--quick", "--out-dir", str(tmp_path)],
                          capture_output=True, text=True, env=env, timeout=300,
                          cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    pngs = sorted(tmp_path.glob("**/*.png"))
    assert pngs, f"{script.name} wrote no PNG into --out-dir"
    for png in pngs:
        assert png.read_bytes().startswith(PNG_MAGIC), png
