"""Check a registry against what real clients need (shared/notes/clients.md).

Plain HTTP against any base URL; every check returns a list of
:class:`Finding` (empty when the registry behaves), so a test can assert the
list is empty for our server, and pin the known findings of a reference
server (docker-registry 2.8 answers a malformed manifest digest with 500).

What is checked:

* ``GET /v2/`` answers 200 (or 401 with a challenge);
* manifests, for each ``Accept`` shape real clients send (six lines as
  containers/image, one comma list ending in ``*/*`` as containerd, shuffled
  lines with ``application/json`` as Docker, a bare ``*/*``): status 200; the
  exact manifest media type as Content-Type (``; charset=utf-8`` tolerated),
  equal to the body's ``mediaType``; Docker-Content-Digest equal to the
  sha256 of the body; HEAD with the same Content-Type, a Content-Length equal
  to the GET's body length and the same digest; after resolving a tag, the
  identical bytes (GET and HEAD) by digest, asked the way each client asks;
  an index's child manifests the same way by digest; config and layer blobs
  served with matching digests;
* a TLS ClientHello (one without CR LF, as nearly all) sent to the plain-HTTP port
  is answered with a 400 or a close within a few seconds, never a hang;
* malformed digests (manifests and blobs, GET and HEAD) get 400 or 404, and
  the GET a spec JSON error body (``{"errors": [{"code": ..., ...}]}``).
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
import socket
import ssl
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_SCHEMA1 = "application/vnd.docker.distribution.manifest.v1+json"
DOCKER_SCHEMA1_SIGNED = "application/vnd.docker.distribution.manifest.v1+prettyjws"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"

#: What a server may answer for a manifest request (schema 1 is not enough:
#: it is deprecated, and its digest is not the sha256 of the served bytes).
MANIFEST_MEDIA_TYPES = frozenset({DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, OCI_MANIFEST, OCI_INDEX})
INDEX_MEDIA_TYPES = frozenset({DOCKER_MANIFEST_LIST, OCI_INDEX})

#: The ``Accept`` header lines each client sends, by name.
ACCEPT_VARIANTS: dict[str, tuple[str, ...]] = {
    # containers/image (skopeo, podman, buildah): six separate lines.
    "containers-image": (
        OCI_MANIFEST,
        DOCKER_MANIFEST,
        DOCKER_SCHEMA1_SIGNED,
        DOCKER_SCHEMA1,
        DOCKER_MANIFEST_LIST,
        OCI_INDEX,
    ),
    # containerd: one comma-joined line ending in */*.
    "containerd": (
        ", ".join([DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, OCI_MANIFEST, OCI_INDEX, "*/*"]),
    ),
    # Docker: separate lines in random order, application/json among them.
    "docker": (
        DOCKER_SCHEMA1_SIGNED,
        "application/json",
        OCI_INDEX,
        DOCKER_MANIFEST,
        DOCKER_MANIFEST_LIST,
        OCI_MANIFEST,
    ),
    "wildcard": ("*/*",),
}

#: Digests no registry can hold: not hex, too short, unknown algorithm.
MALFORMED_DIGESTS = (
    "sha256:zzzz",
    "sha256:abc",
    "md5:d41d8cd98f00b204e9800998ecf8427e",
)


@dataclass(frozen=True)
class Finding:
    """One requirement a registry missed.

    ``check``, ``subject`` and ``problem`` are stable (tests compare them);
    ``detail`` carries the variable part (bodies, digests) for humans.
    """

    check: str
    subject: str
    problem: str
    detail: str = ""

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.check, self.subject, self.problem)

    def __str__(self) -> str:
        text = f"[{self.check}] {self.subject}: {self.problem}"
        return f"{text} ({self.detail})" if self.detail else text


@dataclass(frozen=True)
class Response:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def header(self, name: str) -> str | None:
        return self.headers.get(name)

    @property
    def media_type(self) -> str:
        """Content-Type without parameters, lower case."""
        return (self.header("Content-Type") or "").split(";", 1)[0].strip().lower()

    def error_codes(self) -> list[str]:
        """The ``code`` of each spec error in the body ([] when not spec JSON)."""
        try:
            data = json.loads(self.body)
        except ValueError:
            return []
        if not isinstance(data, dict) or not isinstance(data.get("errors"), list):
            return []
        codes = [e.get("code") for e in data["errors"] if isinstance(e, dict)]
        return [c for c in codes if isinstance(c, str)]


class ProbeError(Exception):
    """No HTTP answer at all (connection refused, reset, timeout)."""


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def request(
    base_url: str,
    method: str,
    path: str,
    accept: Sequence[str] = (),
    *,
    timeout: float = 10.0,
) -> Response:
    """One HTTP request; each ``accept`` item is sent as its own header line."""
    parts = urlsplit(base_url)
    host = parts.hostname or "127.0.0.1"
    connection: http.client.HTTPConnection
    if parts.scheme == "https":
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        connection = http.client.HTTPSConnection(host, parts.port, timeout=timeout, context=context)
    else:
        connection = http.client.HTTPConnection(host, parts.port, timeout=timeout)
    try:
        connection.putrequest(method, parts.path.rstrip("/") + path, skip_accept_encoding=True)
        for line in accept:
            connection.putheader("Accept", line)
        connection.endheaders()
        response = connection.getresponse()
        body = response.read()
        return Response(response.status, response.headers, body)
    except (OSError, http.client.HTTPException) as error:
        raise ProbeError(f"{method} {path}: {type(error).__name__}: {error}") from error
    finally:
        connection.close()


def _describe(response: Response) -> str:
    codes = response.error_codes()
    if codes:
        return "errors " + ",".join(codes)
    return repr(response.body[:120])


def _is_digest(reference: str) -> bool:
    return ":" in reference


def check_api_root(base_url: str) -> list[Finding]:
    """``GET /v2/`` must answer 200 (or 401 asking for credentials)."""
    try:
        response = request(base_url, "GET", "/v2/")
    except ProbeError as error:
        return [Finding("api-root", "GET /v2/", "no response", str(error))]
    if response.status == 200 or (response.status == 401 and response.header("WWW-Authenticate")):
        return []
    return [Finding("api-root", "GET /v2/", f"status {response.status}", _describe(response))]


@dataclass(frozen=True)
class _Manifest:
    media_type: str
    body: bytes
    digest: str


def _check_one_manifest(
    base_url: str,
    repository: str,
    reference: str,
    variant: str,
    accept: Sequence[str],
    findings: list[Finding],
) -> _Manifest | None:
    """GET and HEAD one manifest reference; append findings; return what the
    GET served (None when it was unusable)."""
    path = f"/v2/{repository}/manifests/{reference}"
    subject = f"{path} [{variant}]"

    def add(problem: str, detail: str = "") -> None:
        findings.append(Finding("manifest", subject, problem, detail))

    try:
        get = request(base_url, "GET", path, accept)
    except ProbeError as error:
        add("GET: no response", str(error))
        return None
    if get.status != 200:
        add(f"GET status {get.status}", _describe(get))
        return None
    media_type = get.media_type
    if media_type not in MANIFEST_MEDIA_TYPES:
        add(f"GET Content-Type {media_type or '(none)'}", get.header("Content-Type") or "")
        return None
    try:
        document = json.loads(get.body)
    except ValueError:
        add("GET body is not JSON", repr(get.body[:120]))
        return None
    declared = document.get("mediaType") if isinstance(document, dict) else None
    if declared is not None and declared != media_type:
        add("GET Content-Type differs from the body's mediaType", f"{media_type} != {declared}")
    computed = sha256_digest(get.body)
    served_digest = get.header("Docker-Content-Digest")
    if served_digest is None:
        add("GET without Docker-Content-Digest")
    elif served_digest != computed:
        add("GET Docker-Content-Digest is not the body's sha256", f"{served_digest} != {computed}")
    if _is_digest(reference) and reference.startswith("sha256:") and reference != computed:
        add("GET by digest served other bytes", f"{reference} != {computed}")
    length = get.header("Content-Length")
    if length is not None and length != str(len(get.body)):
        add("GET Content-Length differs from the body", f"{length} != {len(get.body)}")

    try:
        head = request(base_url, "HEAD", path, accept)
    except ProbeError as error:
        add("HEAD: no response", str(error))
        return _Manifest(media_type, get.body, computed)
    if head.status != 200:
        add(f"HEAD status {head.status}")
        return _Manifest(media_type, get.body, computed)
    if head.media_type != media_type:
        add("HEAD Content-Type differs from GET", f"{head.media_type} != {media_type}")
    head_length = head.header("Content-Length")
    if head_length != str(len(get.body)):
        add("HEAD Content-Length differs from GET body", f"{head_length} != {len(get.body)}")
    head_digest = head.header("Docker-Content-Digest")
    if head_digest is None:
        add("HEAD without Docker-Content-Digest")
    elif head_digest != computed:
        add("HEAD Docker-Content-Digest differs from GET", f"{head_digest} != {computed}")
    return _Manifest(media_type, get.body, computed)


def _by_digest_accept(variant: str, accept: Sequence[str], media_type: str) -> tuple[str, ...]:
    """How each client asks for a manifest by digest after resolving a tag."""
    if variant == "containerd":
        return (f"{media_type}, */*",)
    return tuple(accept)


def check_manifest(
    base_url: str,
    repository: str,
    tag: str,
    variants: dict[str, tuple[str, ...]] | None = None,
) -> list[Finding]:
    """Every manifest requirement for one tag, for each Accept variant,
    following an index to its child manifests, then the blobs."""
    findings: list[Finding] = []
    manifests: dict[str, _Manifest] = {}
    for variant, accept in (variants or ACCEPT_VARIANTS).items():
        resolved = _check_one_manifest(base_url, repository, tag, variant, accept, findings)
        if resolved is None:
            continue
        by_digest_accept = _by_digest_accept(variant, accept, resolved.media_type)
        again = _check_one_manifest(
            base_url, repository, resolved.digest, variant, by_digest_accept, findings
        )
        if again is not None and again.body != resolved.body:
            findings.append(
                Finding(
                    "manifest",
                    f"/v2/{repository}/manifests/{tag} [{variant}]",
                    "bytes by digest differ from bytes by tag",
                )
            )
        manifests.setdefault(resolved.digest, resolved)
        if resolved.media_type in INDEX_MEDIA_TYPES:
            for child in json.loads(resolved.body).get("manifests", []):
                child_digest = str(child.get("digest", ""))
                child_accept = _by_digest_accept(variant, accept, str(child.get("mediaType", "")))
                got = _check_one_manifest(
                    base_url, repository, child_digest, variant, child_accept, findings
                )
                if got is not None:
                    if got.media_type != child.get("mediaType"):
                        findings.append(
                            Finding(
                                "manifest",
                                f"/v2/{repository}/manifests/{child_digest} [{variant}]",
                                "child Content-Type differs from the index descriptor",
                                f"{got.media_type} != {child.get('mediaType')}",
                            )
                        )
                    manifests.setdefault(got.digest, got)
    for manifest in manifests.values():
        if manifest.media_type not in INDEX_MEDIA_TYPES:
            findings += check_blobs(base_url, repository, manifest.body)
    return findings


def check_blobs(base_url: str, repository: str, manifest_body: bytes) -> list[Finding]:
    """The config and every layer of an image manifest: 200, matching bytes."""
    findings: list[Finding] = []
    document: dict[str, Any] = json.loads(manifest_body)
    descriptors = [document.get("config", {}), *document.get("layers", [])]
    for descriptor in descriptors:
        digest = str(descriptor.get("digest", ""))
        path = f"/v2/{repository}/blobs/{digest}"
        try:
            response = request(base_url, "GET", path, timeout=60.0)
        except ProbeError as error:
            findings.append(Finding("blob", path, "GET: no response", str(error)))
            continue
        if response.status != 200:
            findings.append(
                Finding("blob", path, f"GET status {response.status}", _describe(response))
            )
        elif sha256_digest(response.body) != digest:
            findings.append(Finding("blob", path, "GET served other bytes"))
        elif len(response.body) != descriptor.get("size"):
            findings.append(Finding("blob", path, "GET size differs from the descriptor"))
    return findings


def client_hello() -> bytes:
    """A real TLS ClientHello, as docker, podman and skopeo first send.

    Every ClientHello holds a bare LF (the supported_groups extension is
    0x000a), but a CR LF pair only by chance (about one in 700, in its random
    fields); this one has none, as nearly all real ones, so a server that
    waits for a CRLF-terminated request line is always caught hanging.
    """
    for _ in range(1000):
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        tls = context.wrap_bio(incoming, outgoing, server_hostname="registry.test")
        with contextlib.suppress(ssl.SSLWantReadError):
            tls.do_handshake()
        hello = outgoing.read()
        assert hello[:1] == b"\x16", "not a TLS handshake record"
        if b"\r\n" not in hello:
            return hello
    raise AssertionError("every ClientHello contained CR LF")


def check_tls_hello(base_url: str, timeout: float = 5.0) -> list[Finding]:
    """A TLS ClientHello on the plain-HTTP port: a 400 or a close within
    ``timeout`` seconds. (Skipped for an https base URL.)"""
    parts = urlsplit(base_url)
    if parts.scheme == "https":
        return []
    subject = f"TLS ClientHello to {parts.hostname}:{parts.port}"
    received = b""
    started = time.monotonic()
    try:
        with socket.create_connection(
            (parts.hostname or "127.0.0.1", parts.port or 80), timeout=timeout
        ) as sock:
            sock.sendall(client_hello())
            while time.monotonic() - started < timeout:
                sock.settimeout(max(0.05, timeout - (time.monotonic() - started)))
                chunk = sock.recv(4096)
                if not chunk:
                    break  # closed: fine
                received += chunk
                if b"\r\n" in received:
                    break
            else:
                return [Finding("tls", subject, "hang", f"no answer in {timeout:.0f} s")]
    except TimeoutError:
        return [Finding("tls", subject, "hang", f"no answer or close in {timeout:.0f} s")]
    except ConnectionResetError:
        return []  # a reset is a close
    except OSError as error:
        return [Finding("tls", subject, "no connection", str(error))]
    if not received:
        return []
    status_line = received.split(b"\r\n", 1)[0]
    fields = status_line.split()
    if len(fields) >= 2 and fields[0].startswith(b"HTTP/1.") and fields[1] == b"400":
        return []
    return [Finding("tls", subject, "answered other than 400", repr(received[:80]))]


def check_malformed_digests(
    base_url: str, repository: str, digests: Sequence[str] = MALFORMED_DIGESTS
) -> list[Finding]:
    """Malformed digests: 400 or 404, and for GET a spec JSON error body."""
    findings: list[Finding] = []
    for kind in ("manifests", "blobs"):
        for digest in digests:
            path = f"/v2/{repository}/{kind}/{digest}"
            for method in ("GET", "HEAD"):
                subject = f"{method} {path}"
                try:
                    response = request(base_url, method, path, ACCEPT_VARIANTS["containers-image"])
                except ProbeError as error:
                    findings.append(Finding("malformed-digest", subject, "no response", str(error)))
                    continue
                if response.status not in (400, 404):
                    findings.append(
                        Finding(
                            "malformed-digest",
                            subject,
                            f"status {response.status}",
                            _describe(response),
                        )
                    )
                elif method == "GET" and not response.error_codes():
                    findings.append(
                        Finding(
                            "malformed-digest",
                            subject,
                            "error body is not spec JSON",
                            repr(response.body[:120]),
                        )
                    )
    return findings


def probe_registry(
    base_url: str,
    repository: str,
    tags: Sequence[str],
    *,
    tls_timeout: float = 5.0,
) -> list[Finding]:
    """All checks, for the given tags of one repository (which must exist)."""
    findings = check_api_root(base_url)
    for tag in tags:
        findings += check_manifest(base_url, repository, tag)
    findings += check_tls_hello(base_url, tls_timeout)
    findings += check_malformed_digests(base_url, repository)
    return findings


def format_findings(findings: Sequence[Finding]) -> str:
    """One line per finding, for assertion messages."""
    return "\n".join(str(f) for f in findings) or "(none)"
