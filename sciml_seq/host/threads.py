"""The main-thread rule of host engines that embed a runtime (Julia).

Julia hangs when it is entered from a thread other than the one that started
it, so the Julia engine, and the bridges before they call it (in the forward
and in the backward pass), refuse other threads with :func:`check_main_thread`.
"""

from __future__ import annotations

import threading

from ..errors import UnavailableError

__all__ = ["check_main_thread"]


def check_main_thread(engine: str) -> None:
    """Raise ``UnavailableError`` unless called from the main thread."""
    current = threading.current_thread()
    if current is not threading.main_thread():
        raise UnavailableError(
            f"engine={engine!r}: expected a call from the main thread (Julia hangs when "
            f"entered from another thread); got a call from thread {current.name!r}. Run "
            "the solve (and its backward pass) on the main thread, e.g. not inside a "
            "DataLoader worker thread or a thread pool."
        )
