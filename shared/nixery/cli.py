"""``nixery``: run the embedded registry, or build one image without a server.

Exit codes: 0 success; 1 the build failed (the reason is printed); 2 bad
usage or configuration (every problem is printed).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from registry.settings import DEFAULT_CHANNEL, ConfigError, Settings

log = logging.getLogger("nixery")

EXAMPLES_SERVE = """examples:
  NIXERY_PKGS_PATH=./my-packages nixery serve --port 8080
  docker pull 127.0.0.1:8080/shell/git
"""
EXAMPLES_BUILD = """examples:
  nixery build shell/hello --oci-layout ./hello-image
  skopeo copy oci:./hello-image:latest docker-daemon:hello:latest
"""


def _settings() -> Settings:
    settings = Settings.from_env(default_channel=DEFAULT_CHANNEL)
    if settings.source_is_default:
        # The functions read the environment themselves: make the default explicit.
        os.environ["NIXERY_CHANNEL"] = settings.source.location
        log.warning(
            "no package source configured: using the nixpkgs channel %s "
            "(set NIXERY_CHANNEL, NIXERY_PKGS_REPO or NIXERY_PKGS_PATH)",
            settings.source.location,
        )
    return settings


def cmd_serve(args: argparse.Namespace) -> int:
    settings = _settings()
    from nixery.embedded import serve

    port = args.port or settings.port
    log.info(
        "serving on http://%s:%d (source: %s %s, storage: %s)",
        args.host,
        port,
        settings.source.kind,
        settings.source.location,
        settings.storage_path,
    )
    serve(args.host, port, args.workers, args.threads)
    return 0


def cmd_build(args: argparse.Namespace) -> int:
    settings = _settings()
    from builder_job.pipeline import run_build
    from launcher.port import BuildRequest
    from nixery.ocilayout import write_layout
    from registry import wiring
    from registry.builds import error_for, new_build_id
    from registry.specs import resolver_for, spec_for

    name, _, tag = args.image.partition(":")
    spec = spec_for(settings, resolver_for(settings), name, tag or "latest")
    store = wiring.blob_store(settings)
    metadata = wiring.metadata_store(settings)
    image = metadata.get_image(spec.cache_key)
    if image is None:
        build_id = new_build_id()
        claim = metadata.claim_build(
            cache_key=spec.cache_key,
            build_id=build_id,
            image=f"{spec.name}:{spec.tag}",
            spec=spec.to_json(),
            now=time.time(),
            lease_s=settings.lease_s,
            failure_ttl_s=0.0,
        )
        if claim.won:
            run_build(BuildRequest(build_id, spec), settings, store, metadata)
        record = metadata.get_build(claim.build.build_id)
        image = metadata.get_image(spec.cache_key)
        if image is None:
            if record is not None and record.error is not None:
                print(f"nixery: {error_for(record)}", file=sys.stderr)
            else:
                print("nixery: the image is being built by another process", file=sys.stderr)
            return 1
    digest = write_layout(image, store, Path(args.oci_layout), tag or "latest")
    print(f"{args.oci_layout}: {digest}")
    return 0


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="nixery",
        description="A Nix-powered container registry: images named by their packages.",
    )
    sub = top.add_subparsers(dest="command", required=True)
    serve = sub.add_parser(
        "serve",
        help="run the embedded registry",
        epilog=EXAMPLES_SERVE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=0, help="port (default $PORT or 8080)")
    serve.add_argument("--workers", type=int, default=2, help="server processes (default 2)")
    serve.add_argument("--threads", type=int, default=32, help="threads per process (default 32)")
    serve.set_defaults(run=cmd_serve)
    build = sub.add_parser(
        "build",
        help="build one image into an OCI layout directory, without a server",
        epilog=EXAMPLES_BUILD,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    build.add_argument("image", help="image name, e.g. shell/hello or shell/git:latest")
    build.add_argument("--oci-layout", required=True, metavar="DIR", help="output directory")
    build.set_defaults(run=cmd_build)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    from ocimodel.errors import RegistryError
    from registry.logs import configure_logging

    configure_logging()
    args = parser().parse_args(argv)
    try:
        code: int = args.run(args)
    except ConfigError as exc:
        print(f"nixery: {exc}", file=sys.stderr)
        return 2
    except RegistryError as exc:
        print(f"nixery: {exc.code.name}: {exc}", file=sys.stderr)
        return 2
    return code


if __name__ == "__main__":
    sys.exit(main())
