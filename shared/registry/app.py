"""Building the two handlers from settings: what each function's main.py calls.

Everything expensive (settings, adapters, clients, the source resolver)
is built once per process, at import of the function's ``main.py``, so a
request only does its own work.
"""

from __future__ import annotations

from registry import wiring
from registry.auth import authenticator
from registry.blobs import BlobService
from registry.builds import BuildCoordinator
from registry.http import Handler, guarded
from registry.manifests import ManifestService
from registry.settings import Settings
from registry.specs import resolver_for


def manifest_handler(settings: Settings) -> Handler:
    metadata = wiring.metadata_store(settings)
    coordinator = BuildCoordinator(
        metadata=metadata,
        launcher=wiring.launcher(settings),
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
    return guarded(service.handle, authenticator(settings.auth))


def blob_handler(settings: Settings) -> Handler:
    store = wiring.blob_store(settings)
    return guarded(BlobService(settings, store).handle, authenticator(settings.auth))
