"""The documentation site builds with mkdocs in strict mode: no warnings, no broken links.

Strict mode turns every warning into a failure: a broken relative link or anchor, a page
missing from the file tree, or a docstring that griffe cannot parse (a parameter that is
not in the signature, a malformed section).
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).parents[1]


@pytest.mark.skipif(importlib.util.find_spec("mkdocs") is None,
                    reason="mkdocs is not installed (pip install '.[docs]')")
def test_docs_build_strict(tmp_path):
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir",
                           str(tmp_path / "site")], cwd=ROOT, capture_output=True, text=True,
                          env=env, timeout=600)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-5000:]
    assert "WARNING" not in log, log[-5000:]
    site = tmp_path / "site"
    for page in ("index.html", "cli/index.html", "api/estimators/index.html",
                 "guide/families/index.html", "theory/index.html"):
        assert (site / page).exists(), page
    # the API reference is generated from the docstrings, with their formulas for MathJax
    api = (site / "api/estimators/index.html").read_text(encoding="utf-8")
    assert "AdversarialClassifierCV" in api and 'class="arithmatex"' in api
    assert ".. math::" not in api


def test_every_relative_link_in_readme_resolves():
    import re

    text = (ROOT / "README.md").read_text(encoding="utf-8")
    targets = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text)
    local = [t for t in targets if "://" not in t]
    assert local, "the README links to the docs"
    for target in local:
        assert (ROOT / target).exists(), target


# Pages whose code blocks need what a test machine has not: their reason
NOT_RUN = {"docs/backends.md": "reads features.zarr, a larger-than-memory array on disk"}


def _pages_with_code():
    import re

    pages = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    out = {}
    for page in pages:
        blocks = re.findall(r"```python\n(.*?)```", page.read_text(encoding="utf-8"), re.S)
        if blocks:
            out[page.relative_to(ROOT).as_posix()] = blocks
    return out


PAGES = _pages_with_code()


@pytest.mark.parametrize("page", sorted(PAGES))
def test_code_blocks_run_as_shown(page, tmp_path):
    """Every page's ```python blocks run, in order, in one fresh interpreter (a newcomer
    pastes them), and an array a ``print`` line's comment shows is what it prints:
    docs/guide/perturbations.md showed coefficients no version had printed. docs/cli.md
    gets the data.csv its block reads and the console script on PATH."""
    import re

    if page in NOT_RUN:
        pytest.skip(NOT_RUN[page])
    code = "\n".join(PAGES[page])
    rng = np.random.default_rng(0)
    X = rng.standard_normal((100, 3))
    pd.DataFrame(X, columns=["a", "b", "c"]).assign(
        y=X @ [1.0, -0.5, 0.0] + rng.standard_normal(100)).to_csv(tmp_path / "data.csv",
                                                                   index=False)
    env = {**os.environ, "MPLBACKEND": "Agg",
           "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]])}
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                          text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    printed = " ".join(proc.stdout.split())
    for shown in re.findall(r"^\s*print\(.*\)\s+#\s*(\[[-\d.\s]+\])\s*$", code, re.M):
        assert " ".join(shown.split()) in printed, (shown, proc.stdout[-2000:])
