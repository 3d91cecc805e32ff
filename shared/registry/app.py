"""Building the two handlers from settings: what each function's main.py calls.

Everything expensive (settings, adapters, clients, the source resolver)
is built once per process, so a request only does its own work: settings
and the services at import of the function's ``main.py``, the storage and
metadata adapters (and their Google client libraries) on a background thread
started by the first request (:mod:`registry.lazy`), so ``/v2/`` answers
without waiting for them.
"""

from __future__ import annotations

from functools import partial

from registry import wiring
from registry.auth import authenticator
from registry.blobs import BlobService
from registry.builds import BuildCoordinator
from registry.http import Handler, guarded
from registry.lazy import kicking, lazy
from registry.manifests import ManifestService
from registry.settings import Settings
from registry.specs import resolver_for


def manifest_handler(settings: Settings) -> Handler:
    # partial binds the wiring functions now: which adapter is decided at
    # import, only building it waits for the first request.
    metadata, metadata_stand_in = lazy(partial(wiring.metadata_store, settings), "metadata store")
    launcher, launcher_stand_in = lazy(partial(wiring.launcher, settings), "launcher")
    coordinator = BuildCoordinator(
        metadata=metadata,
        launcher=launcher,
        wait_s=settings.build_wait_s,
        start_s=settings.build_start_s,
        failure_ttl_s=settings.failure_ttl_s,
        max_builds_per_instance=settings.limits.max_builds_per_instance,
        max_builds=settings.limits.max_builds,
    )
    service = ManifestService(settings, metadata, resolver_for(settings), coordinator)
    if settings.trigger_audience:  # the prebuild trigger is off unless configured
        from registry.trigger import PrebuildTrigger

        service.trigger = PrebuildTrigger(
            settings, metadata, service.resolver, coordinator.launcher
        ).handle
    return guarded(
        kicking(service.handle, metadata_stand_in, launcher_stand_in), authenticator(settings.auth)
    )


def blob_handler(settings: Settings) -> Handler:
    store, store_stand_in = lazy(partial(wiring.blob_store, settings), "blob store")
    handler = kicking(BlobService(settings, store).handle, store_stand_in)
    return guarded(handler, authenticator(settings.auth))
