"""A progress line for long runs: done, left and an estimated time to finish (nbgrader #1456)."""

import sys
import time


class Progress:
    def __init__(self, total, stream=None, width=24):
        self.total, self.done, self.stream, self.width = total, 0, stream or sys.stderr, width
        self.start = time.monotonic()

    def step(self, label=""):
        self.done += 1
        elapsed = time.monotonic() - self.start
        left = self.total - self.done
        eta = elapsed / self.done * left
        filled = round(self.width * self.done / self.total) if self.total else self.width
        bar = "#" * filled + "-" * (self.width - filled)
        self.stream.write(
            f"[{bar}] {self.done}/{self.total} done, {left} left, ETA {int(eta) // 60}:{int(eta) % 60:02d}  {label}\n"
        )
        self.stream.flush()
