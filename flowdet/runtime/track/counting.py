"""Debris counts from tracks: new confirmed tracks per interval, optional line crossings, CSV.

- A track counts **once**, when the tracker confirms it (``n_init`` hits); unconfirmed tracks
  (tentative, id 0) are never counted — supervision's ``LineZone`` counting every ``tracker_id = -1``
  box as one track is the failure this avoids.
- Line crossing (``--count-line x1,y1,x2,y2``): a confirmed track counts once when the segment from
  where it was born to where it is now crosses the line segment; jitter on the line cannot count it
  twice, and a track born before confirmation still counts once it is confirmed.
- Intervals (``interval_s``, 60 s by default): ``time`` is the interval start — seconds into the
  video for files, UNIX time for live sources (written as ISO 8601 UTC in the CSV).

Torch-free.
"""
from __future__ import annotations

import csv
import math
import time as _time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flowdet.errors import FlowdetError, InputError
from flowdet.runtime.track.track import Track

CSV_FIELDS = ["time", "source", "count", "cumulative"]
LINE_FIELDS = ["crossings", "crossings_cumulative"]


def parse_count_line(text: str | Iterable[float] | None) -> tuple[float, float, float, float] | None:
    """``"x1,y1,x2,y2"`` (original-frame pixels) → a tuple; anything else is one :class:`InputError`."""
    if text is None:
        return None
    if isinstance(text, str):
        parts = [p.strip() for p in text.split(",")]
        try:
            vals = [float(p) for p in parts]
        except ValueError:
            vals = []
    else:
        vals = [float(v) for v in text]
        parts = [str(v) for v in vals]
    if len(vals) != 4 or not all(math.isfinite(v) for v in vals):
        raise InputError(f"expected four numbers x1,y1,x2,y2 in frame pixels, got {text!r}", field="--count-line")
    x1, y1, x2, y2 = vals
    if (x1, y1) == (x2, y2):
        raise InputError(f"the two end points are the same point ({x1:g},{y1:g}); a line needs two",
                         field="--count-line")
    return x1, y1, x2, y2


def _side(line: tuple[float, float, float, float], p: tuple[float, float]) -> float:
    x1, y1, x2, y2 = line
    return (x2 - x1) * (p[1] - y1) - (y2 - y1) * (p[0] - x1)


def segments_cross(line: tuple[float, float, float, float], a: tuple[float, float], b: tuple[float, float]) -> int:
    """+1 / -1 when segment a→b crosses the line segment (sign = direction, +1 = to the left side of
    x1,y1→x2,y2 in image coordinates), 0 otherwise. Touching counts as not yet crossed."""
    sa, sb = _side(line, a), _side(line, b)
    if sa * sb >= 0 or sa == sb:
        return 0
    x1, y1, x2, y2 = line
    # The line's end points must lie on opposite sides of a→b too.
    ab = (a[0], a[1], b[0], b[1])
    if _side(ab, (x1, y1)) * _side(ab, (x2, y2)) > 0:
        return 0
    return 1 if sb > 0 else -1


@dataclass
class Interval:
    start: float
    count: int = 0
    crossings: int = 0


@dataclass
class Counter:
    """Counts for one source. Call :meth:`update` once per processed frame with the tracker's output."""

    source: str = ""
    interval_s: float = 60.0
    line: tuple[float, float, float, float] | None = None
    live: bool = False
    total: int = 0
    crossings: int = 0
    crossings_by_dir: dict[int, int] = field(default_factory=lambda: {1: 0, -1: 0})
    closed: list[Interval] = field(default_factory=list)
    current: Interval | None = None
    _crossed: set[int] = field(default_factory=set)
    new_crossings: list[tuple[int, int]] = field(default_factory=list)  # (track id, ±1) of the latest update
    _seen: set[int] = field(default_factory=set)

    def _bin(self, t: float) -> float:
        return math.floor(t / self.interval_s) * self.interval_s

    def _advance(self, t: float) -> list[Interval]:
        """Close intervals up to the one holding ``t`` (empty ones in between too); return the closed."""
        start = self._bin(t)
        out = []
        if self.current is None:
            self.current = Interval(start)
        while self.current.start < start:
            self.closed.append(self.current)
            out.append(self.current)
            self.current = Interval(self.current.start + self.interval_s)
        return out

    def update(self, t: float | None, newly_confirmed: Iterable[Track], active: Iterable[Track]) -> list[Interval]:
        """Add this frame's new tracks (and crossings); return the intervals this frame closed."""
        closed = self._advance(_time.time() if t is None else t)
        cur = self.current
        assert cur is not None
        self.new_crossings = []
        newly_confirmed = list(newly_confirmed)
        for tr in newly_confirmed:
            if tr.id > 0 and tr.id not in self._seen:
                self._seen.add(tr.id)
                self.total += 1
                cur.count += 1
        if self.line is not None:
            # A track confirmed as it left the view (between skipped frames) is not among the matched ones.
            for tr in [*active, *newly_confirmed]:
                if tr.id <= 0 or tr.id in self._crossed:
                    continue
                d = segments_cross(self.line, tr.first_center, tr.center)
                if d:
                    self._crossed.add(tr.id)
                    self.crossings += 1
                    self.crossings_by_dir[d] += 1
                    self.new_crossings.append((tr.id, d))
                    cur.crossings += 1
        return closed

    def finish(self) -> list[Interval]:
        """Close the running interval (at exit); return it (a list, possibly empty)."""
        if self.current is None:
            return []
        last = self.current
        self.closed.append(last)
        self.current = None
        return [last]

    def rows(self, intervals: Iterable[Interval]) -> list[dict[str, Any]]:
        """CSV rows for ``intervals`` (closed ones), with running totals over all closed intervals."""
        out = []
        cum = 0
        cum_x = 0
        done = {id(i) for i in intervals}
        for i in self.closed:
            cum += i.count
            cum_x += i.crossings
            if id(i) in done:
                r = {"time": _fmt_time(i.start, self.live), "source": self.source, "count": i.count, "cumulative": cum}
                if self.line is not None:
                    r.update({"crossings": i.crossings, "crossings_cumulative": cum_x})
                out.append(r)
        return out

    def summary(self) -> dict[str, Any]:
        s: dict[str, Any] = {"count": self.total, "interval_s": self.interval_s,
                             "per_interval": [i.count for i in self.closed]}
        if self.current is not None:
            s["per_interval"] = s["per_interval"] + [self.current.count]
        if self.line is not None:
            s.update({"crossings": self.crossings, "crossings_by_direction": {"+": self.crossings_by_dir[1],
                                                                              "-": self.crossings_by_dir[-1]},
                      "line": list(self.line)})
        return s


def _fmt_time(t: float, live: bool) -> str:
    if live:
        return _time.strftime("%Y-%m-%dT%H:%M:%SZ", _time.gmtime(t))
    return f"{t:.1f}"


class CountsCSV:
    """One CSV for all sources: ``time, source, count, cumulative`` (+ crossings columns with a
    line), a row per source per closed interval; line-buffered so a kill leaves whole rows."""

    def __init__(self, path: str | Path, line: bool = False):
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.f = open(self.path, "w", newline="", buffering=1)
        except OSError as e:
            raise FlowdetError(f"cannot write ({e.strerror})", path=self.path) from None
        self.w = csv.DictWriter(self.f, fieldnames=CSV_FIELDS + (LINE_FIELDS if line else []))
        self.w.writeheader()

    def write(self, rows: list[dict[str, Any]]) -> None:
        for r in rows:
            self.w.writerow(r)

    def close(self) -> None:
        if not self.f.closed:
            self.f.close()
