"""Adapters chosen by the settings: the one place that knows them all.

Google Cloud adapters are imported only when configured, so the embedded
registry never loads the Google client libraries and a function never loads
what it does not use.
"""

from __future__ import annotations

from blobstore.port import BlobStore
from launcher.port import Launcher
from metastore.port import MetadataStore
from registry.settings import ConfigError, Settings


def blob_store(settings: Settings) -> BlobStore:
    if settings.storage_backend == "filesystem":
        from blobstore.filesystem import FilesystemBlobStore

        return FilesystemBlobStore(settings.storage_path)
    raise ConfigError([f"storage backend {settings.storage_backend!r} is not available yet"])


def metadata_store(settings: Settings) -> MetadataStore:
    if settings.metadata_backend == "sqlite":
        from metastore.sqlite import SqliteMetadataStore

        return SqliteMetadataStore(settings.metadata_path)
    raise ConfigError([f"metadata backend {settings.metadata_backend!r} is not available yet"])


def launcher(settings: Settings) -> Launcher:
    if settings.launcher == "local":
        from launcher.local import LocalLauncher

        return LocalLauncher()
    raise ConfigError([f"launcher {settings.launcher!r} is not available yet"])
