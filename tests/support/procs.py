"""Start, poll and stop server processes for tests, always by PID.

Every server binds 127.0.0.1 only, logs to a file in the test's temporary
directory, and runs in its own session (so its process group holds the
children it forks). Nothing here ever matches processes by name: stopping is
SIGTERM to the leader, then SIGKILL to the group after a grace period, and the
leader is always reaped. Daemons that double-fork helpers out of their group
(containerd shims) are found by the unique temporary path on their command
line, then signalled by PID.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import requests

from nixspec.runner import wait_unreaped

LOG_TAIL_LINES = 40


class ProcessFailure(AssertionError):
    """A server or command failed; the message carries its log or stderr."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    """The last ``lines`` lines of a log file ("" when it does not exist)."""
    try:
        data = path.read_bytes()
    except OSError:
        return ""
    text = data.decode("utf-8", errors="replace")
    return "\n".join(text.splitlines()[-lines:])


@dataclass(eq=False)
class ServerProcess:
    """A started server: its Popen, its log file and a name for messages."""

    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path
    #: Extra process trees to stop with it (found by :func:`pids_referencing`).
    owned_path: Path | None = None
    stopped: bool = field(default=False, init=False)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.exit_status() is None

    def exit_status(self) -> str | None:
        """How the server ended (None while it runs), without reaping it:
        until :meth:`stop` reaps it, its PID (its group's ID) stays ours."""
        if self.popen.returncode is not None:
            return f"exited with {self.popen.returncode}"
        try:
            ended = os.waitid(os.P_PID, self.popen.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            return "reaped elsewhere"
        if ended is None:
            return None
        if ended.si_code == os.CLD_EXITED:
            return f"exited with {ended.si_status}"
        return f"killed by signal {ended.si_status}"

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        return tail(self.log_path, lines)

    def failure(self, message: str) -> ProcessFailure:
        """An assertion error naming this server, with its log tail."""
        state = self.exit_status() or "running"
        return ProcessFailure(
            f"{self.name} (pid {self.pid}, {state}): {message}\n"
            f"--- last lines of {self.log_path} ---\n{self.log_tail()}"
        )

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM the leader, SIGKILL its group after ``grace`` seconds, reap."""
        if self.stopped:
            return
        self.stopped = True
        with contextlib.suppress(ValueError):
            STARTED.remove(self)
        stop_pid(self.popen, grace=grace)
        if self.owned_path is not None:
            kill_pids(pids_referencing(self.owned_path), grace=grace)


#: Servers started and not stopped yet (for failure reports).
STARTED: list[ServerProcess] = []


def start_server(
    name: str,
    argv: Sequence[str | os.PathLike[str]],
    log_path: Path,
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    owned_path: Path | None = None,
) -> ServerProcess:
    """Start ``argv`` in a new session, stdout and stderr appended to ``log_path``."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        popen = subprocess.Popen(
            [os.fspath(a) for a in argv],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            start_new_session=True,
        )
    server = ServerProcess(name=name, popen=popen, log_path=log_path, owned_path=owned_path)
    STARTED.append(server)
    return server


def died_unexpectedly() -> list[str]:
    """For a failure report: each started, not yet stopped server that is no
    longer running, with how it ended and its log tail."""
    return [
        f"{server.name} (pid {server.pid}) {status}\n"
        f"--- last lines of {server.log_path} ---\n{server.log_tail()}"
        for server in list(STARTED)
        if (status := server.exit_status()) is not None
    ]


def wait_until(
    ready: Callable[[], bool],
    server: ServerProcess,
    *,
    what: str,
    timeout: float = 30.0,
    interval: float = 0.05,
) -> None:
    """Poll ``ready`` until true; fail with the log tail on timeout or exit."""
    deadline = time.monotonic() + timeout
    while True:
        if not server.alive():
            raise server.failure(f"exited before {what}")
        try:
            if ready():
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise server.failure(f"not {what} after {timeout:.0f} s")
        time.sleep(interval)


def tcp_accepts(host: str, port: int) -> bool:
    with socket.create_connection((host, port), timeout=1.0):
        return True


def unix_socket_accepts(path: Path) -> bool:
    if not path.exists():
        return False
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(1.0)
        sock.connect(os.fspath(path))
        return True


def http_ok(url: str) -> bool:
    """True when ``url`` answers with any status below 500."""
    try:
        response = requests.get(url, timeout=2.0)
    except requests.RequestException:
        return False
    return response.status_code < 500


def stop_pid(popen: subprocess.Popen[bytes], grace: float = 10.0) -> None:
    """SIGTERM the process, then SIGKILL its process group; always reap it.

    The process must have been started with ``start_new_session=True`` (its
    PID is then its process group ID), so the group holds only its children.
    """
    pgid = popen.pid
    if popen.returncode is None:  # not reaped: its PID (the group's ID) is still ours
        with contextlib.suppress(ProcessLookupError):
            os.kill(popen.pid, signal.SIGTERM)
        wait_unreaped(popen.pid, grace)
        # Whatever is left of the group (children that ignored the leader's
        # exit), killed before the leader is reaped: once reaped, its PID may
        # be given to a new process (pid_max is 32768 here) and a late killpg
        # would kill that one, e.g. the next test's server.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)
    elif group_members(pgid):  # reaped already, but a live member keeps the ID reserved
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)
    popen.wait()
    # SIGKILL is delivered asynchronously: wait until no member still runs.
    deadline = time.monotonic() + 10.0
    while group_members(pgid) and time.monotonic() < deadline:
        time.sleep(0.02)


def group_members(pgid: int) -> list[int]:
    """PIDs of live (non-zombie) processes in process group ``pgid``."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        # After the command name: state, ppid, pgrp, ...
        if len(fields) > 2 and fields[2] == str(pgid) and fields[0] != "Z":
            members.append(int(entry.name))
    return members


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def pids_referencing(path: Path) -> list[int]:
    """PIDs of processes whose command line names ``path`` (a unique tmp dir).

    Used to find helpers a daemon double-forked out of its process group
    (containerd shims); ``path`` must be a directory the test created.
    """
    needle = os.fsencode(os.fspath(path))
    me = os.getpid()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        if pid != me and needle in _cmdline(pid):
            found.append(pid)
    return sorted(found)


def kill_pids(pids: Sequence[int], grace: float = 5.0) -> None:
    """SIGTERM each PID, SIGKILL the survivors after ``grace`` seconds."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    alive = list(pids)
    while alive and time.monotonic() < deadline:
        alive = [p for p in alive if _is_running(p)]
        if alive:
            time.sleep(0.05)
    for pid in alive:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5.0  # SIGKILL lands asynchronously
    while alive and time.monotonic() < deadline:
        alive = [p for p in alive if _is_running(p)]
        if alive:
            time.sleep(0.02)
    for pid in pids:  # reap the ones that are our own children
        with contextlib.suppress(ChildProcessError, OSError):
            os.waitpid(pid, os.WNOHANG)


def _is_running(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    # The state letter follows the parenthesised command name; Z is a zombie.
    return stat.rpartition(")")[2].split()[0] != "Z"


def mounts_under(path: Path) -> list[str]:
    """Mount points at or below ``path`` in this mount namespace, deepest first."""
    root = os.path.realpath(path)
    found = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        mount_point = line.split()[4].encode().decode("unicode_escape")
        if mount_point == root or mount_point.startswith(root + "/"):
            found.append(mount_point)
    return sorted(found, key=lambda m: (m.count("/"), m), reverse=True)


def unmount_under(path: Path) -> list[str]:
    """Unmount everything at or below ``path`` (which the test created).

    Returns what was unmounted. Tries a normal unmount first and a lazy one
    for a mount still busy.
    """
    done = []
    for _ in range(5):  # stacked mounts need several passes
        points = mounts_under(path)
        if not points:
            break
        for point in points:
            result = subprocess.run(["umount", point], capture_output=True, check=False)
            if result.returncode != 0:
                subprocess.run(["umount", "-l", point], capture_output=True, check=False)
            done.append(point)
    return done


@dataclass(frozen=True)
class CommandResult:
    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str
    seconds: float
    stdout_bytes: bytes = b""


class CommandFailed(ProcessFailure):
    """A client command exited non-zero or timed out."""

    def __init__(self, result: CommandResult, note: str = "") -> None:
        self.result = result
        super().__init__(
            f"command failed ({note or f'exit {result.returncode}'}, "
            f"{result.seconds:.1f} s): {' '.join(result.argv)}\n"
            f"--- stderr ---\n{_last_lines(result.stderr)}\n"
            f"--- stdout ---\n{_last_lines(result.stdout)}"
        )


def _last_lines(text: str, lines: int = LOG_TAIL_LINES) -> str:
    return "\n".join(text.splitlines()[-lines:])


def run_command(
    argv: Sequence[str | os.PathLike[str]],
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = 300.0,
    check: bool = True,
    input_bytes: bytes | None = None,
) -> CommandResult:
    """Run a client command in its own session; kill its group on timeout.

    Raises :class:`CommandFailed` (with stderr) on a non-zero exit when
    ``check`` is true, and always on a timeout.
    """
    __tracebackhide__ = True
    args = tuple(os.fspath(a) for a in argv)
    started = time.monotonic()
    popen = subprocess.Popen(
        args,
        stdin=subprocess.PIPE if input_bytes is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=dict(env) if env is not None else None,
        cwd=cwd,
        start_new_session=True,
    )
    try:
        out, err = popen.communicate(input=input_bytes, timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(popen.pid, signal.SIGKILL)
        out, err = popen.communicate()
        result = CommandResult(
            args,
            -9,
            out.decode(errors="replace"),
            err.decode(errors="replace"),
            time.monotonic() - started,
        )
        raise CommandFailed(result, f"timed out after {timeout:.0f} s") from None
    result = CommandResult(
        args,
        popen.returncode,
        out.decode(errors="replace"),
        err.decode(errors="replace"),
        time.monotonic() - started,
        stdout_bytes=out,
    )
    if check and result.returncode != 0:
        raise CommandFailed(result)
    return result


CGROUP_ROOT = Path("/sys/fs/cgroup")


def remove_cgroup(name: str) -> list[str]:
    """Remove the cgroup ``name`` (and its children) from every hierarchy.

    For a cgroup parent the test chose itself (a unique name); a cgroup still
    holding tasks stays. Returns the directories that could not be removed.
    """
    relative = name.strip("/")
    if not relative:
        raise ValueError("refusing to remove the root cgroup")
    left = []
    candidates = [CGROUP_ROOT / relative]
    if CGROUP_ROOT.is_dir():
        candidates += [h / relative for h in CGROUP_ROOT.iterdir() if h.is_dir()]
    for top in candidates:
        if not top.is_dir():
            continue
        dirs = [Path(d) for d, _, _ in os.walk(top)]
        for directory in sorted(dirs, key=lambda p: len(p.parts), reverse=True):
            try:
                directory.rmdir()
            except OSError:
                left.append(str(directory))
    return left


class CreatedDirs:
    """Remember which shared directories exist now; later remove the ones a
    daemon created since, when they are empty again (``/run/runc``,
    ``/run/containerd/s`` ...). A directory still in use is never touched."""

    def __init__(self, paths: Sequence[Path]) -> None:
        self._new = [p for p in paths if not p.exists()]

    def cleanup(self) -> None:
        for path in sorted(self._new, key=lambda p: len(p.parts), reverse=True):
            if path.is_dir() and not any(path.iterdir()):
                with contextlib.suppress(OSError):
                    path.rmdir()
