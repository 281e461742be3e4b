"""One image's detections, the result every predictor returns (torch-free)."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

# What ``det[...]`` takes: one index, a slice, an index array or a boolean mask over the detections.
Index = int | slice | Sequence[int] | np.ndarray


@dataclass
class Detections:
    """Boxes [K, 4] xyxy (original image pixels), scores [K], class_ids [K].

    ``det[mask]``, ``det[indices]``, ``det[2:5]`` and ``det[i]`` select detections (``det[i]`` is a
    Detections of one); :meth:`merge` concatenates; :meth:`empty` has none. ``invalid`` counts the
    candidates the model emitted for this image that were not detections at all
    (:func:`flowdet.core.postprocess.valid_outputs`): a fact about the image, kept by selection and
    summed by merge."""

    boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.float32))
    scores: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    class_ids: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    invalid: int = 0

    def __len__(self) -> int:
        return int(self.scores.shape[0])

    def __getitem__(self, index: Index) -> Detections:
        if isinstance(index, (int, np.integer)):
            index = slice(int(index), int(index) + 1 or None)  # keep the dimension: a Detections of one
            if index.start >= len(self) or index.start < -len(self):
                raise IndexError(f"detection {index.start} of {len(self)}")
        elif not isinstance(index, slice):
            index = np.asarray(index)
            if index.dtype != bool:
                index = index.astype(np.int64).reshape(-1)
        return Detections(self.boxes[index], self.scores[index], self.class_ids[index], self.invalid)

    @classmethod
    def empty(cls) -> Detections:
        return cls()

    @classmethod
    def merge(cls, parts: Sequence[Detections]) -> Detections:
        """All detections of ``parts`` in order, as one (no NMS: that is the caller's rule)."""
        if not parts:
            return cls()
        return cls(np.concatenate([p.boxes.reshape(-1, 4) for p in parts]).astype(np.float32),
                   np.concatenate([p.scores for p in parts]).astype(np.float32),
                   np.concatenate([p.class_ids for p in parts]).astype(np.int64),
                   sum(p.invalid for p in parts))

    def to_coco(self, image_id: int, cat_ids: list[int | None] | None = None) -> list[dict]:
        """COCO results entries ([x, y, w, h]); a class whose ``cat_ids`` entry is None is left out."""
        out = []
        for b, s, c in zip(self.boxes, self.scores, self.class_ids):
            cid = cat_ids[int(c)] if cat_ids is not None else int(c)
            if cid is None:
                continue
            out.append({"image_id": int(image_id), "category_id": int(cid),
                        "bbox": [round(float(b[0]), 3), round(float(b[1]), 3),
                                 round(float(b[2] - b[0]), 3), round(float(b[3] - b[1]), 3)],
                        "score": round(float(s), 5)})
        return out
