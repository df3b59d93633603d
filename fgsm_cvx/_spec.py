"""JSON-safe specifications of families, perturbation sets and penalties.

A model is saved as plain JSON (never pickle): every object parameter of an estimator
is written as ``{"type": class name, "params": {constructor argument: value}}`` and
rebuilt by calling that constructor, which re-validates every value. Only the classes
listed in ``_TYPES`` can be rebuilt, so a tampered file cannot name arbitrary code.
Non-finite floats (JSON has none) are written as ``{"float": "inf"}``, integer and
boolean arrays as ``{"int_array": [...]}`` / ``{"bool_array": [...]}`` (their type
matters: an integer array of group labels is not a list of index lists).
"""

from __future__ import annotations

import inspect
import math

import numpy as np

from . import families, penalties, perturbations


def _public_classes(module, base):
    return {name: obj for name, obj in vars(module).items()
            if inspect.isclass(obj) and issubclass(obj, base) and not name.startswith("_")
            and obj is not base}


_TYPES = {
    **_public_classes(families, families.Family),
    **_public_classes(perturbations, perturbations.Perturbation),
    **_public_classes(penalties, penalties.Penalty),
}
# A CustomSet wraps a Python callable: it has no data-only description.
_TYPES.pop("CustomSet", None)


def _group_params(obj):
    if obj._n_labels is not None:  # written back as the label-per-feature form
        labels = np.full(obj._n_labels, -1, dtype=np.int64)
        for k, idx in enumerate(obj.groups):
            labels[idx] = k
        return {"groups": labels, "p": obj.p}
    return {"groups": [idx.tolist() for idx in obj.groups], "p": obj.p}


def _masked_params(obj):
    if obj._length is not None:
        mask = np.zeros(obj._length, dtype=bool)
        mask[obj.indices] = True
        return {"base": obj.base, "mask": mask}
    return {"base": obj.base, "mask": obj.indices}


# Classes whose constructor arguments are not stored verbatim under their own names.
_PARAMS = {perturbations.Group: _group_params, perturbations.Masked: _masked_params}


def _constructor_params(obj):
    getter = _PARAMS.get(type(obj))
    if getter is not None:
        return getter(obj)
    sig = inspect.signature(type(obj).__init__)
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    names = [n for n, p in sig.parameters.items() if n != "self" and p.kind in kinds]
    return {name: getattr(obj, name) for name in names}


def encode_value(value):
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return value if math.isfinite(value) else {"float": repr(value)}
    if isinstance(value, np.ndarray):
        if value.dtype == bool:
            return {"bool_array": value.tolist()}
        if np.issubdtype(value.dtype, np.integer):  # e.g. group labels, feature indices
            return {"int_array": value.tolist()}
        return [encode_value(v) for v in value.tolist()]
    if isinstance(value, tuple):  # e.g. (lower, upper) bounds; a list means something else
        return {"tuple": [encode_value(v) for v in value]}
    if isinstance(value, list):
        return [encode_value(v) for v in value]
    if callable(value) and not isinstance(value, (families.Family, perturbations.Perturbation,
                                                  penalties.Penalty)):
        raise TypeError("a callable (e.g. a constraint function) cannot be saved as JSON")
    return to_spec(value)


def to_spec(obj):
    """A JSON-safe description of a Family, Perturbation or Penalty (strings pass through).

    Raises
    ------
    TypeError
        For objects that cannot be described by data alone (a ``CustomSet``, whose
        support function is Python code).
    """
    if obj is None or isinstance(obj, str):
        return obj
    name = type(obj).__name__
    if _TYPES.get(name) is not type(obj):
        why = "a CustomSet wraps Python code" if isinstance(obj, perturbations.CustomSet) \
            else "a parameter is saved as plain data (numbers, strings, lists, arrays) or " \
            "as one of these types (a cross-validation splitter: pass cv as an int)"
        raise TypeError(f"{name} objects cannot be saved as JSON (only "
                        f"{sorted(_TYPES)} can): {why}")
    return {"type": name,
            "params": {k: encode_value(v) for k, v in _constructor_params(obj).items()}}


def decode_value(value, where):
    if isinstance(value, dict):
        if set(value) == {"float"} and value["float"] in ("inf", "-inf", "nan"):
            return float(value["float"])
        if set(value) == {"tuple"} and isinstance(value["tuple"], list):
            return tuple(decode_value(v, where) for v in value["tuple"])
        for key, dtype in (("bool_array", bool), ("int_array", np.int64)):
            if set(value) == {key} and isinstance(value[key], list):
                if not all(isinstance(v, int) for v in value[key]):  # bool is an int
                    raise ValueError(f"{where}: {key} must hold integers or booleans")
                return np.asarray(value[key], dtype=dtype)
        return from_spec(value, where)
    if isinstance(value, list):
        return [decode_value(v, where) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise ValueError(f"{where}: unexpected value of type {type(value).__name__}")


def from_spec(spec, where="spec"):
    """Rebuild an object written by ``to_spec`` (strings and None pass through).

    Raises
    ------
    ValueError
        If ``spec`` is malformed, names a type that is not a known family, perturbation
        or penalty, or holds parameters its constructor rejects.
    """
    if spec is None or isinstance(spec, str):
        return spec
    if not isinstance(spec, dict) or set(spec) != {"type", "params"}:
        raise ValueError(f"{where}: expected {{'type': ..., 'params': {{...}}}}, got {spec!r}")
    cls = _TYPES.get(spec["type"]) if isinstance(spec["type"], str) else None
    if cls is None:
        raise ValueError(f"{where}: unknown type {spec['type']!r}; expected one of "
                         f"{sorted(_TYPES)}")
    params = spec["params"]
    if not isinstance(params, dict) or not all(isinstance(k, str) for k in params):
        raise ValueError(f"{where}: 'params' must be an object with string keys")
    kwargs = {k: decode_value(v, f"{where}.{k}") for k, v in params.items()}
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{where}: cannot rebuild {cls.__name__}: {exc}") from exc
