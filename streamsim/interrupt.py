"""Ctrl-C and SIGTERM as a graceful stop: the first signal asks the running scenario
to stop producing and drain (within its drain deadline), the second abandons what is
left at once. Either way every event is still accounted for."""

from __future__ import annotations

import contextlib
import signal
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from types import FrameType

__all__ = ("INTERRUPTS", "Interrupted")


class Interrupted(Exception):
    """A sweep or run stopped early on a signal; ``exit_status`` is 128 + signal number."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"interrupted by {signal.Signals(signum).name}")
        self.signum = signum

    @property
    def exit_status(self) -> int:
        return 128 + self.signum


class Interrupts:
    """Process-wide record of stop requests. ``level`` is 0 (none), 1 (drain and
    stop) or 2 (stop now)."""

    def __init__(self) -> None:
        self.level = 0
        self.signum: int | None = None
        self._listeners: list[Callable[[int], None]] = []

    def request(self, signum: int) -> None:
        """What the signal handler does; callable directly (tests)."""
        self.level = min(self.level + 1, 2)
        self.signum = self.signum or signum
        for listener in list(self._listeners):
            listener(self.level)

    def subscribe(self, listener: Callable[[int], None]) -> Callable[[], None]:
        """Call ``listener(level)`` on each request; returns the unsubscribe function."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def reset(self) -> None:
        self.level = 0
        self.signum = None

    @contextlib.contextmanager
    def install(self) -> Iterator[None]:
        """Handle SIGINT and SIGTERM while the context is open (main thread only)."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def handle(signum: int, frame: FrameType | None) -> None:
            self.request(signum)

        previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


INTERRUPTS = Interrupts()
