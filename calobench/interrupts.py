"""Ctrl-C that always stops a long loop, even when Python loses the first ``KeyboardInterrupt``.

Python runs a signal's handler in the main thread at the next bytecode boundary, wherever that is.
When it falls inside a weakref callback or a ``__del__`` method (which torch, h5py and tqdm run all
the time), the ``KeyboardInterrupt`` is raised there, printed as "Exception ignored in ..." and
dropped: the loop goes on as if nothing had happened. :func:`interruptible` makes the first Ctrl-C
stick: its handler raises ``KeyboardInterrupt`` as usual, and a watchdog thread delivers it again
every ``repeat`` seconds until the block has been left.
"""

from __future__ import annotations

import _thread
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

#: Seconds between deliveries of a Ctrl-C that has not stopped the block yet.
REPEAT_SECONDS = 0.25


@contextmanager
def interruptible(repeat: float = REPEAT_SECONDS) -> Iterator[None]:
    """Within the block, one Ctrl-C (SIGINT) stops the main thread within about ``repeat`` seconds
    of the next Python bytecode, even if the first ``KeyboardInterrupt`` is swallowed. Keep the block
    small (the loop itself): the cleanup after it runs without further interruptions. Outside the
    main thread, or where SIGINT is ignored or handled by someone else, nothing changes."""
    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGINT) not in (
        signal.default_int_handler,
        None,
    ):
        yield
        return
    interrupted, left = threading.Event(), threading.Event()

    def handler(signum: int, frame: Any) -> None:
        if not left.is_set():
            interrupted.set()
            raise KeyboardInterrupt

    def watchdog() -> None:
        while not left.is_set():
            if interrupted.wait(repeat) and not left.wait(repeat):
                _thread.interrupt_main(signal.SIGINT)  # runs ``handler`` again in the main thread

    previous = signal.signal(signal.SIGINT, handler)
    thread = threading.Thread(target=watchdog, name="calobench-interrupt-watchdog", daemon=True)
    thread.start()
    try:
        yield
    finally:
        left.set()
        thread.join()
        _run_pending_handlers()  # a delivery still pending now meets ``handler``, which ignores it
        signal.signal(signal.SIGINT, previous)


def _run_pending_handlers() -> None:
    """A Python-level call: the interpreter runs pending signal handlers on entering it."""
