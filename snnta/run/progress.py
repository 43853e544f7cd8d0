"""Progress of a loop: a tqdm bar on a terminal, plain lines when output goes to a file or a pipe.

On a terminal (``stream.isatty()``) a tqdm bar redraws itself with carriage returns; in a log file
those become one long line of redraws, so elsewhere :class:`Progress` prints a plain line every
``every_s`` seconds and one when the loop ends (``leave``).
"""

from __future__ import annotations

import sys
import time

from tqdm.auto import tqdm


def _fmt_s(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


class Progress:
    """``update(n, **postfix)`` after each item; ``close()`` at the end.  ``enabled=False``: silent."""

    def __init__(self, total: int, desc: str, enabled: bool = True, initial: int = 0, unit: str = "it",
                 leave: bool = True, every_s: float = 30.0, stream=None):
        self.stream = stream if stream is not None else sys.stderr
        self.total, self.desc, self.n, self.unit, self.leave = total, desc, initial, unit, leave
        self.enabled, self.every_s, self.postfix = enabled, every_s, {}
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.start = self.last = time.perf_counter()
        self.initial = self.printed = initial
        self.bar = (tqdm(total=total, initial=initial, desc=desc, unit=unit, leave=leave, file=self.stream)
                    if enabled and self.tty else None)

    def update(self, n: int = 1, **postfix) -> None:
        self.n += n
        self.postfix = {k: v for k, v in postfix.items()} or self.postfix
        if self.bar is not None:
            if postfix:
                self.bar.set_postfix(postfix, refresh=False)
            self.bar.update(n)
        elif self.enabled and time.perf_counter() - self.last >= self.every_s:
            self._line()

    def _line(self) -> None:
        now = time.perf_counter()
        self.last, self.printed = now, self.n
        done = self.n - self.initial
        elapsed = now - self.start
        left = f", ~{_fmt_s(elapsed / done * (self.total - self.n))} left" if 0 < done and self.n < self.total else ""
        extra = "".join(f", {k} {v}" for k, v in self.postfix.items())
        print(f"{self.desc}: {self.n}/{self.total} {self.unit}{'s' if self.total != 1 else ''} "
              f"({_fmt_s(elapsed)}{left}){extra}", file=self.stream, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        elif self.enabled and self.leave and self.n > self.printed:
            self._line()
