"""Adapters chosen by the settings: the one place that knows them all.

Google Cloud and S3 adapters are imported only when configured, so the
embedded registry never loads the Google client libraries or boto3, and a
function never loads what it does not use.
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
    if settings.storage_backend == "gcs":
        from blobstore.gcs import GcsBlobStore
        from blobstore.signing import LazySigner, signer_from_environment

        # Credentials are looked up on the first redirect, not at start-up:
        # the builder job only writes and never needs a signer.
        signer = LazySigner(
            lambda: signer_from_environment(settings.signing_service_account, settings.iam_endpoint)
        )
        return GcsBlobStore(
            settings.gcs_bucket,
            signer=signer,
            url_ttl_s=settings.signed_url_ttl_s,
            scratch=settings.work_dir / "scratch",
        )
    if settings.storage_backend == "s3":
        from blobstore.s3 import S3BlobStore, make_client

        # The boto3 client (and with it the credential look-up) is made on first use.
        return S3BlobStore(
            settings.s3_bucket,
            client_factory=lambda: make_client(
                endpoint_url=settings.s3_endpoint_url, region=settings.s3_region
            ),
            conditional_writes=settings.s3_conditional_writes,
            url_ttl_s=settings.signed_url_ttl_s,
            scratch=settings.work_dir / "scratch",
        )
    raise ConfigError([f"storage backend {settings.storage_backend!r} is not available yet"])


def metadata_store(settings: Settings) -> MetadataStore:
    if settings.metadata_backend == "sqlite":
        from metastore.sqlite import SqliteMetadataStore

        return SqliteMetadataStore(settings.metadata_path)
    if settings.metadata_backend == "firestore":
        from metastore.firestore import FirestoreMetadataStore

        return FirestoreMetadataStore.connect(
            project=settings.gcp_project,
            database=settings.firestore_database,
            prefix=settings.firestore_prefix,
            retention_s=settings.build_retention_s,
        )
    raise ConfigError([f"metadata backend {settings.metadata_backend!r} is not available yet"])


def launcher(settings: Settings) -> Launcher:
    if settings.launcher == "local":
        from launcher.local import LocalLauncher

        return LocalLauncher()
    if settings.launcher == "cloudrun":
        from launcher.cloudrun import CloudRunLauncher

        # The Cloud Run client itself is made on the first launch, not here.
        return CloudRunLauncher(settings.builder_job, endpoint=settings.cloud_run_endpoint)
    raise ConfigError([f"launcher {settings.launcher!r} is not available yet"])
