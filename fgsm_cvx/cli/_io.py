"""Reading data tables and turning command-line words into validated objects.

Every problem with the user's input raises ``UsageError`` (a ``ValueError``) with a
one-line message that names the file, column or option and says what to do; ``main``
prints it as ``fgsm-cvx <subcommand>: error: <message>`` and exits with status 2.
"""

from __future__ import annotations

import json
import math
import sys
import warnings
from pathlib import Path

import numpy as np

PARQUET_SUFFIXES = (".parquet", ".pq")
_SHOW_COLUMNS = 12  # how many column names an error message lists


class UsageError(ValueError):
    """Bad input from the command line (exit status 2)."""


def _column_list(columns):
    names = [str(c) for c in columns]
    shown = ", ".join(names[:_SHOW_COLUMNS])
    return shown + (f", ... ({len(names)} in all)" if len(names) > _SHOW_COLUMNS else "")


def read_table(path):
    """Read a CSV file (``-`` for standard input) or, with pyarrow, a Parquet file.

    Returns
    -------
    pandas.DataFrame
        With at least one row and one column.
    """
    import pandas as pd

    if str(path) == "-":
        source, name = sys.stdin, "<stdin>"
    else:
        source = Path(path)
        name = str(source)
        if not source.exists():
            raise UsageError(f"no such file: {name}")
        if source.is_dir():
            raise UsageError(f"{name} is a directory, not a data file")
    if isinstance(source, Path) and source.suffix.lower() in PARQUET_SUFFIXES:
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise UsageError(f"reading Parquet ({name}) needs pyarrow: "
                             "pip install pyarrow") from None
        try:
            frame = pd.read_parquet(source)
        except Exception as exc:  # pyarrow raises its own types for corrupt files
            raise UsageError(f"cannot read {name} as Parquet: {_one_line(exc)}") from None
    else:
        try:
            # index_col=False: a first row with more fields than the header would make
            # pandas take the first column as the index (the error then blamed the
            # target's "missing values"); pandas warns instead, which is an error here
            with warnings.catch_warnings():
                warnings.simplefilter("error", pd.errors.ParserWarning)
                frame = pd.read_csv(source, index_col=False)
        except pd.errors.ParserWarning:
            raise UsageError(f"cannot read {name} as CSV: a row has more fields than the "
                             "header") from None
        except pd.errors.EmptyDataError:
            raise UsageError(f"{name} is empty") from None
        except (pd.errors.ParserError, UnicodeDecodeError) as exc:
            raise UsageError(f"cannot read {name} as CSV: {_one_line(exc)}") from None
    if frame.shape[0] == 0:
        raise UsageError(f"{name} has a header but no data rows")
    if isinstance(source, Path) and source.suffix.lower() not in PARQUET_SUFFIXES:
        _check_unique_header(source, name)
    frame.attrs["source"] = name
    return frame


def _one_line(exc):
    return " ".join(str(exc).split())


def _check_column(frame, column, what="column"):
    if column not in frame.columns:
        raise UsageError(f"{what} '{column}' not found in {frame.attrs.get('source', 'the data')}"
                         f"; its columns are: {_column_list(frame.columns)}")


def _numeric_column(series, name):
    """The column as float64; UsageError naming the first bad entry otherwise."""
    import pandas as pd

    if pd.api.types.is_bool_dtype(series) or pd.api.types.is_numeric_dtype(series):
        values = series.to_numpy(dtype=np.float64, na_value=np.nan)
    else:
        values = pd.to_numeric(series, errors="coerce").to_numpy(dtype=np.float64,
                                                                 na_value=np.nan)
        bad = np.flatnonzero(np.isnan(values) & series.notna().to_numpy())
        if bad.size:
            row = int(bad[0])
            raise UsageError(f"column '{name}' is not numeric (row {row + 1}: "
                             f"{series.iloc[row]!r}); encode it as numbers or leave it out "
                             f"with --features")
    missing = np.flatnonzero(~np.isfinite(values))
    if missing.size:
        row = int(missing[0])
        kind = "missing" if np.isnan(values[row]) else "infinite"
        raise UsageError(f"column '{name}' has {missing.size} missing or infinite value(s) "
                         f"(first: {kind}, row {row + 1}); drop or impute them first")
    return values


def _check_unique_header(path, name):
    """UsageError for a CSV header that names a column twice (pandas renames the second
    'x' to 'x.1', and a model would be fitted on a feature nobody named)."""
    import csv

    with open(path, newline="", encoding="utf-8-sig", errors="replace") as fh:
        header = next(csv.reader(fh), [])  # (as pandas reads it: no stripping)
    repeated = sorted({h for h in header if header.count(h) > 1})
    if repeated:
        raise UsageError(f"{name}: the header names {_column_list(repeated)} more than once")


def design(frame, target, features=None, classification=False, fitted=None):
    """Split a table into a numeric feature matrix and the target column.

    Parameters
    ----------
    frame : pandas.DataFrame
    target : str
        The response column.
    features : list of str or None
        Feature columns in this order; default every column but ``target``.
    classification : bool
        Class labels may be any two values (strings included); otherwise the target
        must be numeric.
    fitted : str or None
        The model file whose features ``features`` are (``attack``): its labels may be
        one class only (held-out data; the caller checks them against the model's
        classes), and the messages name the model, not ``--features``.

    Returns
    -------
    X : ndarray of float64, shape (n_samples, n_features)
    y : ndarray, shape (n_samples,)
    names : list of str
    """
    _check_column(frame, target, "target column")
    if features is None:
        names = [c for c in frame.columns if c != target]
    else:
        names = list(features)
        for name in names:
            _check_column(frame, name, "feature column")
        if target in names:
            raise UsageError(f"the target column '{target}' is one of {fitted}'s features"
                             if fitted else
                             f"the target column '{target}' is also listed in --features")
        duplicated = sorted({n for n in names if names.count(n) > 1})
        if duplicated:
            raise UsageError(f"--features lists {duplicated} more than once")
    if not names:
        raise UsageError(f"no feature columns: the data has only the target '{target}'")
    X = np.column_stack([_numeric_column(frame[name], name) for name in names])
    column = frame[target]
    if column.isna().any():
        row = int(np.flatnonzero(column.isna().to_numpy())[0])
        raise UsageError(f"target column '{target}' has {int(column.isna().sum())} missing "
                         f"value(s) (first at row {row + 1}); drop those rows first")
    if classification:
        y = column.to_numpy()
        labels = np.unique(y.astype(str))
        if labels.size != 2 and not (fitted and labels.size == 1):
            raise UsageError(f"target column '{target}' has {labels.size} distinct label(s) "
                             f"({_column_list(labels)}); classification needs exactly two")
    else:
        y = _numeric_column(column, target)
    return X, y, [str(n) for n in names]


def split_names(text):
    """'a,b, c' -> ['a', 'b', 'c'] (for --features)."""
    names = [s.strip() for s in text.split(",")]
    if not all(names):
        raise UsageError(f"--features must be comma-separated column names, got {text!r}")
    return names


def parse_perturbation(text):
    """A perturbation set from its command-line name.

    ``linf`` (= ``fgsm``), ``l2`` (= ``fgm``), ``l1``, or ``lp:P`` for the l_P ball
    (P = 1, inf or in ``EXPONENT_RANGE``, [1.004, 250]).
    """
    import fgsm_cvx as fc

    key = text.strip().lower()
    if key.startswith("lp:"):
        try:
            p = float(key[3:])
        except ValueError:
            raise UsageError(f"perturbation {text!r}: write lp:P with a number P >= 1, "
                             "e.g. lp:3") from None
        try:
            return fc.Lp(p)
        except ValueError as exc:
            raise UsageError(f"perturbation {text!r}: {exc}") from None
    if key not in fc.PERTURBATIONS:
        raise UsageError(f"unknown perturbation '{text}'; valid names: "
                         f"{', '.join(sorted(fc.PERTURBATIONS))}, lp:P")
    return fc.PERTURBATIONS[key]()


def parse_family(text):
    """A Family from its name; UsageError listing the valid names otherwise."""
    import fgsm_cvx as fc

    key = text.strip().lower()
    if key not in fc.FAMILIES:
        raise UsageError(f"unknown family '{text}'; valid names: "
                         f"{', '.join(sorted(fc.FAMILIES))}")
    return fc.FAMILIES[key]()


def positive_float(text, option, allow_zero=True):
    """A finite float >= 0 (> 0 if not ``allow_zero``) read from an option value."""
    try:
        value = float(text)
    except ValueError:
        raise UsageError(f"{option} must be a number, got {text!r}") from None
    if not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise UsageError(f"{option} must be a finite number {bound}, got {text!r}")
    return value


def float_list(text, option):
    """'0.1,0.2' -> [0.1, 0.2], each finite and >= 0."""
    return [positive_float(s.strip(), option) for s in text.split(",")]


def json_safe(value):
    """Replace non-finite floats (not JSON) by the strings 'inf', '-inf', 'nan'."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, np.ndarray):
        return json_safe(value.tolist())
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return value if math.isfinite(value) else str(value)
    return value


def print_json(obj, file=None):
    """Print ``obj`` as one JSON object (strict JSON: no NaN/inf literals)."""
    print(json.dumps(json_safe(obj), allow_nan=False), file=file or sys.stdout)


def format_number(value, spec):
    """``format(value, spec)``, or '-' for None."""
    return "-" if value is None else format(value, spec)


def alpha_value(text):
    """--alpha: a number in [0, 1]."""
    alpha = positive_float(text, "--alpha")
    if alpha > 1.0:
        raise UsageError(f"--alpha must be in [0, 1], got {text!r}")
    return alpha


def load_data(args):
    """Read and check everything a data subcommand needs from its arguments.

    Returns
    -------
    dict
        ``X``, ``y``, ``names``, ``family`` (Family), ``family_name`` (as typed, lower
        case), ``perturbation`` (a registry name or an ``Lp`` object), ``alpha``,
        ``fit_intercept`` and ``source`` (the file name).
    """
    family = parse_family(args.family)  # checked before reading a possibly large file
    perturbation = parse_perturbation(args.perturbation)
    alpha = alpha_value(args.alpha)
    features = None if args.features is None else split_names(args.features)
    frame = read_table(args.data)
    X, y, names = design(frame, args.target, features, classification=family.is_classifier)
    key = args.perturbation.strip().lower()
    return {"X": X, "y": y, "names": names, "family": family,
            "family_name": args.family.strip().lower(),
            "perturbation": key if not key.startswith("lp:") else perturbation,
            "alpha": alpha, "fit_intercept": not args.no_intercept,
            "source": frame.attrs["source"]}
