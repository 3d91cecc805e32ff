"""Configuration: the environment, read once, into one frozen object.

Upstream Nixery's variable names are kept where the meaning is the same
(``PORT``, ``NIXERY_CHANNEL``, ``NIXERY_PKGS_REPO``, ``NIXERY_PKGS_PATH``,
``NIXERY_STORAGE_BACKEND``, ``STORAGE_PATH``, ``NIX_TIMEOUT``,
``NIX_POPULARITY_URL``, ``GCS_BUCKET``, and from its S3 backend ``S3_BUCKET``
and ``AWS_REGION``); new settings are prefixed
``NIXERY_``. :func:`Settings.from_env` checks everything and raises one
:class:`ConfigError` naming every problem at once, instead of stopping at the
first (upstream exits the process from inside its parser).

Exactly one package source may be set. Upstream silently prefers channel,
then repo, then path; here two sources at once is an error, because a
registry that silently ignores a setting serves the wrong packages.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from nixspec.names import DEFAULT_MAX_NAME_LENGTH, DEFAULT_MAX_PACKAGES
from nixspec.sources import DEFAULT_CHANNEL_BASE, ConfiguredSource
from nixspec.spec import SourceKind
from registry.auth import AuthSettings
from registry.limits import Limits

DEFAULT_CHANNEL = "nixos-unstable"
DEFAULT_LAYER_BUDGET = 94  # Docker allows ~125 layers; leave room for users' own layers
STORAGE_BACKENDS = ("filesystem", "gcs", "s3")
METADATA_BACKENDS = ("sqlite", "firestore")
LAUNCHERS = ("local", "cloudrun")
S3_CONDITIONAL_WRITES = ("auto", "on", "off")
# S3 bucket names: 3-63 lowercase letters, digits, dots and hyphens, from and
# to a letter or digit (MinIO, R2 and Ceph take the same).
S3_BUCKET_PATTERN = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
S3_REGION_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,64}")  # us-east-1, R2's "auto", MinIO's own
DEFAULT_SIGNED_URL_TTL_S = 600  # upstream signed for 5 minutes; slow pulls outlived that
MAX_SIGNED_URL_TTL_S = 7 * 24 * 3600  # the longest a V4 signed URL may live
DEFAULT_IAM_ENDPOINT = "https://iamcredentials.googleapis.com"
#: Google's signing certificates of OIDC identity tokens (PEM by key id).
DEFAULT_TRIGGER_CERTS_URL = "https://www.googleapis.com/oauth2/v1/certs"
DEFAULT_FIRESTORE_DATABASE = "(default)"
DEFAULT_FIRESTORE_PREFIX = "nixery-"
DEFAULT_BUILD_RETENTION_S = 30 * 24 * 3600.0  # build records stay readable for a month
# Collection IDs may not contain "/" nor look like __x__; database IDs are
# "(default)" or 4-63 lowercase letters, digits and hyphens.
FIRESTORE_PREFIX_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")
FIRESTORE_DATABASE_PATTERN = re.compile(r"\(default\)|[a-z][a-z0-9-]{2,61}[a-z0-9]")
# A Cloud Run job's full name. Project ids are 6-30 lowercase letters, digits
# and hyphens (or a project number, or domain-scoped "example.com:id"); job
# names are up to 63 lowercase letters, digits and hyphens from a letter.
CLOUD_RUN_JOB_PATTERN = re.compile(
    r"projects/(?P<project>(?:[a-z0-9.-]+:)?[a-z][a-z0-9-]{4,28}[a-z0-9]|[0-9]+)"
    r"/locations/(?P<location>[a-z]+-[a-z]+[0-9]+)"
    r"/jobs/(?P<job>[a-z](?:[a-z0-9-]{0,61}[a-z0-9])?)"
)

T = TypeVar("T")


class ConfigError(Exception):
    """Every configuration problem found, one per line."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("invalid configuration:\n" + "\n".join(f"  - {p}" for p in problems))


def _default_storage_path() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local/share")
    return Path(base) / "nixery-serverless"


@dataclass(frozen=True)
class Settings:
    source: ConfiguredSource
    source_is_default: bool = False
    port: int = 8080
    storage_backend: str = "filesystem"
    storage_path: Path = field(default_factory=_default_storage_path)
    metadata_backend: str = "sqlite"
    sqlite_path: Path | None = None
    launcher: str = "local"
    nix_timeout_s: float = 60.0
    popularity_url: str = ""
    layer_budget: int = DEFAULT_LAYER_BUDGET
    max_packages: int = DEFAULT_MAX_PACKAGES
    max_name_length: int = DEFAULT_MAX_NAME_LENGTH
    allow_unfree: bool = False
    limits: Limits = field(default_factory=Limits)  # registry.limits: builds, time, size, lists
    auth: AuthSettings = field(default_factory=AuthSettings)  # registry.auth: off by default
    build_wait_s: float = 600.0
    lease_s: float = 30.0
    build_start_s: float = 120.0
    failure_ttl_s: float = 60.0
    source_ttl_s: float = 10.0
    channel_url: str = DEFAULT_CHANNEL_BASE
    work_dir: Path = Path("/tmp/nixery-builds")
    gcs_bucket: str = ""
    signed_url_ttl_s: int = DEFAULT_SIGNED_URL_TTL_S
    signing_service_account: str = ""
    iam_endpoint: str = DEFAULT_IAM_ENDPOINT

    # NIXERY_STORAGE_BACKEND=s3 (blobstore.s3); credentials: the standard AWS chain.
    s3_bucket: str = ""
    s3_endpoint_url: str = ""  # "" = AWS (or boto3's own AWS_ENDPOINT_URL_S3)
    s3_region: str = ""  # "" = the AWS chain's (AWS_DEFAULT_REGION, config file)
    s3_conditional_writes: str = "auto"

    gcp_project: str = ""
    firestore_database: str = DEFAULT_FIRESTORE_DATABASE
    firestore_prefix: str = DEFAULT_FIRESTORE_PREFIX
    build_retention_s: float = DEFAULT_BUILD_RETENTION_S

    builder_job: str = ""  # projects/P/locations/L/jobs/J, for NIXERY_LAUNCHER=cloudrun
    cloud_run_endpoint: str = ""  # Cloud Run Admin API override (tests' fake); "" = Google's

    # The prebuild trigger (registry.trigger); off unless audience and accounts are set.
    trigger_audience: str = ""
    trigger_allowed_sa: tuple[str, ...] = ()
    trigger_certs_url: str = DEFAULT_TRIGGER_CERTS_URL

    @property
    def metadata_path(self) -> Path:
        return self.sqlite_path or self.storage_path / "metadata.sqlite3"

    @classmethod
    def from_env(
        cls, env: Mapping[str, str] | None = None, *, default_channel: str | None = None
    ) -> Settings:
        """Read and check the environment. ``default_channel`` is used when no
        package source is set (``nixery serve``); without it, none is an error."""
        env = os.environ if env is None else env
        problems: list[str] = []

        def get(name: str, parse: Callable[[str], T], default: T, check: str = "") -> T:
            raw = env.get(name, "").strip()
            if not raw:
                return default
            try:
                value = parse(raw)
            except ValueError:
                problems.append(f"{name}={raw!r} is not {check or 'valid'}")
                return default
            return value

        def positive(parse: Callable[[str], T]) -> Callable[[str], T]:
            def inner(raw: str) -> T:
                value = parse(raw)
                # `not >` also refuses NaN; infinity is no timeout or limit either.
                if not value > 0 or value == float("inf"):  # type: ignore[operator]
                    raise ValueError(raw)
                return value

            return inner

        def port_number(raw: str) -> int:
            value = int(raw)
            if not 0 < value < 65536:
                raise ValueError(raw)
            return value

        def boolean(raw: str) -> bool:
            lowered = raw.lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off"):
                return False
            raise ValueError(raw)

        def choice(name: str, options: tuple[str, ...], default: str) -> str:
            value = env.get(name, "").strip() or default
            if value not in options:
                problems.append(f"{name}={value!r} must be one of {', '.join(options)}")
            return value

        sources = [
            (SourceKind.CHANNEL, env.get("NIXERY_CHANNEL", "").strip()),
            (SourceKind.GIT, env.get("NIXERY_PKGS_REPO", "").strip()),
            (SourceKind.PATH, env.get("NIXERY_PKGS_PATH", "").strip()),
        ]
        chosen = [(kind, value) for kind, value in sources if value]
        source_is_default = False
        if len(chosen) > 1:
            problems.append(
                "set only one package source, not "
                + " and ".join(
                    {
                        "channel": "NIXERY_CHANNEL",
                        "git": "NIXERY_PKGS_REPO",
                        "path": "NIXERY_PKGS_PATH",
                    }[str(kind)]
                    for kind, _ in chosen
                )
            )
        if not chosen:
            if default_channel:
                chosen = [(SourceKind.CHANNEL, default_channel)]
                source_is_default = True
            else:
                problems.append(
                    "no package source: set NIXERY_CHANNEL, NIXERY_PKGS_REPO or NIXERY_PKGS_PATH"
                )
                chosen = [(SourceKind.CHANNEL, DEFAULT_CHANNEL)]
        kind, location = chosen[0]
        if kind is SourceKind.PATH:
            path = Path(location).expanduser().resolve()
            if not (path / "default.nix").is_file():
                problems.append(f"NIXERY_PKGS_PATH={location!r} has no default.nix")
            location = str(path)

        storage_backend = choice("NIXERY_STORAGE_BACKEND", STORAGE_BACKENDS, "filesystem")
        # Firestore only by default next to Cloud Storage: S3 users are rarely on Google Cloud.
        default_metadata = "firestore" if storage_backend == "gcs" else "sqlite"
        gcs_bucket = env.get("GCS_BUCKET", "").strip()
        if storage_backend == "gcs" and not gcs_bucket:
            problems.append("NIXERY_STORAGE_BACKEND=gcs needs GCS_BUCKET")
        s3_bucket = env.get("S3_BUCKET", "").strip()
        if storage_backend == "s3" and not s3_bucket:
            problems.append("NIXERY_STORAGE_BACKEND=s3 needs S3_BUCKET")
        if storage_backend == "s3" and s3_bucket and not S3_BUCKET_PATTERN.fullmatch(s3_bucket):
            problems.append(
                f"S3_BUCKET={s3_bucket!r} is not a bucket name: 3-63 lowercase letters, "
                "digits, dots and hyphens"
            )
        s3_endpoint_url = env.get("NIXERY_S3_ENDPOINT_URL", "").strip()
        if s3_endpoint_url and not s3_endpoint_url.startswith(("https://", "http://")):
            problems.append(f"NIXERY_S3_ENDPOINT_URL={s3_endpoint_url!r} is not an http(s) URL")
        s3_region = env.get("AWS_REGION", "").strip()
        # Other tools set AWS_REGION too: judged only when it is ours to use.
        if storage_backend == "s3" and s3_region and not S3_REGION_PATTERN.fullmatch(s3_region):
            problems.append(f"AWS_REGION={s3_region!r} is not a region name")
        s3_conditional_writes = choice(
            "NIXERY_S3_CONDITIONAL_WRITES", S3_CONDITIONAL_WRITES, "auto"
        )
        signed_url_ttl_s = get(
            "NIXERY_SIGNED_URL_TTL_S",
            positive(int),
            DEFAULT_SIGNED_URL_TTL_S,
            "a whole number of seconds",
        )
        if signed_url_ttl_s > MAX_SIGNED_URL_TTL_S:
            problems.append(
                f"NIXERY_SIGNED_URL_TTL_S={signed_url_ttl_s}: a V4 signed URL (GCS or S3) "
                f"lives at most {MAX_SIGNED_URL_TTL_S} s (7 days)"
            )
        signing_service_account = env.get("NIXERY_SIGNING_SERVICE_ACCOUNT", "").strip()
        if signing_service_account and "@" not in signing_service_account:
            problems.append(
                f"NIXERY_SIGNING_SERVICE_ACCOUNT={signing_service_account!r} is not a "
                "service account email"
            )
        iam_endpoint = env.get("NIXERY_IAM_ENDPOINT", "").strip() or DEFAULT_IAM_ENDPOINT
        if not iam_endpoint.startswith(("https://", "http://")):
            problems.append(f"NIXERY_IAM_ENDPOINT={iam_endpoint!r} is not an http(s) URL")
        builder_job = env.get("NIXERY_BUILDER_JOB", "").strip()
        if builder_job and not CLOUD_RUN_JOB_PATTERN.fullmatch(builder_job):
            problems.append(
                f"NIXERY_BUILDER_JOB={builder_job!r} is not a job's full name: "
                "projects/PROJECT/locations/REGION/jobs/JOB"
            )
        cloud_run_endpoint = env.get("NIXERY_CLOUD_RUN_ENDPOINT", "").strip()
        if cloud_run_endpoint and not cloud_run_endpoint.startswith(("https://", "http://")):
            problems.append(
                f"NIXERY_CLOUD_RUN_ENDPOINT={cloud_run_endpoint!r} is not an http(s) URL"
            )
        trigger_audience = env.get("NIXERY_TRIGGER_AUDIENCE", "").strip()
        trigger_allowed_sa = tuple(
            a.strip() for a in env.get("NIXERY_TRIGGER_ALLOWED_SA", "").split(",") if a.strip()
        )
        if bool(trigger_audience) != bool(trigger_allowed_sa):
            problems.append(
                "the prebuild trigger needs both NIXERY_TRIGGER_AUDIENCE and "
                "NIXERY_TRIGGER_ALLOWED_SA (or neither, to turn it off)"
            )
        problems.extend(
            f"NIXERY_TRIGGER_ALLOWED_SA: {a!r} is not a service account email"
            for a in trigger_allowed_sa
            if "@" not in a
        )
        trigger_certs_url = (
            env.get("NIXERY_TRIGGER_CERTS_URL", "").strip() or DEFAULT_TRIGGER_CERTS_URL
        )
        if not trigger_certs_url.startswith(("https://", "http://")):
            problems.append(f"NIXERY_TRIGGER_CERTS_URL={trigger_certs_url!r} is not an http(s) URL")
        storage_path = get(
            "STORAGE_PATH", lambda raw: Path(raw).expanduser(), _default_storage_path()
        )

        settings = cls(
            source=ConfiguredSource(kind, location),
            source_is_default=source_is_default,
            port=get("PORT", port_number, 8080, "a port number"),
            storage_backend=storage_backend,
            storage_path=storage_path,
            metadata_backend=choice("NIXERY_METADATA_BACKEND", METADATA_BACKENDS, default_metadata),
            sqlite_path=get("NIXERY_SQLITE_PATH", lambda raw: Path(raw).expanduser(), None),
            launcher=choice("NIXERY_LAUNCHER", LAUNCHERS, "local"),
            nix_timeout_s=get("NIX_TIMEOUT", positive(float), 60.0, "a number of seconds"),
            popularity_url=env.get("NIX_POPULARITY_URL", "").strip(),
            layer_budget=get(
                "NIXERY_LAYER_BUDGET", positive(int), DEFAULT_LAYER_BUDGET, "a positive integer"
            ),
            max_packages=get(
                "NIXERY_MAX_PACKAGES", positive(int), DEFAULT_MAX_PACKAGES, "a positive integer"
            ),
            max_name_length=get(
                "NIXERY_MAX_NAME_LENGTH",
                positive(int),
                DEFAULT_MAX_NAME_LENGTH,
                "a positive integer",
            ),
            allow_unfree=get("NIXERY_ALLOW_UNFREE", boolean, False, "true or false"),
            limits=Limits.from_env(env, problems),
            auth=AuthSettings.from_env(env, problems),
            build_wait_s=get("NIXERY_BUILD_WAIT_S", positive(float), 600.0, "a number of seconds"),
            lease_s=get("NIXERY_LEASE_S", positive(float), 30.0, "a number of seconds"),
            build_start_s=get(
                "NIXERY_BUILD_START_S", positive(float), 120.0, "a number of seconds"
            ),
            failure_ttl_s=get("NIXERY_FAILURE_TTL_S", float, 60.0, "a number of seconds"),
            source_ttl_s=get("NIXERY_SOURCE_TTL_S", float, 10.0, "a number of seconds"),
            channel_url=env.get("NIXERY_CHANNEL_URL", "").strip() or DEFAULT_CHANNEL_BASE,
            work_dir=get(
                "NIXERY_WORK_DIR", lambda raw: Path(raw).expanduser(), Path("/tmp/nixery-builds")
            ),
            gcs_bucket=gcs_bucket,
            s3_bucket=s3_bucket,
            s3_endpoint_url=s3_endpoint_url,
            s3_region=s3_region,
            s3_conditional_writes=s3_conditional_writes,
            gcp_project=env.get("GOOGLE_CLOUD_PROJECT", "").strip(),
            firestore_database=env.get("NIXERY_FIRESTORE_DATABASE", "").strip()
            or DEFAULT_FIRESTORE_DATABASE,
            firestore_prefix=env.get("NIXERY_FIRESTORE_PREFIX", "").strip()
            or DEFAULT_FIRESTORE_PREFIX,
            build_retention_s=get(
                "NIXERY_BUILD_RETENTION_S",
                positive(float),
                DEFAULT_BUILD_RETENTION_S,
                "a number of seconds",
            ),
            signed_url_ttl_s=signed_url_ttl_s,
            signing_service_account=signing_service_account,
            iam_endpoint=iam_endpoint,
            builder_job=builder_job,
            cloud_run_endpoint=cloud_run_endpoint,
            trigger_audience=trigger_audience,
            trigger_allowed_sa=trigger_allowed_sa,
            trigger_certs_url=trigger_certs_url,
        )
        if settings.launcher == "cloudrun" and not builder_job:
            problems.append(
                "NIXERY_LAUNCHER=cloudrun needs NIXERY_BUILDER_JOB "
                "(projects/PROJECT/locations/REGION/jobs/JOB)"
            )
        if settings.metadata_backend == "firestore":
            if not settings.gcp_project:
                problems.append("NIXERY_METADATA_BACKEND=firestore needs GOOGLE_CLOUD_PROJECT")
            if not FIRESTORE_DATABASE_PATTERN.fullmatch(settings.firestore_database):
                problems.append(
                    f"NIXERY_FIRESTORE_DATABASE={settings.firestore_database!r} is not a "
                    "database ID: (default) or 4-63 lowercase letters, digits and hyphens"
                )
            if not FIRESTORE_PREFIX_PATTERN.fullmatch(settings.firestore_prefix):
                problems.append(
                    f"NIXERY_FIRESTORE_PREFIX={settings.firestore_prefix!r} must be letters, "
                    "digits, '_', '.' or '-' (at most 100, not starting with '_', '.' or '-')"
                )
            # A build record must outlive every use of it: followers poll it,
            # its lease decides take-overs and a failure is answered from it.
            needed = max(
                settings.lease_s,
                settings.build_start_s,
                settings.failure_ttl_s,
                settings.build_wait_s,
            )
            if settings.build_retention_s < needed:
                problems.append(
                    f"NIXERY_BUILD_RETENTION_S={settings.build_retention_s:g} is shorter than "
                    f"the lease, failure TTL or build wait ({needed:g} s)"
                )
        if settings.layer_budget > 120:
            problems.append(
                f"NIXERY_LAYER_BUDGET={settings.layer_budget}: Docker refuses images of more than "
                "about 125 layers; use at most 120"
            )
        if problems:
            raise ConfigError(problems)
        return settings
