"""The NIX_TIMEOUT kill: the whole tree goes, strangers never do.

Nix's builders run in sessions of their own, so when the Nix process exits
they are orphaned (re-parented to init) and no longer below it; a builder
that ignores SIGTERM must still be SIGKILLed. Run with ordinary processes
standing in for Nix: what matters is the shape of the tree.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import pytest

from nixspec.errors import NixTimeout
from nixspec.runner import Deadline, run_nix

STUBBORN = (
    "import os, signal, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
    "open(sys.argv[1], 'w').write(str(os.getpid())); time.sleep(600)"
)


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def test_an_orphaned_builder_that_ignores_sigterm_is_killed(tmp_path: Path) -> None:
    pid_file = tmp_path / "builder.pid"
    # The "Nix" process starts a "builder" in a new session, which ignores
    # SIGTERM, then waits; the deadline passes while both run. (The builder
    # does not hold the output pipes, so nothing else waits for its end.)
    script = (
        f"setsid {sys.executable} -c {STUBBORN!r} {pid_file} </dev/null >/dev/null 2>&1 & "
        f"while [ ! -s {pid_file} ]; do sleep 0.05; done; sleep 600"
    )
    with pytest.raises(NixTimeout):
        run_nix(["sh", "-c", script], Deadline(2.0))
    builder = int(pid_file.read_text())
    deadline = time.monotonic() + 10  # SIGKILL lands asynchronously: a bound
    while alive(builder) and time.monotonic() < deadline:
        time.sleep(0.05)
    survived = alive(builder)
    if survived:  # the test started it: do not leave it behind
        os.kill(builder, signal.SIGKILL)
    assert not survived


def test_a_process_that_ends_in_time_is_answered() -> None:
    done = run_nix(["sh", "-c", "echo out; echo err >&2; exit 3"], Deadline(30.0))
    assert (done.returncode, done.stdout, done.stderr) == (3, "out\n", "err\n")
