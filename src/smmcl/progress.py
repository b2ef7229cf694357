"""Progress of long loops: a bar on a terminal, a plain line now and then in a log, nothing when quiet.

Every smmcl loop that may take a while (training, evaluation, prediction, dataset generation and checks,
HHA encoding) reports through `track`, so that one switch silences them all (`set_quiet`, the CLI's
`--quiet`). Where progress goes depends on where stderr goes:

- a terminal: a tqdm bar, redrawn in place;
- anything else (a redirected log, a pipe, a CI job): plain lines, one when the count passes each tenth of
  the total (at most one per `MIN_SECONDS`) and at least one per `EVERY_SECONDS` while it runs, e.g.
  ``train demo 300/900 (33%), 1 min 35 s, 3.2 it/s, eta 3 min 10 s, loss=0.52 lr=5.1e-05``;
  a loop that ends within `MIN_SECONDS` without a line leaves none, unless it is kept (`leave=True`),
  which ends with one line at its final count.

A leaf module (standard library only; tqdm imported when a bar is drawn): data, engine and cli all use it.
"""

from __future__ import annotations

import math
import sys
import time
from typing import Any, Iterable, Iterator, Mapping, Optional, TextIO

# Plain-line mode: a line at each `STEP_FRACTION` of the total, no closer than `MIN_SECONDS` to the last one,
# and one at least every `EVERY_SECONDS` (the only rule for loops of unknown length).
STEP_FRACTION = 0.1
MIN_SECONDS = 2.0
EVERY_SECONDS = 60.0

_quiet = False


def set_quiet(quiet: bool) -> bool:
    """Switch every progress display of this process off (True) or back on; returns the previous setting."""
    global _quiet
    previous, _quiet = _quiet, bool(quiet)
    return previous


def is_quiet() -> bool:
    return _quiet


def _is_terminal(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


def _duration(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.0f} s" if seconds >= 10 else f"{seconds:.1f} s"
    minutes, s = divmod(int(seconds + 0.5), 60)
    if minutes < 60:
        return f"{minutes} min {s} s" if s else f"{minutes} min"
    hours, m = divmod(minutes, 60)
    return f"{hours} h {m} min" if m else f"{hours} h"


def _value(v: Any) -> str:
    return f"{v:.3g}" if isinstance(v, float) else str(v)


class Progress:
    """One loop's progress (see the module's doc); iterate over it, or call `update` and `close`
    (or use it as a context manager). `set_postfix` adds figures (e.g. the loss) to the bar or line."""

    def __init__(self, iterable: Optional[Iterable] = None, total: Optional[int] = None, desc: str = "",
                 unit: str = "it", enabled: bool = True, initial: int = 0, leave: bool = False,
                 stream: Optional[TextIO] = None):
        if total is None and iterable is not None:
            try:
                total = len(iterable)  # type: ignore[arg-type]
            except TypeError:
                total = None
        self.iterable, self.total, self.desc, self.unit, self.leave = iterable, total, desc, unit, leave
        self.n = self._start = self._last_n = int(initial)
        self.postfix: dict = {}
        self.stream = stream if stream is not None else sys.stderr  # looked up now: tests and shells swap it
        self.mode = "off" if not enabled or _quiet else ("bar" if _is_terminal(self.stream) else "lines")
        self._t0 = self._last_t = time.perf_counter()
        self._lines = 0
        self._closed = False
        self._bar = None
        if self.mode == "bar":
            from tqdm import tqdm

            self._bar = tqdm(total=total, initial=initial, desc=desc, unit=unit, leave=leave, file=self.stream,
                             dynamic_ncols=True)

    def __iter__(self) -> Iterator:
        if self.iterable is None:
            raise TypeError("Progress without an iterable: call update() instead")
        try:
            for item in self.iterable:
                yield item
                self.update(1)
        finally:
            self.close()

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def set_postfix(self, values: Mapping[str, Any]) -> None:
        self.postfix = dict(values)
        if self._bar is not None:
            self._bar.set_postfix({k: _value(v) for k, v in self.postfix.items()}, refresh=False)

    def update(self, n: int = 1) -> None:
        self.n += n
        if self._bar is not None:
            self._bar.update(n)
        elif self.mode == "lines":
            now = time.perf_counter()
            if now - self._last_t >= EVERY_SECONDS or (self._passed_a_step() and now - self._last_t >= MIN_SECONDS):
                self._line(now)

    def _passed_a_step(self) -> bool:
        if not self.total:
            return False
        step = max(1.0, self.total * STEP_FRACTION)
        return math.floor(self.n / step) > math.floor(self._last_n / step)

    def line(self) -> str:
        """The plain line for the current count."""
        elapsed = time.perf_counter() - self._t0
        done = self.n - self._start
        parts = [f"{self.desc} {self.n}/{self.total} ({100 * self.n / self.total:.0f}%)" if self.total
                 else f"{self.desc} {self.n} {self.unit}", _duration(elapsed)]
        if done > 0 and elapsed > 0:
            rate = done / elapsed
            parts.append(f"{rate:.3g} {self.unit}/s" if rate >= 1 else f"{1 / rate:.3g} s/{self.unit}")
            if self.total and self.n < self.total:
                parts.append(f"eta {_duration((self.total - self.n) / rate)}")
        text = ", ".join(parts)
        if self.postfix:
            text += ", " + " ".join(f"{k}={_value(v)}" for k, v in self.postfix.items())
        return text.strip()

    def _line(self, now: float) -> None:
        print(self.line(), file=self.stream, flush=True)
        self._last_t, self._last_n = now, self.n
        self._lines += 1

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._bar is not None:
            self._bar.close()
        elif self.mode == "lines" and self.n != self._last_n:
            now = time.perf_counter()
            if self.leave or self._lines or now - self._t0 >= MIN_SECONDS:
                self._line(now)


def track(iterable: Optional[Iterable] = None, total: Optional[int] = None, desc: str = "", unit: str = "it",
          enabled: bool = True, initial: int = 0, leave: bool = False, stream: Optional[TextIO] = None) -> Progress:
    """Progress of a loop: `for x in track(items, desc="check train", unit="img", enabled=progress)`,
    or `with track(total=n, desc=...) as bar: ... bar.update()`. `enabled=False` (or `set_quiet(True)`)
    shows nothing; see the module's doc for the terminal bar and the plain lines of a log."""
    return Progress(iterable, total=total, desc=desc, unit=unit, enabled=enabled, initial=initial, leave=leave,
                    stream=stream)
