"""The loop's hook: a sink that raises is counted in status.json and never stops the counting; the
events carry what the sinks need (items once, updates later, roll-ups)."""
from __future__ import annotations

import json

from multistream_helpers import SquareFinder, square_video

from flowdet.monitor.recorder import Recorder, parse_start_time
from flowdet.runtime.stream.multistream import SourceSpec, run_multistream


class Collect:
    kind = "collect"

    def __init__(self):
        self.items, self.updates, self.intervals, self.health_calls = [], [], [], 0

    def on_item(self, item):
        self.items.append(item.as_dict())

    def on_item_update(self, item):
        self.updates.append(item.as_dict())

    def on_interval(self, rollup):
        self.intervals.append(rollup.as_dict())

    def on_health(self, status):
        self.health_calls += 1

    def health(self):
        return {"errors": 0}

    def close(self):
        pass


class Broken(Collect):
    kind = "broken"

    def on_item(self, item):
        raise RuntimeError("sink bug")


def test_a_broken_sink_is_counted_and_counting_goes_on(tmp_path):
    v = square_video(tmp_path / "v.mp4", 3, frames=110)
    good, bad = Collect(), Broken()
    rec = Recorder([bad, good], start_time=100.0)
    s = run_multistream(SquareFinder(), [SourceSpec("river", str(v))], tmp_path / "o", count_line="0,120,320,120",
                        interval_s=2.0, status_every_s=0.1, monitor=rec)
    rec.close(s["stopped_by"])
    assert s["count"] == 3 and [i["track_id"] for i in good.items] == [1, 2, 3]
    st = json.loads((tmp_path / "o" / "status.json").read_text())["monitor"]
    assert st["sink_errors"] == 3 and st["collect"] == {"errors": 0}
    # every counted track is updated (line crossing, its end) with the final facts
    last = {u["track_id"]: u for u in good.updates}
    assert set(last) == {1, 2, 3} and all(u["direction"] in (1, -1) for u in last.values())
    assert all(last[k]["last_seen"] >= i["last_seen"] for k, i in zip((1, 2, 3), good.items))
    assert [r["cumulative"] for r in good.intervals][-1] == 3 and sum(r["count"] for r in good.intervals) == 3
    assert all(r["start"] == 100.0 + r["video_start"] and r["crossings"] is not None for r in good.intervals)
    assert good.health_calls >= 1


def test_parse_start_time():
    assert parse_start_time("2026-05-01T06:00:00Z") == 1777615200.0
    assert parse_start_time("2026-05-01T08:00:00+02:00") == 1777615200.0
    assert parse_start_time("1777615200") == 1777615200.0
    assert parse_start_time(None) is None
