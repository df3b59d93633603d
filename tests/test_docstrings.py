"""Every public name is documented, with a formula or an example.

A docstring passes when it has

* a formula: a ``.. math::`` block, a line with an equation ``lhs = rhs`` (or ``<=``,
  ``>=``), or a backtick span with mathematics in it; or
* an example: an ``Examples`` section or a ``>>>`` line.

The examples themselves run here (``test_examples_run``, as ``python -m pytest
--doctest-modules fgsm_cvx`` would).
"""

from __future__ import annotations

import doctest
import inspect
import re

import pytest

import fgsm_cvx as fc
import fgsm_cvx.cli

MATH_BLOCK = re.compile(r"\.\. math::")
EQUATION = re.compile(r"\S\s*(?:=|<=|>=|≤|≥)\s*\S")
MATH_SPAN = re.compile(r"`[^`]*(?:[=<>^]|\|\||\bsum\b|sqrt|\\[a-z]+)[^`]*`")


def _has_formula(doc):
    if MATH_BLOCK.search(doc) or MATH_SPAN.search(doc):
        return True
    # an equation on a line that is not code (">>> x = 1" is an example, not a formula),
    # and not a keyword default such as "eps=0.1" inside a sentence
    return any(EQUATION.search(line) and not line.lstrip().startswith((">>>", "..."))
               and re.search(r"\s(?:=|<=|>=|≤|≥)\s", line)
               for line in doc.splitlines())


def _has_example(doc):
    return ">>>" in doc or re.search(r"^\s*Examples\n\s*-+\s*$", doc, re.M) is not None


def _public_objects():
    """(qualified name, object) for fgsm_cvx.__all__ and the fgsm-cvx entry points."""
    for name in fc.__all__:
        yield f"fgsm_cvx.{name}", getattr(fc, name)
    for name in fgsm_cvx.cli.__all__:
        yield f"fgsm_cvx.cli.{name}", getattr(fgsm_cvx.cli, name)


PUBLIC = dict(_public_objects())
DOCUMENTED = {name: obj for name, obj in PUBLIC.items()
              if inspect.isclass(obj) or inspect.isfunction(obj)}
METHOD_CLASSES = (fc.AdversarialClassifier, fc.AdversarialRegressor,
                  fc.AdversarialClassifierCV, fc.AdversarialRegressorCV, fc.Result, fc.Path,
                  fc.Certificate, fc.AdversarialProblem, fc.Comparison, fc.SignNeutrality)


def _public_methods():
    for cls in METHOD_CLASSES:
        for name, member in inspect.getmembers(cls):
            if name.startswith("_"):
                continue
            if inspect.isfunction(member) or inspect.ismethod(member) \
                    or isinstance(member, property):
                yield f"{cls.__name__}.{name}", member


METHODS = dict(_public_methods())


@pytest.mark.parametrize("name", list(PUBLIC), ids=list(PUBLIC))
def test_every_public_name_has_a_docstring(name):
    doc = inspect.getdoc(PUBLIC[name])
    assert doc and len(doc.split()) >= 5, f"{name} has no (or a one-word) docstring"


@pytest.mark.parametrize("name", list(DOCUMENTED), ids=list(DOCUMENTED))
def test_docstring_has_a_formula_or_an_example(name):
    doc = inspect.getdoc(DOCUMENTED[name])
    assert _has_formula(doc) or _has_example(doc), (
        f"{name}: the docstring needs a formula (.. math::, an equation, maths in "
        "backticks) or an Examples section")


@pytest.mark.parametrize("name", list(METHODS), ids=list(METHODS))
def test_public_methods_have_docstrings(name):
    member = METHODS[name]
    doc = inspect.getdoc(member.fget if isinstance(member, property) else member)
    assert doc, f"{name} has no docstring"


def test_the_checks_are_not_vacuous():
    assert _has_formula("The loss.\n\n.. math:: l(y, \\eta)")
    assert _has_formula("c = eps * ||beta||_*")
    assert _has_formula("the shift `eps ||beta||_1`")
    assert not _has_formula("Fit with eps=0.1 and alpha=0.5.")
    assert not _has_formula(">>> x = 1")
    assert _has_example("Examples\n--------\n>>> 1 + 1\n2")
    assert not _has_example("No examples here.")


def _modules():
    import importlib
    import pkgutil

    names = ["fgsm_cvx"] + [m.name for m in pkgutil.walk_packages(fc.__path__, "fgsm_cvx.")
                            if not m.name.endswith("__main__")]
    return [importlib.import_module(name) for name in names]


def _doctests(module):
    return [t for t in doctest.DocTestFinder(exclude_empty=True).find(module) if t.examples]


MODULES = [m for m in _modules() if _doctests(m)]


@pytest.mark.parametrize("module", MODULES, ids=[m.__name__ for m in MODULES])
def test_examples_run(module):
    """The docstring examples are correct (as ``pytest --doctest-modules fgsm_cvx``)."""
    tests = _doctests(module)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    for test in tests:
        runner.run(test)
    assert runner.summarize(verbose=False).failed == 0
