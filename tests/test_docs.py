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
