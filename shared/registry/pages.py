"""Pages for people, served by the manifest function beside the registry API.

================  ==========================================================
path              page
================  ==========================================================
``/``             how to pull, the naming rules and meta-packages, the
                  package source and its current revision (like nixery.dev)
``/builds``       the most recent builds; failures with their reasons
                  (``?state=failed`` shows only those, ``?n=`` how many)
``/builds/<id>``  one build: state, timings per stage, closure size, layer
                  count, the error and the tail of Nix's output (an unknown
                  id is a ``NAME_UNKNOWN`` error in JSON, like any miss)
================  ==========================================================

A failed pull's error names its build (``detail.build``);
:func:`with_build_link` adds this page's URL to the message and the detail,
so someone whose ``docker pull`` failed can open it and read why. A build
whose builder stopped heartbeating is shown as *abandoned*: its record still
says running, but its lease has expired and the next pull takes it over.

Everything shown may come from a user (image names, Nix messages quoting
them, git refs), so escaping is the default rather than a habit:
:func:`fragment` escapes every value it inserts unless it is :class:`Markup`
built here. The pages are plain HTML with inline CSS and no script at all,
and a Content-Security-Policy forbids scripts outright, so even a missed
escape could not run code. A git URL's user-info (a token, perhaps) is
never shown.
"""

from __future__ import annotations

import dataclasses
import html
import json
import re
import time
from collections.abc import Callable, Iterable
from urllib.parse import urlsplit, urlunsplit

from werkzeug.wrappers import Request, Response

from metastore.port import MetadataStore
from metastore.records import BuildRecord
from nixspec.names import ALWAYS_INCLUDED, SHELL_PACKAGES
from nixspec.sources import SourceResolver
from nixspec.spec import SourceKind
from ocimodel.errors import ErrorCode, RegistryError
from registry.http import count_param, require_read
from registry.routes import Kind, Route
from registry.settings import Settings

PAGE_KINDS = frozenset({Kind.HOME, Kind.BUILDS, Kind.BUILD})
DEFAULT_ROWS = 50
MAX_ROWS = 200
REASON_CHARS = 300  # of an error message in the list; the build's page has all of it
STAGES = ("resolve", "realise", "closure", "layering", "layers", "record")
HEADERS = {
    "Content-Type": "text/html; charset=utf-8",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; "
        "form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}
_BUILD_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_HOST = re.compile(r"(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?")


class Markup(str):
    """HTML made here: inserted as it is."""


def fragment(template: str, *values: object) -> Markup:
    """``template`` with each ``{}`` replaced by a value, escaped unless Markup."""
    return Markup(
        template.format(
            *(v if isinstance(v, Markup) else html.escape(str(v), quote=True) for v in values)
        )
    )


def join(parts: Iterable[Markup]) -> Markup:
    return Markup("".join(parts))


STYLE = Markup(
    "<style>body{font:15px/1.5 system-ui,sans-serif;max-width:64rem;margin:2rem auto;"
    "padding:0 1rem;color:#1d232a}code,pre{font-family:ui-monospace,monospace;"
    "background:#f2f4f7;border-radius:4px}code{padding:0 .25em}pre{padding:.75em;"
    "overflow-x:auto;white-space:pre-wrap}table{border-collapse:collapse;width:100%}"
    "th,td{text-align:left;padding:.3em .6em;border-bottom:1px solid #dde2e8;"
    "vertical-align:top}.succeeded{color:#16794c}.failed{color:#b42318}"
    ".running,.pending{color:#175cd3}.abandoned{color:#b54708}h1 a{color:inherit;"
    "text-decoration:none}nav a{margin-right:1em}"
    "td:first-child,td:nth-child(4){white-space:nowrap}</style>"
)


def page(title: str, body: Markup) -> Response:
    document = fragment(
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        "<title>{}</title>{}</head><body>"
        '<h1><a href="/">nixery</a></h1><nav><a href="/">usage</a>'
        '<a href="/builds">builds</a><a href="/builds?state=failed">failures</a></nav>'
        "{}</body></html>",
        title,
        STYLE,
        body,
    )
    data = document.encode()
    return Response(data, headers={**HEADERS, "Content-Length": str(len(data))})


def when(seconds: float | None) -> str:
    return "" if seconds is None else time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(seconds))


def size(count: int) -> str:
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def shown_state(build: BuildRecord, now: float) -> str:
    """The state to show: an active build whose lease expired was abandoned."""
    if build.state.active and not build.lease_valid(now):
        return "abandoned"
    return str(build.state)


def reason(build: BuildRecord, now: float) -> str:
    if build.error is not None:
        return build.error.message
    if shown_state(build, now) == "abandoned":
        return f"the builder stopped reporting; its lease expired {when(build.lease_expires_at)}"
    return ""


def public_location(kind: SourceKind, location: str) -> str:
    """The source's location without user-info (a token in a git URL stays secret)."""
    if kind is not SourceKind.GIT:
        return location
    parts = urlsplit(location)
    if "@" not in parts.netloc:
        return location
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def build_url(request: Request, build_id: str) -> str:
    """The absolute URL of a build's page, as the client reached this host."""
    path = f"/builds/{build_id}"
    host = request.host
    if not _HOST.fullmatch(host):
        return path  # a strange Host header: never echo it into a message
    forwarded = request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip()
    scheme = forwarded if forwarded in ("http", "https") else request.scheme
    return f"{scheme}://{host}{path}"


def with_build_link(error: RegistryError, request: Request) -> RegistryError:
    """``error`` with its build page's URL in the message and the detail."""
    detail = error.detail
    if not isinstance(detail, dict) or not isinstance(detail.get("build"), str):
        return error
    url = build_url(request, detail["build"])
    message = error.message or error.code.default_message
    return dataclasses.replace(
        error, message=f"{message} (build log: {url})", detail={**detail, "url": url}
    )


class Pages:
    def __init__(
        self,
        settings: Settings,
        metadata: MetadataStore,
        resolver: SourceResolver,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.metadata = metadata
        self.resolver = resolver
        self.clock = clock

    def handle(self, request: Request, route: Route) -> Response:
        require_read(request)
        if route.kind is Kind.HOME:
            return page("nixery: container images named by their packages", self.home(request))
        if route.kind is Kind.BUILDS:
            return page("nixery: recent builds", self.builds(request))
        return self.build(route.reference)

    # -- / ----------------------------------------------------------------------
    def home(self, request: Request) -> Markup:
        host = request.host if _HOST.fullmatch(request.host) else "registry.example.com"
        source = self.settings.source
        try:
            revision = self.resolver.resolve("latest").revision
        except Exception as exc:  # the page must render even when the source is unreachable
            revision = f"not resolved: {exc}"
        tags = (
            "the tag is a git branch or tag (latest = the default branch), or a commit"
            if source.kind is SourceKind.GIT
            else "the tag is ignored: every tag is the current revision"
        )
        rows = [
            ("shell", "adds " + ", ".join(SHELL_PACKAGES) + "; the image runs bash"),
            ("arm64", "builds for aarch64-linux (image architecture arm64)"),
        ]
        return fragment(
            "<p>Container images built on demand with Nix: the image name lists the "
            "packages. Pull one with any registry client:</p>"
            "<pre>docker pull {0}/shell/git/htop\n"
            "podman pull --tls-verify=false {0}/shell/hello\n"
            "skopeo copy docker://{0}/hello oci:hello:latest</pre>"
            "<h2>Image names</h2><p>Every path component is a package of the package "
            "set; the image holds them and their runtime closure, plus {1}. Packages "
            "are sorted and de-duplicated (<code>htop/git</code> is <code>git/htop</code>), "
            "dotted names are attribute paths (<code>python3packages.numpy</code>), "
            "matched case-insensitively. At most {2} packages and {3} characters.</p>"
            "<h2>Meta-packages</h2><table><tr><th>component</th><th>means</th></tr>{4}</table>"
            "<h2>Package source</h2><table><tr><th>kind</th><td>{5}</td></tr>"
            "<tr><th>location</th><td><code>{6}</code></td></tr>"
            "<tr><th>revision</th><td><code>{7}</code></td></tr>"
            "<tr><th>tags</th><td>{8}</td></tr></table>"
            "<h2>When a pull fails</h2><p>The error names its build; its page under "
            '<a href="/builds">/builds</a> says why, with the tail of Nix\'s output. A pull '
            "that waits longer than {9} s for its build gets <code>TOOMANYREQUESTS</code>; "
            "the build goes on and the next pull gets the image.</p>",
            host,
            ", ".join(ALWAYS_INCLUDED),
            self.settings.max_packages,
            self.settings.max_name_length,
            join(fragment("<tr><td><code>{}</code></td><td>{}</td></tr>", *r) for r in rows),
            str(source.kind),
            public_location(source.kind, source.location),
            revision,
            tags,
            f"{self.settings.build_wait_s:g}",
        )

    # -- /builds ------------------------------------------------------------------
    def builds(self, request: Request) -> Markup:
        now = self.clock()
        wanted = request.args.get("state", "")
        n = count_param(request.args.get("n", ""))
        rows = min(n, MAX_ROWS) if n else DEFAULT_ROWS
        records = self.metadata.recent_builds(MAX_ROWS if wanted else rows)
        if wanted:
            records = [b for b in records if shown_state(b, now) == wanted][:rows]
        if not records:
            return fragment("<h2>Recent builds</h2><p>No builds{}.</p>", f" in state {wanted}")
        lines = join(self._row(b, now) for b in records)
        return fragment(
            "<h2>Recent builds</h2><table><tr><th>build</th><th>image</th><th>state</th>"
            "<th>started</th><th>took</th><th>layers</th><th>closure</th><th>reason</th></tr>"
            "{}</table>",
            lines,
        )

    def _row(self, build: BuildRecord, now: float) -> Markup:
        state = shown_state(build, now)
        took = (
            f"{build.finished_at - build.created_at:.1f} s" if build.finished_at is not None else ""
        )
        why = reason(build, now)
        if len(why) > REASON_CHARS:
            why = why[:REASON_CHARS] + "…"
        return fragment(
            '<tr><td><a href="/builds/{0}"><code>{0}</code></a></td><td><code>{1}</code></td>'
            '<td class="{2}">{2}</td><td>{3}</td><td>{4}</td><td>{5}</td><td>{6}</td>'
            "<td>{7}</td></tr>",
            build.build_id,
            build.image,
            state,
            when(build.created_at),
            took,
            build.layer_count or "",
            size(build.closure_size) if build.closure_size else "",
            why,
        )

    # -- /builds/<id> -------------------------------------------------------------
    def build(self, build_id: str) -> Response:
        record = self.metadata.get_build(build_id) if _BUILD_ID.fullmatch(build_id) else None
        if record is None:
            # A spec error like every other miss (JSON): clients and the fuzz
            # contract see one kind of error; people get the hint in it.
            raise RegistryError(
                ErrorCode.NAME_UNKNOWN,
                "no such build (or its record has expired); recent builds are at /builds",
                detail={"build": build_id[:200]},
            )
        now = self.clock()
        state = shown_state(record, now)
        facts = [
            ("image", fragment("<code>{}</code>", record.image)),
            ("state", fragment('<span class="{0}">{0}</span>', state)),
            ("started", when(record.created_at)),
            ("last report", when(record.updated_at)),
            ("finished", when(record.finished_at)),
            ("closure size", size(record.closure_size) if record.closure_size else ""),
            ("layers", str(record.layer_count or "")),
            ("manifest", record.manifest_digest),
            ("cache key", record.cache_key),
        ]
        if state == "abandoned":
            facts.append(("reason", reason(record, now)))
        body = [
            fragment("<h2>Build <code>{}</code></h2>", record.build_id),
            fragment(
                "<table>{}</table>",
                join(fragment("<tr><th>{}</th><td>{}</td></tr>", k, v) for k, v in facts if v),
            ),
        ]
        body.append(self._timings(record))
        if record.error is not None:
            detail = (
                json.dumps(record.error.detail, indent=2, ensure_ascii=False)
                if record.error.detail is not None
                else ""
            )
            body.append(
                fragment(
                    "<h3>Error</h3><p><code>{}</code></p><pre>{}</pre>{}",
                    record.error.code,
                    record.error.message,
                    fragment("<h4>detail</h4><pre>{}</pre>", detail) if detail else Markup(""),
                )
            )
        if record.log_tail:
            body.append(fragment("<h3>Nix output (tail)</h3><pre>{}</pre>", record.log_tail))
        return page(f"nixery: build {record.build_id}", join(body))

    def _timings(self, record: BuildRecord) -> Markup:
        if not record.timings:
            return Markup("")
        order = [s for s in STAGES if s in record.timings]
        order += sorted(k for k in record.timings if k not in STAGES)
        rows = join(
            fragment(
                "<tr><td>{}</td><td>{}</td></tr>",
                name,
                f"{record.timings[name]:.2f} s" if name in STAGES else f"{record.timings[name]:g}",
            )
            for name in order
        )
        return fragment(
            "<h3>Stages</h3><table><tr><th>stage</th><th>time</th></tr>{}</table>", rows
        )
