"""Real registry clients, each confined to a temporary directory.

One class per client. Every class keeps its state (storage roots, run
directories, sockets, config, temporary files) under the ``workdir`` it is
given, starts its daemon (if any) there and stops it by PID. All of them have
the same entry point::

    client.pull_and_run("127.0.0.1:5000", "test/busybox:latest", ["busybox", "echo", "hi"])

which really pulls from the registry (the local copy is removed again
afterwards, so a second call pulls again), runs ``argv`` in the image and
returns its stdout. A failing command raises :class:`ClientError` carrying the
command line and its stderr. ``close()`` stops what the client started,
unmounts what it left mounted under ``workdir`` and removes the cgroups it
made; ``leftovers()`` then lists anything still there (the tests assert it is
empty).

Flags are the ones in ``shared/notes/clients.md``; see each class for the
quirks on top.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import tarfile
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar, Protocol, Self

import pytest

from tests.support.procs import (
    CommandFailed,
    CommandResult,
    CreatedDirs,
    ServerProcess,
    kill_pids,
    mounts_under,
    pids_referencing,
    remove_cgroup,
    run_command,
    start_server,
    unix_socket_accepts,
    unmount_under,
    wait_until,
)

#: Debian package providing each tool (for skip messages).
PACKAGES: dict[str, str] = {
    "docker": "docker.io",
    "dockerd": "docker.io",
    "podman": "podman",
    "buildah": "buildah",
    "skopeo": "skopeo",
    "containerd": "containerd",
    "ctr": "containerd",
    "runc": "runc",
    "umoci": "umoci",
    "chroot": "coreutils",
    "docker-registry": "docker-registry",
    "busybox": "busybox-static",
    "newuidmap": "uidmap",
    "fuse-overlayfs": "fuse-overlayfs",
}

DEFAULT_TIMEOUT = 300.0
RUN_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

ClientError = CommandFailed
"""Raised when a client command fails (message: command line, stderr, stdout)."""


def missing_tools(*tools: str) -> list[str]:
    return [tool for tool in tools if shutil.which(tool) is None]


def skip_unless_installed(*tools: str) -> None:
    """Skip the calling test unless every tool is on PATH (and we are root,
    which dockerd, containerd, podman's runc and chroot all need).

    CI installs all of them and runs as root, so nothing should skip there;
    the message names the Debian packages to install.
    """
    if os.geteuid() != 0:
        pytest.skip("the real-client harness runs containers: it needs root")
    missing = missing_tools(*tools)
    if missing:
        packages = sorted({PACKAGES.get(tool, tool) for tool in missing})
        pytest.skip(f"{', '.join(missing)} not installed: apt-get install {' '.join(packages)}")


def image_ref(registry: str, image: str) -> str:
    """``127.0.0.1:5000`` (or ``http://127.0.0.1:5000/``) + ``name:tag``."""
    host = registry.removeprefix("http://").removeprefix("https://").rstrip("/")
    return f"{host}/{image.lstrip('/')}"


@dataclass
class Timing:
    """Seconds spent in the last ``pull_and_run`` (pull includes unpacking)."""

    pull: float = 0.0
    run: float = 0.0

    @property
    def total(self) -> float:
        return self.pull + self.run


class RegistryClient(Protocol):
    """What every client class offers."""

    @property
    def name(self) -> str: ...

    @property
    def last_timing(self) -> Timing: ...

    def pull_and_run(self, registry: str, image: str, argv: list[str]) -> str: ...

    def close(self) -> None: ...

    def leftovers(self) -> list[str]: ...


@dataclass
class _Base:
    """Shared plumbing: a workdir, an environment, command history, cleanup."""

    workdir: Path
    name: ClassVar[str] = "client"
    tools: ClassVar[tuple[str, ...]] = ()
    timeout: float = DEFAULT_TIMEOUT
    history: list[CommandResult] = field(default_factory=list, init=False)
    last_timing: Timing = field(default_factory=Timing, init=False)
    cgroup_parent: str = field(init=False)
    closed: bool = field(default=False, init=False)
    #: Directories outside ``workdir`` the client owns (removed by close()).
    extra_dirs: list[Path] = field(default_factory=list, init=False)

    def __post_init__(self) -> None:
        self.workdir = self.workdir.resolve()
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "tmp").mkdir(exist_ok=True)
        self.cgroup_parent = f"/nixery-tests-{self.name}-{uuid.uuid4().hex[:12]}"

    @property
    def env(self) -> dict[str, str]:
        """A minimal environment; TMPDIR keeps containers/image temp files
        (big layer downloads) out of /var/tmp."""
        return {
            "PATH": os.environ.get("PATH", RUN_PATH),
            "HOME": str(self.workdir / "home"),
            "TMPDIR": str(self.workdir / "tmp"),
            "LANG": "C.UTF-8",
        }

    def command(
        self,
        argv: Sequence[str | os.PathLike[str]],
        *,
        timeout: float | None = None,
        check: bool = True,
    ) -> CommandResult:
        result = run_command(argv, env=self.env, timeout=timeout or self.timeout, check=check)
        self.history.append(result)
        return result

    def _timed_pull_and_run(
        self, pull: Callable[[], object], run: Callable[[], str], cleanup: Callable[[], object]
    ) -> str:
        """Time ``pull`` and ``run`` into :attr:`last_timing`; always ``cleanup``."""
        started = time.monotonic()
        pull()
        pulled = time.monotonic()
        try:
            output: str = run()
        finally:
            self.last_timing = Timing(pull=pulled - started, run=time.monotonic() - pulled)
            cleanup()
        return output

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._stop()
        for directory in (self.workdir, *self.extra_dirs):
            kill_pids(pids_referencing(directory))  # stragglers, by PID
        for directory in (self.workdir, *self.extra_dirs):
            unmount_under(directory)
        for directory in self.extra_dirs:
            shutil.rmtree(directory, ignore_errors=True)
        remove_cgroup(self.cgroup_parent)

    def short_dir(self, prefix: str) -> Path:
        """A directory with a short path (sockets inside must fit in 108
        bytes), owned by this client and removed by close()."""
        path = Path(tempfile.mkdtemp(prefix=f"nxt-{prefix}-", dir="/tmp"))
        self.extra_dirs.append(path)
        return path

    def _stop(self) -> None:
        """Stop daemons; overridden by the daemon clients."""

    def leftovers(self) -> list[str]:
        """Processes and mounts still tied to ``workdir``, and cgroups left."""
        found = []
        for directory in (self.workdir, *self.extra_dirs):
            found += [f"process {pid}: {_cmdline(pid)}" for pid in pids_referencing(directory)]
            found += [f"mount {m}" for m in mounts_under(directory)]
        found += [f"directory {d}" for d in self.extra_dirs if d.exists()]
        relative = self.cgroup_parent.strip("/")
        found += [
            f"cgroup {h / relative}"
            for h in Path("/sys/fs/cgroup").iterdir()
            if (h / relative).exists()
        ]
        return found

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _cmdline(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return "?"
    return raw.replace(b"\0", b" ").decode(errors="replace").strip()


class Docker(_Base):
    """dockerd 20.10 with its own data root, exec root, socket and config.

    Quirks beyond clients.md: ``--config-file`` with ``deprecated-key-path``
    keeps dockerd 20.10 from writing ``/etc/docker/key.json``; DOCKER_CONFIG
    keeps the CLI out of ``~/.docker``; ``--cgroup-parent`` gives containers a
    cgroup the cleanup can remove; ``run --pull never`` makes sure ``run``
    uses what ``pull`` fetched. 127.0.0.0/8 is an insecure registry by default.
    dockerd creates ``/run/docker/plugins`` (removed again when empty).
    """

    name: ClassVar[str] = "docker"
    tools: ClassVar[tuple[str, ...]] = ("dockerd", "docker", "containerd", "runc")
    server: ServerProcess | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        self.server = None
        self._shared_dirs = CreatedDirs(
            [
                Path("/run/docker/plugins"),
                Path("/run/docker"),
                Path("/run/runc"),
                # dockerd's own containerd puts shim sockets here too.
                Path("/run/containerd/s"),
                Path("/run/containerd"),
            ]
        )
        # Unix socket paths must fit in 108 bytes: the daemon socket and the
        # exec root (which holds containerd's sockets) live in a short dir.
        self.rundir = self.short_dir("docker")

    @property
    def socket(self) -> Path:
        return self.rundir / "docker.sock"

    @property
    def env(self) -> dict[str, str]:
        env = super().env
        env["DOCKER_HOST"] = f"unix://{self.socket}"
        env["DOCKER_CONFIG"] = str(self.workdir / "cli")
        return env

    def start(self, timeout: float = 60.0) -> Self:
        d = self.workdir
        (d / "daemon.json").write_text(json.dumps({"deprecated-key-path": str(d / "key.json")}))
        self.server = start_server(
            "dockerd",
            [
                "dockerd",
                "--iptables=false",
                "--ip6tables=false",
                "--ip-forward=false",
                "--ip-masq=false",
                "--bridge=none",
                "--storage-driver=vfs",
                f"--data-root={d / 'root'}",
                f"--exec-root={self.rundir / 'exec'}",
                f"--pidfile={d / 'dockerd.pid'}",
                f"--config-file={d / 'daemon.json'}",
                f"--cgroup-parent={self.cgroup_parent}",
                "-H",
                f"unix://{self.socket}",
            ],
            d / "dockerd.log",
            env=self.env,
            owned_path=d,
        )
        server = self.server
        try:
            wait_until(
                lambda: (
                    unix_socket_accepts(self.socket)
                    and run_command(
                        ["docker", "version"], env=self.env, check=False, timeout=10
                    ).returncode
                    == 0
                ),
                server,
                what="answering on its socket",
                timeout=timeout,
                interval=0.1,
            )
        except BaseException:
            self.close()
            raise
        return self

    def docker(self, *args: str, timeout: float | None = None) -> CommandResult:
        return self.command(["docker", *args], timeout=timeout)

    def pull(self, ref: str) -> str:
        """``docker pull``; returns the repo digest it reports."""
        out = self.docker("pull", ref).stdout
        digests = [line.split()[-1] for line in out.splitlines() if line.startswith("Digest:")]
        return digests[-1] if digests else ""

    def run(self, ref: str, *cmd: str, detach: bool = False) -> str:
        """Run and return stdout (the container ID when ``detach``)."""
        mode = ["--detach"] if detach else []
        return self.docker(
            "run", "--rm", *mode, "--pull", "never", "--network", "none", ref, *cmd
        ).stdout

    def inspect(self, ref: str) -> dict[str, Any]:
        data = json.loads(self.docker("image", "inspect", ref).stdout)
        assert isinstance(data, list) and len(data) == 1, data
        result: dict[str, Any] = data[0]
        return result

    def remove_image(self, ref: str) -> None:
        self.docker("image", "rm", "--force", ref)

    def pull_and_run(self, registry: str, image: str, argv: list[str]) -> str:
        ref = image_ref(registry, image)
        return self._timed_pull_and_run(
            lambda: self.pull(ref), lambda: self.run(ref, *argv), lambda: self.remove_image(ref)
        )

    def _stop(self) -> None:
        if self.server is not None:
            if self.server.alive():
                running = self.docker("ps", "--all", "--quiet").stdout.split()
                if running:
                    self.docker("rm", "--force", *running)
            self.server.stop(grace=20.0)
        self._shared_dirs.cleanup()


class Containerd(_Base):
    """containerd with root, state, sockets and opt dir under ``workdir``
    (CRI, ttrpc, debug and metrics endpoints off), driven by ``ctr``.

    The content store is shared by all namespaces, so :meth:`remove_image`
    deletes with ``--sync`` (garbage collection at once) to make the next pull
    a real one; use a fresh instance for a fully fresh root. Quirks beyond
    clients.md: ``ctr run`` needs ``--fifo-dir`` and ``--runc-root`` to stay
    out of ``/run/containerd``, and ``--cgroup ""`` so runc leaves no cgroup
    behind; shim sockets still go to ``/run/containerd/s`` (hard-coded in 1.6;
    the directory is removed again when empty).
    """

    name: ClassVar[str] = "containerd"
    tools: ClassVar[tuple[str, ...]] = ("containerd", "ctr", "runc", "containerd-shim-runc-v2")
    namespace: str = "test"
    server: ServerProcess | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        self.server = None
        self._ids = itertools.count(1)
        self._shared_dirs = CreatedDirs(
            [Path("/run/containerd/s"), Path("/run/containerd/fifo"), Path("/run/containerd")]
        )
        # Sockets (grpc, ttrpc, and the state dir's) must fit in 108 bytes.
        self.rundir = self.short_dir("containerd")

    @property
    def socket(self) -> Path:
        return self.rundir / "containerd.sock"

    def start(self, timeout: float = 60.0) -> Self:
        d = self.workdir
        config = f"""version = 2
root = "{d / "root"}"
state = "{self.rundir / "state"}"
disabled_plugins = ["io.containerd.grpc.v1.cri"]

[grpc]
  address = "{self.socket}"

[ttrpc]
  address = ""

[debug]
  address = ""

[metrics]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = "{d / "opt"}"
"""
        (d / "config.toml").write_text(config)
        self.server = start_server(
            "containerd",
            ["containerd", "--config", d / "config.toml"],
            d / "containerd.log",
            env=self.env,
            owned_path=d,
        )
        try:
            wait_until(
                lambda: unix_socket_accepts(self.socket),
                self.server,
                what="listening on its socket",
                timeout=timeout,
            )
        except BaseException:
            self.close()
            raise
        return self

    def ctr(self, *args: str, timeout: float | None = None) -> CommandResult:
        return self.command(
            ["ctr", "-a", str(self.socket), "-n", self.namespace, *args], timeout=timeout
        )

    def pull(self, ref: str) -> None:
        self.ctr("image", "pull", "--plain-http", ref)

    def run(self, ref: str, *cmd: str, detach: bool = False) -> str:
        """Run and return stdout (the container ID when ``detach``)."""
        container_id = f"t{os.getpid()}-{next(self._ids)}"
        if detach:
            self.ctr(
                "run",
                "--detach",
                "--null-io",
                "--fifo-dir",
                str(self.rundir / "fifo"),
                "--runc-root",
                str(self.rundir / "runc"),
                "--cgroup",
                "",
                ref,
                container_id,
                *cmd,
            )
            return container_id
        return self.ctr(
            "run",
            "--rm",
            "--fifo-dir",
            str(self.rundir / "fifo"),
            "--runc-root",
            str(self.rundir / "runc"),
            "--cgroup",
            "",
            ref,
            container_id,
            *cmd,
        ).stdout

    def images(self) -> list[str]:
        return self.ctr("image", "ls", "-q").stdout.split()

    def remove_image(self, ref: str) -> None:
        self.ctr("image", "rm", "--sync", ref)

    def pull_and_run(self, registry: str, image: str, argv: list[str]) -> str:
        ref = image_ref(registry, image)
        return self._timed_pull_and_run(
            lambda: self.pull(ref), lambda: self.run(ref, *argv), lambda: self.remove_image(ref)
        )

    def remove_containers(self) -> None:
        """Kill every task and delete every container in the namespace."""
        for task in self.ctr("task", "ls", "--quiet").stdout.split():
            self.command(
                [
                    "ctr",
                    "-a",
                    str(self.socket),
                    "-n",
                    self.namespace,
                    "task",
                    "kill",
                    "-s",
                    "SIGKILL",
                    task,
                ],
                check=False,
            )
            for _ in range(100):  # the task must have exited before its delete
                result = self.command(
                    ["ctr", "-a", str(self.socket), "-n", self.namespace, "task", "delete", task],
                    check=False,
                )
                if result.returncode == 0 or "not found" in result.stderr:
                    break
                time.sleep(0.1)
        containers = self.ctr("container", "ls", "--quiet").stdout.split()
        if containers:
            self.ctr("container", "delete", *containers)

    def _stop(self) -> None:
        if self.server is not None:
            if self.server.alive():
                self.remove_containers()
            self.server.stop(grace=20.0)
        self._shared_dirs.cleanup()


class Podman(_Base):
    """podman with its own --root, --runroot and --tmpdir, runc, cgroupfs.

    Quirks beyond clients.md: a unique ``--cgroup-parent`` so the cgroups
    conmon leaves behind (``PARENT/conmon``) can be removed; ``--runtime-flag
    root=...`` does not work (podman's cleanup then misses the runc state), so
    runc keeps its state in ``/run/runc`` (removed again when empty); the
    containers/image blob-info cache is always ``/var/lib/containers/cache``
    for root. podman refuses a ``--runroot`` longer than 50 characters
    (conmon's attach socket lives there) and pytest's tmp paths are longer,
    so the runroot is a short directory in /tmp, removed by close().
    """

    name: ClassVar[str] = "podman"
    tools: ClassVar[tuple[str, ...]] = ("podman", "runc", "conmon")

    def __post_init__(self) -> None:
        super().__post_init__()
        self._shared_dirs = CreatedDirs([Path("/run/runc")])
        self.runroot = self.short_dir("podman")

    def podman(self, *args: str, timeout: float | None = None) -> CommandResult:
        d = self.workdir
        return self.command(
            [
                "podman",
                "--root",
                str(d / "root"),
                "--runroot",
                str(self.runroot),
                "--tmpdir",
                str(d / "libpod"),
                "--runtime",
                "runc",
                "--cgroup-manager",
                "cgroupfs",
                "--events-backend",
                "file",
                *args,
            ],
            timeout=timeout,
        )

    def pull(self, ref: str) -> str:
        """Returns the image ID podman prints."""
        return self.podman("pull", "--quiet", "--tls-verify=false", ref).stdout.strip()

    def run(self, ref: str, *cmd: str, detach: bool = False) -> str:
        """Run and return stdout (the container ID when ``detach``)."""
        return self.podman(
            "run",
            "--rm",
            *(["--detach"] if detach else []),
            "--pull=never",
            "--network",
            "none",
            "--ulimit",
            "nofile=1024:1024",
            "--ulimit",
            "nproc=1024:1024",
            "--cgroup-parent",
            self.cgroup_parent,
            ref,
            *cmd,
        ).stdout

    def inspect(self, ref: str) -> dict[str, Any]:
        data = json.loads(self.podman("image", "inspect", ref).stdout)
        assert isinstance(data, list) and len(data) == 1, data
        result: dict[str, Any] = data[0]
        return result

    def remove_image(self, ref: str) -> None:
        self.podman("rmi", "--force", ref)

    def pull_and_run(self, registry: str, image: str, argv: list[str]) -> str:
        ref = image_ref(registry, image)
        return self._timed_pull_and_run(
            lambda: self.pull(ref), lambda: self.run(ref, *argv), lambda: self.remove_image(ref)
        )

    def _stop(self) -> None:
        # Containers a test left running are stopped and removed; storage
        # may still hold mounts, which close() unmounts.
        if (self.workdir / "root").exists():
            self.podman("rm", "--all", "--force", "--time", "0")
        self._shared_dirs.cleanup()


class Buildah(_Base):
    """buildah with vfs storage in ``workdir`` and chroot isolation.

    ``pull_and_run`` is ``from`` + ``run`` + ``rm``; :meth:`build` builds a
    Containerfile (``FROM`` the registry image, ``RUN`` a command).
    """

    name: ClassVar[str] = "buildah"
    tools: ClassVar[tuple[str, ...]] = ("buildah",)

    def buildah(self, *args: str, timeout: float | None = None) -> CommandResult:
        d = self.workdir
        return self.command(
            [
                "buildah",
                "--root",
                str(d / "root"),
                "--runroot",
                str(d / "runroot"),
                "--storage-driver",
                "vfs",
                *args,
            ],
            timeout=timeout,
        )

    def from_image(self, ref: str) -> str:
        """``buildah from``: pulls and returns the working container's name."""
        out = self.buildah("from", "--quiet", "--pull-always", "--tls-verify=false", ref).stdout
        return out.strip().splitlines()[-1]

    def run(self, container: str, *cmd: str) -> str:
        return self.buildah("run", "--isolation", "chroot", container, "--", *cmd).stdout

    def remove(self, container: str) -> None:
        self.buildah("rm", container)

    def remove_image(self, ref: str) -> None:
        self.buildah("rmi", "--force", ref)

    def _stop(self) -> None:
        if (self.workdir / "root").exists():
            self.buildah("rm", "--all")

    def build(self, containerfile: str, tag: str = "localhost/harness-build:latest") -> str:
        """Build ``containerfile`` (a text) in an empty context; returns stdout
        (the ``RUN`` steps' output is in it)."""
        context = Path(self._tmpdir("build"))
        (context / "Containerfile").write_text(containerfile)
        result = self.buildah(
            "build",
            "--isolation",
            "chroot",
            "--tls-verify=false",
            "--pull-always",
            "--layers=false",
            "-f",
            str(context / "Containerfile"),
            "-t",
            tag,
            str(context),
        )
        return result.stdout

    def build_from(self, registry: str, image: str, argv: list[str]) -> str:
        """``FROM registry/image`` + ``RUN argv``; returns the build's stdout."""
        ref = image_ref(registry, image)
        tag = "localhost/harness-build:latest"
        started = time.monotonic()
        try:
            return self.build(f"FROM {ref}\nRUN {json.dumps(argv)}\n", tag)
        finally:
            self.last_timing = Timing(pull=0.0, run=time.monotonic() - started)
            self.buildah("rmi", "--all", "--force")

    def _tmpdir(self, prefix: str) -> str:
        path = self.workdir / f"{prefix}-{uuid.uuid4().hex[:8]}"
        path.mkdir()
        return str(path)

    def pull_and_run(self, registry: str, image: str, argv: list[str]) -> str:
        ref = image_ref(registry, image)
        containers: list[str] = []

        def pull() -> None:
            containers.append(self.from_image(ref))

        def cleanup() -> None:
            for container in containers:
                self.remove(container)
            self.remove_image(ref)

        return self._timed_pull_and_run(pull, lambda: self.run(containers[0], *argv), cleanup)


class Skopeo(_Base):
    """skopeo (inspect, copy) plus umoci (or tar) and chroot to run a binary."""

    name: ClassVar[str] = "skopeo"
    tools: ClassVar[tuple[str, ...]] = ("skopeo", "chroot")  # umoci optional

    def skopeo(self, *args: str, timeout: float | None = None) -> CommandResult:
        return self.command(["skopeo", *args], timeout=timeout)

    def inspect(self, ref: str) -> dict[str, Any]:
        """``skopeo inspect docker://REF`` (also lists the repository's tags)."""
        data = json.loads(self.skopeo("inspect", "--tls-verify=false", f"docker://{ref}").stdout)
        assert isinstance(data, dict), data
        return data

    def inspect_raw(self, ref: str) -> bytes:
        """The manifest (or index) bytes exactly as the registry served them."""
        return self.skopeo("inspect", "--raw", "--tls-verify=false", f"docker://{ref}").stdout_bytes

    def copy(self, source: str, destination: str, *extra: str) -> None:
        """``skopeo copy`` between transports (TLS verification off both ways)."""
        self.skopeo(
            "copy",
            "--quiet",
            "--src-tls-verify=false",
            "--dest-tls-verify=false",
            *extra,
            source,
            destination,
        )

    def push_layout(self, layout: Path, tag: str, registry: str, image: str, *extra: str) -> None:
        """Copy ``oci:LAYOUT:TAG`` to ``docker://REGISTRY/IMAGE``."""
        self.copy(f"oci:{layout}:{tag}", f"docker://{image_ref(registry, image)}", *extra)

    def pull_to_layout(self, ref: str, layout: Path, tag: str = "latest") -> None:
        self.copy(f"docker://{ref}", f"oci:{layout}:{tag}")

    def unpack(
        self, layout: Path, tag: str, bundle: Path, *, use_umoci: bool | None = None
    ) -> Path:
        """Unpack an OCI layout into ``bundle``; returns the rootfs path.

        umoci when installed (or when ``use_umoci``), else plain tar."""
        if use_umoci is None:
            use_umoci = shutil.which("umoci") is not None
        if use_umoci:
            self.command(["umoci", "unpack", "--image", f"{layout}:{tag}", str(bundle)])
            return bundle / "rootfs"
        return self._unpack_with_tar(layout, tag, bundle / "rootfs")

    def _unpack_with_tar(self, layout: Path, tag: str, rootfs: Path) -> Path:
        """Fallback without umoci: apply each layer in order (no whiteouts
        needed for the harness's single-layer images, but honoured)."""
        index = json.loads((layout / "index.json").read_text())
        (descriptor,) = [
            m
            for m in index["manifests"]
            if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == tag
        ]
        manifest = json.loads(_blob(layout, descriptor["digest"]).read_bytes())
        rootfs.mkdir(parents=True)
        for layer in manifest["layers"]:
            with tarfile.open(_blob(layout, layer["digest"])) as tar:
                for member in tar.getmembers():
                    head, _, base = member.name.rpartition("/")
                    if base.startswith(".wh."):
                        target = rootfs / head / base.removeprefix(".wh.")
                        if target.is_dir() and not target.is_symlink():
                            shutil.rmtree(target)
                        else:
                            target.unlink(missing_ok=True)
                        continue
                    tar.extract(member, rootfs, filter="tar")
        return rootfs

    def chroot_run(self, rootfs: Path, argv: list[str]) -> str:
        env = dict(self.env, PATH="/bin:/usr/bin:/sbin:/usr/sbin")
        result = run_command(["chroot", str(rootfs), *argv], env=env, timeout=self.timeout)
        self.history.append(result)
        return result.stdout

    def pull_and_run(self, registry: str, image: str, argv: list[str]) -> str:
        ref = image_ref(registry, image)
        work = self.workdir / f"pull-{uuid.uuid4().hex[:8]}"
        rootfs: list[Path] = []

        def pull() -> None:
            work.mkdir(parents=True)
            self.pull_to_layout(ref, work / "layout")
            rootfs.append(self.unpack(work / "layout", "latest", work / "bundle"))

        return self._timed_pull_and_run(
            pull,
            lambda: self.chroot_run(rootfs[0], argv),
            lambda: shutil.rmtree(work, ignore_errors=True),
        )


def _blob(layout: Path, digest: str) -> Path:
    algorithm, _, encoded = digest.partition(":")
    return layout / "blobs" / algorithm / encoded


CLIENT_CLASSES: dict[str, type[Docker | Podman | Containerd | Buildah | Skopeo]] = {
    "docker": Docker,
    "podman": Podman,
    "containerd": Containerd,
    "buildah": Buildah,
    "skopeo": Skopeo,
}
