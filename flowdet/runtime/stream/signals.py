"""One clean stop for the long-running loops (``flowdet stream``, one source or many): Ctrl-C
(SIGINT) and SIGTERM — what systemd, ``docker stop`` and ``kill`` send — end them the same way.

The first signal only sets the loop's stop event: the loop finishes its frame, the video writers are
released (an mp4 without its index, as a kill leaves it, does not play), the jsonl keeps whole lines
and the summary is written. A second signal raises ``KeyboardInterrupt`` at once (the loops' own
``finally`` still closes the files). Handlers are installed only from the main thread (Python allows
no other) and restored on exit. Torch-free.
"""
from __future__ import annotations

import signal
import threading
from types import FrameType
from typing import Any

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class GracefulStop:
    """``with GracefulStop(stop) as sig:`` (or ``install()`` … ``restore()``): ``sig.count`` signals
    received so far, ``sig.signum`` / ``sig.name`` the first one (None before; the CLI
    exits 128 + that number: 130 after Ctrl-C, 143 after SIGTERM)."""

    def __init__(self, stop: threading.Event):
        self.stop = stop
        self.count = 0
        self.signum: int | None = None
        self._old: dict[int, Any] = {}

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        self.count += 1
        if self.signum is None:
            self.signum = signum
        if self.count > 1:
            raise KeyboardInterrupt  # a second signal: stop now (the caller's finally closes the files)
        self.stop.set()

    @property
    def name(self) -> str | None:
        return None if self.signum is None else signal.Signals(self.signum).name

    def install(self) -> None:
        if threading.current_thread() is threading.main_thread():
            for s in STOP_SIGNALS:
                self._old[s] = signal.signal(s, self._handle)

    def restore(self) -> None:
        for s, old in self._old.items():
            signal.signal(s, old)
        self._old.clear()

    def __enter__(self) -> GracefulStop:
        self.install()
        return self

    def __exit__(self, *exc: object) -> None:
        self.restore()
