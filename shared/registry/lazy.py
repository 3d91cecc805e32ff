"""Adapters built on first use, and warmed in the background.

A function's cold start is the time from process start to its first answer.
Google's client libraries take most of it (Firestore with gRPC ~0.9 s,
Cloud Storage ~0.5 s on this machine), and ``/v2/`` (the first request every
client sends) needs neither. So :func:`lazy` returns a stand-in that builds
the real adapter on the first attribute access, under a lock, and starts a
daemon thread that builds it when the process serves its first request
(:meth:`Lazy.kick`): ``/v2/`` answers at once, and by the time a pull's
manifest or blob request comes the adapter is usually ready (if not, that
request waits for the one build, it never starts a second).

Why not warm at import: functions-framework's gunicorn may load the app in
its master process and fork workers. A thread running (or a lock held) at
fork time does not exist in the child, and a gRPC client made before a fork
is not usable after it; so nothing is built, and no thread runs, before the
process that serves requests asks.

A failure to build (for example missing credentials) is raised by the
request that needed the adapter, and logged by the warming thread; settings
problems are still found at start-up, by ``Settings.from_env``.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar, cast

T = TypeVar("T")
log = logging.getLogger(__name__)


class Lazy(Generic[T]):
    def __init__(self, factory: Callable[[], T], what: str) -> None:
        self._factory = factory
        self._what = what
        self._value: T | None = None
        self._lock = threading.Lock()
        self._kicked_in = 0  # the pid that started warming (a fork must start again)

    def resolve(self) -> T:
        value = self._value
        if value is None:
            with self._lock:
                if self._value is None:
                    self._value = self._factory()
                value = self._value
        return value

    def kick(self) -> None:
        """Start warming in the background, once per process."""
        pid = os.getpid()
        if self._kicked_in == pid or self._value is not None:
            return
        self._kicked_in = pid
        threading.Thread(target=self.warm, name=f"warm {self._what}", daemon=True).start()

    def warm(self) -> None:
        try:
            self.resolve()
        except Exception:
            log.exception(
                "building the %s failed; the next request that needs it retries", self._what
            )

    def __getattr__(self, name: str) -> Any:
        return getattr(self.resolve(), name)


def lazy(factory: Callable[[], T], what: str) -> tuple[T, Lazy[T]]:
    """A stand-in for ``factory()`` that builds it on first use, typed as the
    adapter (which it behaves as), and the stand-in itself (to kick)."""
    stand_in = Lazy(factory, what)
    return cast(T, stand_in), stand_in


def kicking(handler: Callable[[Any], Any], *stand_ins: Lazy[Any]) -> Callable[[Any], Any]:
    """``handler``, starting the stand-ins' warming on the first request."""

    def run(request: Any) -> Any:
        for stand_in in stand_ins:
            stand_in.kick()
        return handler(request)

    return run
