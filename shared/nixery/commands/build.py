"""``nixery build NAME --oci-layout DIR``: one image, no server.

The build runs in this process (:func:`builder_job.pipeline.run_build`) and
is recorded in the same metadata store as the embedded registry's, so a
later ``nixery serve`` or ``nixery build`` finds it cached. On a terminal a
spinner shows the elapsed time and the stages done so far (read from the
build record, which the builder's heartbeat updates).
"""

from __future__ import annotations

import argparse
import contextlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from rich.console import Console

from metastore.port import MetadataStore
from nixery.commands.common import EXIT_FAILED, EXIT_OK, CliError, load_settings
from nixery.progress import make_console

HELP = "build one image into an OCI layout directory, without a server"
DESCRIPTION = """Build one image and write it as an OCI image layout (a directory skopeo,
umoci, podman and buildah read). An image built before, by this command or by
`nixery serve` with the same storage, is written from the cache at once."""
EXAMPLES = """examples:
  nixery build shell/hello --oci-layout ./hello-image
  skopeo copy oci:./hello-image:latest docker-daemon:hello:latest
  NIXERY_PKGS_PATH=tests/pkgs nixery build shell/git:latest --oci-layout ./git
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("image", help="image name, e.g. shell/hello or shell/git:latest")
    parser.add_argument("--oci-layout", required=True, metavar="DIR", help="output directory")


@contextlib.contextmanager
def _spinner(
    console: Console, image: str, metadata: MetadataStore, build_id: str
) -> Iterator[None]:
    """Elapsed time and finished stages, redrawn until the build returns."""
    if not console.is_terminal:
        yield
        return
    started = time.monotonic()
    done = threading.Event()
    with console.status(f"building {image}") as status:

        def poll() -> None:
            while not done.wait(0.25):
                record = metadata.get_build(build_id)
                stages = " · ".join(
                    f"{k} {v:.1f} s"
                    for k, v in (record.timings if record else {}).items()
                    if isinstance(v, float)
                )
                elapsed = time.monotonic() - started
                status.update(f"building {image} — {elapsed:.0f} s  {stages}")

        thread = threading.Thread(target=poll, daemon=True)
        thread.start()
        try:
            yield
        finally:
            done.set()
            thread.join()


def run(args: argparse.Namespace) -> int:
    settings = load_settings()
    from builder_job.pipeline import run_build
    from launcher.port import BuildRequest
    from nixery.ocilayout import write_layout
    from registry import wiring
    from registry.builds import error_for, new_build_id
    from registry.prebuild import parse_reference
    from registry.specs import resolver_for, spec_for

    name, tag = parse_reference(args.image)
    spec = spec_for(settings, resolver_for(settings), name, tag)
    store = wiring.blob_store(settings)
    metadata = wiring.metadata_store(settings)
    console = make_console(stderr=True)
    image = metadata.get_image(spec.cache_key)
    if image is None:
        claim = metadata.claim_build(
            cache_key=spec.cache_key,
            build_id=new_build_id(),
            image=f"{spec.name}:{spec.tag}",
            spec=spec.to_json(),
            now=time.time(),
            lease_s=settings.lease_s,
            failure_ttl_s=0.0,
        )
        if claim.won:
            with _spinner(console, args.image, metadata, claim.build.build_id):
                run_build(BuildRequest(claim.build.build_id, spec), settings, store, metadata)
        record = metadata.get_build(claim.build.build_id)
        image = metadata.get_image(spec.cache_key)
        if image is None:
            if record is not None and record.error is not None:
                raise CliError(str(error_for(record)), EXIT_FAILED)
            raise CliError(
                f"{args.image} is being built by another process "
                f"(build {claim.build.build_id}); try again when it is done",
                EXIT_FAILED,
            )
    digest = write_layout(image, store, Path(args.oci_layout), tag)
    print(f"{args.oci_layout}: {digest}")
    return EXIT_OK
