"""What the fuzz suite throws at the registry: random and mutated requests.

Every part of a request is drawn from a mix of three sources:

* **well-formed** values (names of the spec's grammar, tags, sha256 digests,
  the digests of the seeded image), so requests get deep into the handlers;
* **hostile** values (:data:`NASTY`): quotes, ``${...}`` interpolation, ``..``,
  NUL, control and bidirectional characters, unicode digits, 10k characters;
* **mutations** of well-formed values: one character inserted, deleted,
  replaced or a hostile value spliced in, which is what finds parser edges.

Header values never hold CR or LF (no HTTP client can send them; werkzeug
refuses to build such a request) but may hold anything else.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from hypothesis import strategies as st

NASTY = (
    '"',
    "'",
    '${builtins.abort "x"}',
    "${toString 1}",
    "${",
    "..",
    "../../etc/passwd",
    "\x00",
    "a\x00b",
    "\\",
    "$(id)",
    "`id`",
    ";rm -rf /",
    "%00",
    "%2e%2e",
    "%2F",
    "ünïcödé",
    "日本語",
    "\u202eevil",
    "\ufeff",
    "🙂",
    "٣",  # an Arabic-Indic digit: str.isdigit() says yes, int() too
    "²",  # a superscript: str.isdigit() says yes, int() says no
    "a" * 10_000,
    "9" * 5_000,
    "A",
    "-",
    "_",
    ".",
    "/",
    "//",
    " ",
    "\t",
    "import <nixpkgs> {}",
    "builtins.exec",
    "pkgs.hello",
    "__proto__",
    "null",
    "{}",
    "[]",
    "\x7f",
    "-rf",
    "--option",
    "--expr",
)
REAL_NAMES = (
    "hello",
    "shell",
    "arm64",
    "shell/hello",
    "arm64/shell/hello",
    "python3packages.requests",
    "haskellpackages.hunit",
    "7zz",
    "unfree",
    "aborts",
    "throws",
    "foo/libfoo",
    "ambiguous",
    "casetwin",
    "notapackage",
    "cacert",
)
MEDIA_TYPES = (
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v1+prettyjws",
    "application/json",
    "*/*",
    "application/*",
    "text/html",
    "",
)
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE")

text = st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=60)
header_text = st.text(
    alphabet=st.characters(exclude_categories=["Cs"], exclude_characters="\r\n"), max_size=80
)
nasty = st.sampled_from(NASTY)
component = st.from_regex(r"[a-z0-9]{1,8}(?:(?:\.|_|__|-+)[a-z0-9]{1,8}){0,2}", fullmatch=True)
valid_name = st.lists(component, min_size=1, max_size=4).map("/".join)
tag = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,20}", fullmatch=True)
hex64 = st.from_regex(r"[0-9a-f]{64}", fullmatch=True)


@st.composite
def mutated(draw: st.DrawFn, base: st.SearchStrategy[str]) -> str:
    """``base`` with one edit: insert, delete, replace, or splice in a nasty."""
    value = draw(base)
    position = draw(st.integers(0, len(value)))
    edit = draw(st.sampled_from(("insert", "delete", "replace", "splice", "double")))
    char = draw(st.characters(exclude_categories=["Cs"]))
    if edit == "insert":
        return value[:position] + char + value[position:]
    if edit == "delete":
        return value[:position] + value[position + 1 :]
    if edit == "replace":
        return value[:position] + char + value[position + 1 :]
    if edit == "splice":
        return value[:position] + draw(nasty) + value[position:]
    return value + value


def names() -> st.SearchStrategy[str]:
    return st.one_of(
        valid_name,
        st.sampled_from(REAL_NAMES),
        nasty,
        text,
        mutated(st.one_of(valid_name, st.sampled_from(REAL_NAMES))),
        st.tuples(valid_name, nasty).map("/".join),
    )


def digests(known: Sequence[str]) -> st.SearchStrategy[str]:
    good = st.sampled_from(list(known)) if known else hex64.map("sha256:".__add__)
    return st.one_of(
        good,
        hex64.map("sha256:".__add__),
        hex64.map(lambda h: "sha256:" + h.upper()),
        hex64.map(lambda h: "sha256:" + h[:40]),
        st.from_regex(r"[0-9a-f]{128}", fullmatch=True).map("sha512:".__add__),
        st.sampled_from(("sha256:", ":", "::", "md5:abc", "sha256:" + "0" * 300)),
        st.tuples(text, text).map(":".join),
        mutated(good),
    )


def references(known: Sequence[str]) -> st.SearchStrategy[str]:
    return st.one_of(st.just("latest"), tag, nasty, text, mutated(tag), digests(known))


def query() -> st.SearchStrategy[str]:
    value = st.one_of(st.integers(-5, 10**6).map(str), nasty, header_text)
    return st.one_of(
        st.just(""),
        st.tuples(value, value).map(lambda nl: f"?n={nl[0]}&last={nl[1]}"),
        st.tuples(value).map(lambda v: f"?ns={v[0]}"),
        header_text.map("?".__add__),
    )


def paths(known: Sequence[str]) -> st.SearchStrategy[str]:
    name, ref, digest = names(), references(known), digests(known)
    return st.one_of(
        st.tuples(name, ref, query()).map(lambda t: f"/v2/{t[0]}/manifests/{t[1]}{t[2]}"),
        st.tuples(name, digest).map(lambda t: f"/v2/{t[0]}/blobs/{t[1]}"),
        st.tuples(name, text).map(lambda t: f"/v2/{t[0]}/blobs/uploads/{t[1]}"),
        st.tuples(name, query()).map(lambda t: f"/v2/{t[0]}/tags/list{t[1]}"),
        st.sampled_from(("/v2/", "/v2", "/", "/robots.txt", "/_nixery/prebuild", "/v2/_catalog")),
        st.tuples(query(), text).map(lambda t: f"/builds{t[0]}&state={t[1]}"),
        st.one_of(text, nasty).map("/builds/".__add__),
        text.map("/".__add__),
        text.map("/v2/".__add__),
        mutated(st.tuples(valid_name, tag).map(lambda t: f"/v2/{t[0]}/manifests/{t[1]}")),
    )


def accept() -> st.SearchStrategy[list[tuple[str, str]]]:
    weight = st.one_of(
        st.floats(allow_nan=True, allow_infinity=True).map(str),
        st.sampled_from(("0", "1", "0.5", "x", "", "-1", "1e999", "nan")),
        header_text,
    )
    item = st.one_of(
        st.sampled_from(MEDIA_TYPES),
        st.tuples(st.sampled_from(MEDIA_TYPES), weight).map(lambda t: f"{t[0]};q={t[1]}"),
        header_text,
    )
    line = st.one_of(
        st.lists(item, max_size=6).map(", ".join),
        st.just(", ".join(MEDIA_TYPES) * 400),  # a huge line
    )
    return st.lists(line.map(lambda v: ("Accept", v)), max_size=6)


def byte_ranges() -> st.SearchStrategy[str]:
    number = st.one_of(st.integers(0, 2**70).map(str), st.just(""), st.sampled_from(NASTY[20:26]))
    return st.one_of(
        st.tuples(number, number).map(lambda t: f"bytes={t[0]}-{t[1]}"),
        st.tuples(number, number, number).map(lambda t: f"bytes={t[0]}-{t[1]},{t[2]}-"),
        st.sampled_from(("bytes=", "bytes=-", "bytes=-0", "items=0-1", "bytes=1-0")),
        header_text,
    )


def headers(known: Sequence[str]) -> st.SearchStrategy[list[tuple[str, str]]]:
    etag = st.one_of(
        digests(known).map(lambda d: f'"{d}"'),
        st.sampled_from(("*", 'W/"x"', '"', '""', "")),
        header_text,
    )
    single = st.one_of(
        byte_ranges().map(lambda v: ("Range", v)),
        etag.map(lambda v: ("If-None-Match", v)),
        header_text.map(lambda v: ("X-Cloud-Trace-Context", v)),
        header_text.map(lambda v: ("traceparent", v)),
        header_text.map(lambda v: ("Authorization", v)),
        st.sampled_from(
            ("Basic", "Basic !!!", "Basic dXNlcg==", "Bearer", "Basic " + "A" * 9000)
        ).map(lambda v: ("Authorization", v)),
        header_text.map(lambda v: ("Content-Type", v)),
        st.tuples(st.from_regex(r"X-[A-Za-z0-9-]{1,20}", fullmatch=True), header_text),
        st.just(("X-Huge", "x" * 60_000)),
    )
    return st.tuples(accept(), st.lists(single, max_size=5)).map(
        lambda t: [(k, v.replace("\r", " ").replace("\n", " ")) for k, v in t[0] + t[1]]
    )


@dataclass(frozen=True)
class FuzzRequest:
    method: str
    path: str
    headers: list[tuple[str, str]]
    body: bytes


def requests(known: Sequence[str]) -> st.SearchStrategy[FuzzRequest]:
    method = st.one_of(st.sampled_from(METHODS), st.from_regex(r"[A-Z]{1,12}", fullmatch=True))
    body = st.one_of(st.just(b""), st.binary(max_size=200))
    return st.builds(FuzzRequest, method, paths(known), headers(known), body)
