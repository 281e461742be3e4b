"""Which ground-truth category each model class is scored as: matched by **name**.

A model's class index i and the i-th category (by id) of a json are the same thing only when both
were made from the same list. Scored by position alone, a 1-class 'person' model on 'bottle' labels,
or two classes in another order, gives an AP with no word. So: names are compared (whitespace and case
ignored); no common name is a one-line refusal, a partial match is scored with a warning naming the
classes left out, a different order is remapped by name (and said). A side without names (an
ultralytics model trained without them says ``class0``; a json category without a name gets its id)
falls back to the position, with a warning. Torch-free.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from flowdet.errors import InputError

# Names that are only a position: "0", "class0", "class_3" (what tools write when they have no names).
_PLACEHOLDER = re.compile(r"^(class[_ ]?)?\d+$", re.IGNORECASE)
_LISTED = 8  # class names quoted in one message


@dataclass
class ClassMatch:
    """``cat_of_class[i]``: the category id model class i is scored as (None: not in the ground
    truth, its detections are not scored)."""

    cat_of_class: list[int | None]
    by: str                                     # "name" or "order"
    model_only: list[str] = field(default_factory=list)
    gt_only: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _key(name: str) -> str:
    return str(name).strip().casefold()


def _unnamed(names: list[str]) -> bool:
    return all(_PLACEHOLDER.match(str(n).strip()) for n in names)


def _quote(names: list[str]) -> str:
    shown = ", ".join(repr(n) for n in names[:_LISTED])
    return f"[{shown}{', …' if len(names) > _LISTED else ''}]"


def match_classes(model_names: list[str], gt_names: list[str], gt_cat_ids: list[int],
                  source: str | Path) -> ClassMatch:
    """Map the model's classes onto the categories of ``source`` (its ``gt_names`` / ``gt_cat_ids``,
    in class-index order). Raises :class:`InputError` when nothing could be scored."""
    model_names, gt_names = [str(n) for n in model_names], [str(n) for n in gt_names]
    keys_m, keys_g = [_key(n) for n in model_names], [_key(n) for n in gt_names]
    why = ("the model has no class names" if _unnamed(model_names) else
           "the categories have no names" if _unnamed(gt_names) else
           "class names repeat" if len(set(keys_m)) < len(keys_m) or len(set(keys_g)) < len(keys_g) else None)
    if why is not None:
        if len(model_names) != len(gt_names):
            raise InputError(f"{len(gt_names)} categories but the model has {len(model_names)} classes "
                             f"({why}, so they cannot be matched by name)", path=source)
        return ClassMatch(list(gt_cat_ids), "order", warnings=[
            f"{why} ({_quote(model_names)} vs {_quote(gt_names)}): class i is scored as the i-th category by id; "
            "the AP means something only if both lists are in the same order"])
    index_g = {k: i for i, k in enumerate(keys_g)}
    cat_of_class = [gt_cat_ids[index_g[k]] if k in index_g else None for k in keys_m]
    if all(c is None for c in cat_of_class):
        raise InputError(f"the model's classes {_quote(model_names)} share no name with the categories "
                         f"{_quote(gt_names)}: nothing it detects could be scored (a model for other classes? "
                         "to score it anyway, rename the categories to its names)", path=source)
    match = ClassMatch(cat_of_class, "name")
    match.model_only = [n for n, k in zip(model_names, keys_m) if k not in index_g]
    match.gt_only = [n for n, k in zip(gt_names, keys_g) if k not in set(keys_m)]
    if match.model_only:
        match.warnings.append(f"model classes {_quote(match.model_only)} are not categories of {Path(source).name}: "
                              "their detections are not scored")
    if match.gt_only:
        match.warnings.append(f"categories {_quote(match.gt_only)} of {Path(source).name} are not classes of the "
                              "model: scored with no detections (AP 0 each, in the mean)")
    moved = [f"{n!r} (model class {i}) → category {c}" for i, (n, c) in enumerate(zip(model_names, cat_of_class))
             if c is not None and (i >= len(gt_cat_ids) or gt_cat_ids[i] != c)]
    if moved:
        match.notes.append(f"classes matched by name, not position: {', '.join(moved[:_LISTED])}"
                           + (", …" if len(moved) > _LISTED else ""))
    return match
