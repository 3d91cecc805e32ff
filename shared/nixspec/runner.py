"""Running Nix processes under one deadline, with nothing left behind.

Each Nix command runs in its own session, and when the build's deadline
(``NIX_TIMEOUT``) expires the whole tree is killed: Nix's builders, their
children and any fetcher, not just the top process (upstream bounded
builders only, never evaluation or downloads). Nix starts every builder in a
session of its own, so killing Nix's process group is not enough: the tree
is found through ``/proc`` (parent links) before anything is signalled, gets
SIGTERM first (Nix then stops its builds and releases its locks cleanly),
and whatever is left SIGKILL after a short grace. stdout and stderr are
read concurrently by ``communicate`` (no pipe deadlock however much a build
prints); stderr is kept, its tail goes to the build record.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from nixspec.errors import NixTimeout

LOG_TAIL_BYTES = 16 * 1024  # enough for Nix's last error and its context


def tail(text: str, limit: int = LOG_TAIL_BYTES) -> str:
    return text if len(text) <= limit else "..." + text[-limit:]


@dataclass(frozen=True)
class Completed:
    returncode: int
    stdout: str
    stderr: str


class Deadline:
    """A point in monotonic time that every Nix call of one build shares."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._end = time.monotonic() + seconds

    def remaining(self) -> float:
        return self._end - time.monotonic()


KILL_GRACE_S = 2.0


def _start_time(pid: int) -> bytes | None:
    """When ``pid`` started (clock ticks since boot), None if it is gone:
    with the PID, an identity no later process can share."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            stat = handle.read()
    except OSError:
        return None
    # After the parenthesised command: state (3rd field) ... starttime (22nd).
    return stat[stat.rfind(b")") + 2 :].split()[19]


def _descendants(root: int) -> dict[int, bytes]:
    """``root`` and every process below it, found by parent links in /proc,
    each with its start time."""
    children: dict[int, list[int]] = {}
    started: dict[int, bytes] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as handle:
                stat = handle.read()
        except OSError:
            continue
        # The fields after the parenthesised command: state, ppid, ...
        fields = stat[stat.rfind(b")") + 2 :].split()
        children.setdefault(int(fields[1]), []).append(int(entry))
        started[int(entry)] = fields[19]
    found, queue = {}, [root]
    while queue:
        pid = queue.pop()
        found[pid] = started.get(pid, b"")
        queue.extend(children.get(pid, []))
    return found


def _signal_all(processes: dict[int, bytes], sig: signal.Signals) -> None:
    """Signal each process that is still the one found (same PID and start
    time): never a stranger that was given a PID freed in between."""
    for pid, started in processes.items():
        if _start_time(pid) != started:
            continue
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


def wait_unreaped(pid: int, timeout: float) -> None:
    """Wait up to ``timeout`` s for child ``pid`` to exit, leaving it a zombie."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None:
                return
        except ChildProcessError:
            return
        time.sleep(0.02)


def _kill_tree(process: subprocess.Popen[str]) -> None:
    """SIGTERM the tree, then SIGKILL what is left of it, then reap.

    The leader is not reaped until its group has been killed: a reaped
    leader's PID (its group's ID) can be handed to a new process, and a late
    ``killpg`` would then hit that stranger. For the same reason a process
    is signalled only while its start time is still the one found. The
    SIGKILL goes to the tree first found (Nix's builders, in sessions of
    their own, are orphaned when Nix exits and a new walk would miss them)
    and to whatever a new walk finds below the leader.
    """
    tree = _descendants(process.pid)
    _signal_all(tree, signal.SIGTERM)
    wait_unreaped(process.pid, KILL_GRACE_S)
    _signal_all(tree | _descendants(process.pid), signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)


def run_nix(
    argv: Sequence[str],
    deadline: Deadline,
    env: Mapping[str, str] | None = None,
) -> Completed:
    """Run ``argv``; raise :class:`NixTimeout` (after killing the group) when
    the deadline passes first."""
    if deadline.remaining() <= 0:
        raise NixTimeout(f"NIX_TIMEOUT of {deadline.seconds:g}s expired before {argv[0]} ran")
    process = subprocess.Popen(
        list(argv),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        errors="replace",
        env=dict(env) if env is not None else None,
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=max(deadline.remaining(), 0.001))
    except subprocess.TimeoutExpired:
        _kill_tree(process)
        # Children that inherited the pipes die with the group, so this returns.
        _, stderr = process.communicate()
        raise NixTimeout(
            f"Nix exceeded NIX_TIMEOUT of {deadline.seconds:g}s and was killed", tail(stderr)
        ) from None
    except BaseException:
        _kill_tree(process)
        process.communicate()
        raise
    return Completed(process.returncode, stdout, stderr)
