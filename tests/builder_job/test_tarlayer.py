"""Deterministic layer tarballs (`builder_job.tarlayer`).

Real temporary directories stand in for store paths: a tar name is the
absolute path without its leading slash, exactly as for `/nix/store/...`.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import tarfile
from pathlib import Path

import pytest

from builder_job.tarlayer import (
    GZIP_LEVEL,
    STORE_MTIME,
    Entry,
    HashingWriter,
    PackedLayer,
    pack_layer,
    write_tar,
)

FOREIGN_ID = 1234


def make_store(root: Path) -> tuple[str, str]:
    """Two fake store paths: a package with files, a symlink and hard links,
    and a library."""
    hello = root / "store" / "aaaa-hello-2.12"
    (hello / "bin").mkdir(parents=True)
    (hello / "bin" / "hello").write_bytes(b"\x7fELF hello\n")
    (hello / "bin" / "hello").chmod(0o555)
    (hello / "share" / "doc").mkdir(parents=True)
    (hello / "share" / "doc" / "README").write_text("read me\n" * 100)
    (hello / "share" / "doc" / "README").chmod(0o444)
    os.link(hello / "share" / "doc" / "README", hello / "share" / "doc" / "README.copy")
    (hello / "bin" / "hi").symlink_to("hello")
    (hello / "bin" / "abs").symlink_to("/nix/store/zzzz-other/bin/x")
    (hello / "Zeta").write_text("capital first\n")
    lib = root / "store" / "0000-glibc-2.39"
    (lib / "lib").mkdir(parents=True)
    (lib / "lib" / "libc.so.6").write_bytes(bytes(range(256)) * 64)
    if os.geteuid() == 0:  # make ownership something the tar must not copy
        for dirpath, dirnames, filenames in os.walk(root):
            for name in [*dirnames, *filenames]:
                os.lchown(os.path.join(dirpath, name), FOREIGN_ID, FOREIGN_ID)
    return str(hello), str(lib)


def pack(store_paths: list[str], entries: list[Entry] | None = None) -> tuple[bytes, PackedLayer]:
    out = io.BytesIO()
    layer = pack_layer(out, store_paths, entries or [])
    return out.getvalue(), layer


def members(data: bytes) -> list[tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(data)), mode="r:") as tar:
        return tar.getmembers()


def contents(data: bytes) -> dict[str, bytes]:
    found: dict[str, bytes] = {}
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(data)), mode="r:") as tar:
        for member in tar.getmembers():
            if member.isfile():
                handle = tar.extractfile(member)
                assert handle is not None
                found[member.name] = handle.read()
    return found


@pytest.fixture
def store(tmp_path: Path) -> tuple[str, str]:
    return make_store(tmp_path)


def test_same_input_gives_identical_bytes_and_digests(store: tuple[str, str]) -> None:
    first, layer1 = pack(list(store))
    second, layer2 = pack(list(store))
    assert first == second
    assert layer1 == layer2


def test_input_order_does_not_matter(store: tuple[str, str]) -> None:
    hello, lib = store
    assert pack([hello, lib]) == pack([lib, hello])


def test_digests_describe_the_streams(store: tuple[str, str]) -> None:
    data, layer = pack(list(store))
    assert layer.digest == "sha256:" + hashlib.sha256(data).hexdigest()
    assert layer.size == len(data)
    assert layer.diff_id == "sha256:" + hashlib.sha256(gzip.decompress(data)).hexdigest()
    assert layer.diff_id != layer.digest


def test_gzip_header_has_no_time_and_no_name(store: tuple[str, str]) -> None:
    data, _ = pack(list(store))
    assert data[:3] == b"\x1f\x8b\x08"
    flags = data[3]
    assert flags & 0x08 == 0  # FNAME
    assert data[4:8] == b"\x00\x00\x00\x00"  # MTIME


def test_gzip_level(store: tuple[str, str]) -> None:
    assert GZIP_LEVEL == 6
    fast = io.BytesIO()
    pack_layer(fast, list(store), level=1)
    default, _ = pack(list(store))
    assert gzip.decompress(fast.getvalue()) == gzip.decompress(default)


def test_entry_order(store: tuple[str, str]) -> None:
    hello, lib = store
    h, g = hello.lstrip("/"), lib.lstrip("/")
    data, _ = pack([hello, lib], [Entry("bin", "dir"), Entry("bin/hello", "symlink", target="x")])
    assert [m.name for m in members(data)] == [
        "nix",
        "nix/store",
        # store paths sorted: "0000-glibc" < "aaaa-hello"
        g,
        f"{g}/lib",
        f"{g}/lib/libc.so.6",
        h,
        # byte-wise: "Zeta" < "bin" < "share"; depth-first
        f"{h}/Zeta",
        f"{h}/bin",
        f"{h}/bin/abs",
        f"{h}/bin/hello",
        f"{h}/bin/hi",
        f"{h}/share",
        f"{h}/share/doc",
        f"{h}/share/doc/README",
        f"{h}/share/doc/README.copy",
        # synthetic entries last, in the order given
        "bin",
        "bin/hello",
    ]


def test_owner_and_time_are_normalised(store: tuple[str, str]) -> None:
    hello, _ = store
    assert os.lstat(hello).st_uid != 0 or os.geteuid() != 0
    data, _ = pack(list(store), [Entry("etc", "dir")])
    for member in members(data):
        assert (member.uid, member.gid) == (0, 0), member.name
        assert (member.uname, member.gname) == ("", ""), member.name
        assert member.mtime == STORE_MTIME == 1, member.name
        # only long names need PAX records; never times, owners or charsets
        assert set(member.pax_headers) <= {"path", "linkpath"}, member.name


def test_permission_bits_are_kept(store: tuple[str, str]) -> None:
    hello, _ = store
    h = hello.lstrip("/")
    modes = {m.name: m.mode for m in members(pack([hello])[0])}
    assert modes["nix"] == modes["nix/store"] == 0o755
    assert modes[f"{h}/bin/hello"] == 0o555
    assert modes[f"{h}/share/doc/README"] == 0o444
    assert modes[f"{h}/bin"] == os.stat(Path(hello) / "bin").st_mode & 0o7777


def test_kinds_hard_links_and_symlinks(store: tuple[str, str]) -> None:
    hello, _ = store
    h = hello.lstrip("/")
    data, _ = pack([hello])
    by_name = {m.name: m for m in members(data)}
    assert by_name["nix"].isdir() and by_name[f"{h}/bin"].isdir()
    # hard links are regular files with the full content, never LNKTYPE
    assert not any(m.islnk() for m in by_name.values())
    files = contents(data)
    original = (Path(hello) / "share" / "doc" / "README").read_bytes()
    assert files[f"{h}/share/doc/README"] == original
    assert files[f"{h}/share/doc/README.copy"] == original
    assert files[f"{h}/bin/hello"] == b"\x7fELF hello\n"
    # symlinks are kept, targets untouched
    assert by_name[f"{h}/bin/hi"].issym()
    assert by_name[f"{h}/bin/hi"].linkname == "hello"
    assert by_name[f"{h}/bin/abs"].linkname == "/nix/store/zzzz-other/bin/x"
    assert by_name[f"{h}/bin/hi"].mode == 0o777


def test_input_mtimes_and_owners_do_not_change_the_layer(store: tuple[str, str]) -> None:
    before = pack(list(store))
    for path in store:
        for dirpath, dirnames, filenames in os.walk(path):
            for name in [*dirnames, *filenames]:
                full = os.path.join(dirpath, name)
                os.utime(full, (12345, 67890), follow_symlinks=False)
                if os.geteuid() == 0:
                    os.lchown(full, FOREIGN_ID + 1, FOREIGN_ID + 2)
    assert pack(list(store)) == before


def test_content_and_mode_changes_change_the_layer(store: tuple[str, str]) -> None:
    hello, _ = store
    _, original = pack([hello])
    (Path(hello) / "share" / "doc" / "README").chmod(0o644)
    _, mode_changed = pack([hello])
    (Path(hello) / "Zeta").write_text("capital first!\n")
    _, content_changed = pack([hello])
    assert len({original.digest, mode_changed.digest, content_changed.digest}) == 3
    assert len({original.diff_id, mode_changed.diff_id, content_changed.diff_id}) == 3


@pytest.mark.parametrize(
    ("entries", "expected"),
    [
        pytest.param([], [], id="nothing"),
        pytest.param(
            [Entry("tmp", "dir", 0o1777)], [("tmp", tarfile.DIRTYPE, 0o1777, "")], id="sticky-tmp"
        ),
        pytest.param(
            [
                Entry("bin", "dir"),
                Entry("bin/hello", "symlink", target="/nix/store/aaaa-hello/bin/hello"),
            ],
            [
                ("bin", tarfile.DIRTYPE, 0o755, ""),
                ("bin/hello", tarfile.SYMTYPE, 0o777, "/nix/store/aaaa-hello/bin/hello"),
            ],
            id="dir-and-link",
        ),
        pytest.param(
            [Entry("z", "dir"), Entry("a", "dir")],
            [("z", tarfile.DIRTYPE, 0o755, ""), ("a", tarfile.DIRTYPE, 0o755, "")],
            id="given-order-kept",
        ),
    ],
)
def test_synthetic_entries_only(
    entries: list[Entry], expected: list[tuple[str, bytes, int, str]]
) -> None:
    data, layer = pack([], entries)
    got = [(m.name, m.type, m.mode, m.linkname) for m in members(data)]
    assert got == expected  # no nix/store directories without store paths
    assert layer == pack([], entries)[1]


def test_long_names_survive(tmp_path: Path) -> None:
    path = tmp_path / "store" / ("x" * 40 + "-long")
    deep = path / ("d" * 90) / ("e" * 90)
    deep.mkdir(parents=True)
    (deep / ("f" * 120)).write_text("deep")
    data, layer = pack([str(path)])
    name = f"{str(deep).lstrip('/')}/{'f' * 120}"
    assert contents(data) == {name: b"deep"}
    assert pack([str(path)])[1] == layer


def test_special_files_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "store" / "aaaa-fifo"
    path.mkdir(parents=True)
    os.mkfifo(path / "pipe")
    with pytest.raises(ValueError, match="only files, directories and symlinks"):
        write_tar(io.BytesIO(), [str(path)])


def test_write_tar_is_the_uncompressed_layer(store: tuple[str, str]) -> None:
    raw = io.BytesIO()
    write_tar(raw, list(store), [Entry("tmp", "dir", 0o1777)])
    data, layer = pack(list(store), [Entry("tmp", "dir", 0o1777)])
    assert gzip.decompress(data) == raw.getvalue()
    assert layer.diff_id == "sha256:" + hashlib.sha256(raw.getvalue()).hexdigest()


@pytest.mark.parametrize(
    "chunks",
    [
        pytest.param([], id="nothing"),
        pytest.param([b"abc"], id="one"),
        pytest.param([b"a", bytearray(b"b"), memoryview(b"c")], id="buffer-types"),
    ],
)
def test_hashing_writer(chunks: list[bytes | bytearray | memoryview]) -> None:
    target = io.BytesIO()
    writer = HashingWriter(target)
    for chunk in chunks:
        assert writer.write(chunk) == len(chunk)
    writer.flush()
    joined = b"".join(bytes(c) for c in chunks)
    assert target.getvalue() == joined
    assert writer.size == len(joined)
    assert writer.digest == "sha256:" + hashlib.sha256(joined).hexdigest()
