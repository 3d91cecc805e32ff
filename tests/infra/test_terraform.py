"""infra/terraform wired the way the code reads it.

The google provider cannot be downloaded here, so nothing is planned: the
HCL is parsed (python-hcl2) and its references checked, and the locals that
become the components' environments are evaluated by Terraform itself in a
provider-free copy (``terraform console``), then handed to the real
``Settings.from_env``.

Which component reads which setting, the rule checked below: all three
components (manifest function, blob function, builder job) build their
settings from their whole environment with ``Settings.from_env``, which
checks the variables together (a package source is required everywhere, the
build retention must outlive the waits), so every variable it reads is set
for all three, except

* :data:`COMPONENT_ONLY`: values naming one component's own collaborators
  (the job the manifest function starts, the account the blob function signs
  as), set for that component only; elsewhere the defaults stand unused;
* :data:`NOT_DEPLOYED`: variables with no meaning in this deployment, each
  with its reason, and the settings of other storage backends
  (:data:`OTHER_BACKEND_PREFIXES`).

A variable the settings start reading is in none of these, so it must be
wired for all three components before this test passes again.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import shutil
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from metastore.firestore_schema import INDEX_EXEMPTIONS, INDEXES, TTL_FIELDS
from registry.routes import Kind, parse
from registry.settings import CLOUD_RUN_JOB_PATTERN, ConfigError, Settings
from tests.infra.terraform_config import (
    EXAMPLE,
    REPO,
    STAND_INS,
    Config,
    dynamic,
    env_keys,
    env_sources,
    evaluate_locals,
    load,
    one,
    ref,
    terraform_binary,
)

COMPONENTS = ("manifest_env", "blob_env", "builder_env")
FUNCTIONS = ("manifest_env", "blob_env")
COMPONENT_ONLY: dict[str, tuple[str, ...]] = {
    "NIXERY_LAUNCHER": ("manifest_env",),  # only the manifest function starts builds
    "NIXERY_BUILDER_JOB": ("manifest_env",),
    "NIXERY_TRIGGER_AUDIENCE": ("manifest_env",),  # the trigger lives in the manifest function
    "NIXERY_TRIGGER_ALLOWED_SA": ("manifest_env",),
    "NIXERY_SIGNING_SERVICE_ACCOUNT": ("blob_env",),  # only the blob function signs URLs
    # Authentication guards the requests the functions serve; the builder
    # serves none (and has no htpasswd file mounted to check).
    "NIXERY_AUTH": FUNCTIONS,
    "NIXERY_AUTH_HTPASSWD": FUNCTIONS,
    "NIXERY_AUTH_REALM": FUNCTIONS,
}
NOT_DEPLOYED = {
    "PORT": "reserved on Cloud Run and Cloud Functions: the platform sets it",
    "STORAGE_PATH": "the filesystem backend's (embedded registry) only",
    "NIXERY_SQLITE_PATH": "the sqlite metadata backend's (embedded registry) only",
    "NIXERY_PKGS_PATH": "a local package set: the functions could not read a path on the "
    "builder; serverless uses NIXERY_CHANNEL or NIXERY_PKGS_REPO",
    "NIXERY_IAM_ENDPOINT": "a local stand-in's address for tests; unset is Google's",
    "NIXERY_CLOUD_RUN_ENDPOINT": "a local stand-in's address for tests; unset is Google's",
    "NIXERY_TRIGGER_CERTS_URL": "a local stand-in's address for tests; unset is Google's",
}
OTHER_BACKEND_PREFIXES = ("S3_", "NIXERY_S3_", "AWS_")
#: Set for git, not for the settings (a private NIXERY_PKGS_REPO's credential).
GIT_VARIABLES = {
    "GIT_SSH_COMMAND",
    "NIXERY_GIT_KNOWN_HOSTS",
    "GIT_CONFIG_COUNT",
    "GIT_CONFIG_KEY_0",
    "GIT_CONFIG_VALUE_0",
}


class RecordingEnv(Mapping[str, str]):
    """An environment that remembers every name looked up in it."""

    def __init__(self, values: Mapping[str, str]) -> None:
        self._values = dict(values)
        self.read: set[str] = set()

    def __getitem__(self, key: str) -> str:
        self.read.add(key)
        return self._values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)


def settings_variables() -> set[str]:
    """Every variable ``Settings.from_env`` reads, found by running it on
    recording environments (empty, and each backend chosen)."""
    read: set[str] = set()
    for values in (
        {},
        {"NIXERY_STORAGE_BACKEND": "gcs", "NIXERY_LAUNCHER": "cloudrun"},
        {"NIXERY_STORAGE_BACKEND": "s3", "NIXERY_METADATA_BACKEND": "firestore"},
    ):
        env = RecordingEnv(values)
        with contextlib.suppress(ConfigError):
            Settings.from_env(env)
        read |= env.read
    return read


def deployed(name: str) -> bool:
    return name not in NOT_DEPLOYED and not name.startswith(OTHER_BACKEND_PREFIXES)


@pytest.fixture(scope="module")
def config() -> Config:
    return load()


# ------------------------------------------------------------ environments


def test_the_recording_finds_the_settings_variables() -> None:
    read = settings_variables()
    # A sample the settings are known to read, including conditional ones.
    assert {"NIX_TIMEOUT", "GCS_BUCKET", "NIXERY_BUILDER_JOB", "GOOGLE_CLOUD_PROJECT"} <= read
    # The exceptions are real variables, not stale names.
    assert set(NOT_DEPLOYED) <= read
    assert set(COMPONENT_ONLY) <= read


def test_every_setting_is_set_for_each_component_that_reads_it(config: Config) -> None:
    keys = {component: env_keys(config, component) for component in COMPONENTS}
    missing = []
    for name in sorted(settings_variables()):
        if not deployed(name):
            continue
        readers = COMPONENT_ONLY.get(name, COMPONENTS)
        missing += [f"{name} for {reader}" for reader in readers if name not in keys[reader]]
    assert missing == [], "set in main.tf's locals: " + ", ".join(missing)


def test_component_only_settings_stay_with_their_component(config: Config) -> None:
    for name, owners in COMPONENT_ONLY.items():
        for component in COMPONENTS:
            present = name in env_keys(config, component)
            assert present == (component in owners), (name, component)


def test_every_variable_set_is_read_by_someone(config: Config) -> None:
    """No typo survives: each name set is a setting or git's."""
    read = settings_variables()
    for component in COMPONENTS:
        unknown = env_keys(config, component) - read - GIT_VARIABLES
        assert unknown == set(), (component, unknown)


def test_components_use_their_environment(config: Config) -> None:
    manifest = one(config.resource("google_cloudfunctions2_function", "manifest")["service_config"])
    blob = one(config.resource("google_cloudfunctions2_function", "blob")["service_config"])
    assert ref(manifest["environment_variables"]) == "local.manifest_env"
    assert ref(blob["environment_variables"]) == "local.blob_env"
    job = config.resource("google_cloud_run_v2_job", "builder")
    container = one(one(one(job["template"])["template"])["containers"])
    env = dynamic(container, "env")
    assert ref(env["for_each"]) == "local.builder_env"
    assert one(env["content"]) == {"name": "${env.key}", "value": "${env.value}"}
    # Git's credential goes where a private repository is read: the manifest
    # function (git ls-remote) and the builder (Nix fetches with git).
    assert "git_env" in env_sources(config, "manifest_env")
    assert "git_env" in env_sources(config, "builder_env")
    assert "git_env" not in env_sources(config, "blob_env")


def test_the_build_wait_is_a_little_under_the_manifest_timeout(config: Config) -> None:
    manifest = one(config.resource("google_cloudfunctions2_function", "manifest")["service_config"])
    assert ref(manifest["timeout_seconds"]) == "var.manifest_timeout_s"
    assert ref(config.locals["build_wait_s"]) == (
        "var.manifest_timeout_s - local.build_wait_margin_s"
    )
    margin = config.locals["build_wait_margin_s"]
    assert isinstance(margin, int) and 0 < margin <= 30
    assert ref(config.locals["shared_env"]["NIXERY_BUILD_WAIT_S"]) == (
        "tostring(local.build_wait_s)"
    )


needs_terraform = pytest.mark.skipif(
    terraform_binary() is None,
    reason="needs terraform (scripts/setup --test installs it where it can; see README)",
)

ENVS = {name: f"local.{name}" for name in COMPONENTS}
SCENARIOS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "private-repo-token": {
        "pkgs_repo": "https://git.example.com/org/pkgs.git",
        "pkgs_repo_credential_secret": "nixery-git",
    },
    "private-repo-ssh": {
        "pkgs_repo": "git@git.example.com:org/pkgs.git",
        "pkgs_repo_credential_secret": "nixery-git",
        "pkgs_repo_credential_type": "ssh",
        "pkgs_repo_ssh_known_hosts": "git.example.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExample",
    },
    "basic-auth": {
        "auth_htpasswd_secret": "nixery-htpasswd",
        "auth_realm": "private nixery",
        "deny_packages": ["steam*", "*-unwrapped"],
        "max_builds": 4,
    },
    "trigger-and-tuning": {
        "prebuild_trigger_service_accounts": ["scheduler@proj-x.iam.gserviceaccount.com"],
        "manifest_timeout_s": 900,
        "nix_timeout_s": 1200,
        "enable_unfree_packages": True,
        "popularity_url": "gs://bucket/popularity.json",
    },
}


@needs_terraform
@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_each_component_environment_is_accepted_by_the_settings(
    scenario: str, tmp_path: Path
) -> None:
    variables = SCENARIOS[scenario]
    envs = evaluate_locals(tmp_path / "tf", ENVS, variables)
    htpasswd = tmp_path / "htpasswd"  # stands in for the mounted secret
    htpasswd.write_text("puller:$5$saltsalt$" + "A" * 43 + "\n")
    settings = {}
    for component, env in envs.items():
        assert all(isinstance(v, str) and v for v in env.values()), env
        local = dict(env)
        if "NIXERY_AUTH_HTPASSWD" in local:
            assert local["NIXERY_AUTH_HTPASSWD"] == "/etc/secrets/nixery-auth/htpasswd"
            local["NIXERY_AUTH_HTPASSWD"] = str(htpasswd)
        settings[component] = Settings.from_env(local)  # raises ConfigError on any problem

    manifest, blob, builder = (envs[c] for c in COMPONENTS)
    timeout = variables.get("manifest_timeout_s", 600)
    assert manifest["NIXERY_BUILD_WAIT_S"] == str(timeout - 10)
    assert settings["manifest_env"].launcher == "cloudrun"
    assert CLOUD_RUN_JOB_PATTERN.fullmatch(manifest["NIXERY_BUILDER_JOB"])
    assert manifest["NIXERY_BUILDER_JOB"] == (
        "projects/proj-x/locations/us-central1/jobs/nixery-builder"
    )
    assert blob["NIXERY_SIGNING_SERVICE_ACCOUNT"] == STAND_INS["google_service_account.blob.email"]
    assert builder["NIX_TIMEOUT"] == str(variables.get("nix_timeout_s", 600))
    for component in COMPONENTS:
        s = settings[component]
        assert (s.storage_backend, s.metadata_backend) == ("gcs", "firestore")
        assert s.gcs_bucket == STAND_INS["google_storage_bucket.blobs.name"]
        assert s.gcp_project == "proj-x"
        # One package source, the same everywhere: the functions pin what the builder builds.
        assert s.source == settings["manifest_env"].source
    if "pkgs_repo" in variables:
        assert "NIXERY_CHANNEL" not in manifest
        assert settings["builder_env"].source.location == variables["pkgs_repo"]
    if "prebuild_trigger_service_accounts" in variables:
        assert manifest["NIXERY_TRIGGER_AUDIENCE"] == (
            "https://registry.example.com/_nixery/prebuild"
        )
        assert settings["manifest_env"].trigger_allowed_sa == (
            "scheduler@proj-x.iam.gserviceaccount.com",
        )
    else:
        assert "NIXERY_TRIGGER_AUDIENCE" not in manifest
    if "auth_htpasswd_secret" in variables:
        assert settings["manifest_env"].auth.mode == settings["blob_env"].auth.mode == "basic"
        assert settings["blob_env"].auth.realm == "private nixery"
        assert "NIXERY_AUTH" not in builder
        assert builder["NIXERY_DENY_PACKAGES"] == "steam*,*-unwrapped"
        assert settings["builder_env"].limits.deny_packages == ("steam*", "*-unwrapped")
        assert settings["manifest_env"].limits.max_builds == 4
    else:
        assert all("NIXERY_AUTH" not in env for env in envs.values())


@needs_terraform
@pytest.mark.skipif(shutil.which("git") is None, reason="needs git: apt-get install git")
def test_the_https_token_reaches_git_from_the_mounted_file_only(tmp_path: Path) -> None:
    envs = evaluate_locals(
        tmp_path / "tf", {"env": "local.builder_env"}, SCENARIOS["private-repo-token"]
    )
    env = envs["env"]
    token = "s3cret-token-value"
    secret = tmp_path / "credential"
    secret.write_text(token + "\n")
    helper_env = {k: v for k, v in env.items() if k.startswith("GIT_")}
    helper_env["GIT_CONFIG_VALUE_0"] = helper_env["GIT_CONFIG_VALUE_0"].replace(
        "/etc/secrets/nixery-git/credential", str(secret)
    )
    assert all(token not in value for value in env.values())
    result = subprocess.run(
        ["git", "credential", "fill"],
        input="protocol=https\nhost=git.example.com\npath=org/pkgs.git\n\n",
        capture_output=True,
        text=True,
        timeout=30,
        env={
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(tmp_path),
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_TERMINAL_PROMPT": "0",
            **helper_env,
        },
    )
    assert result.returncode == 0, result.stderr
    answer = dict(line.split("=", 1) for line in result.stdout.splitlines() if "=" in line)
    assert answer["username"] == "x-access-token"
    assert answer["password"] == token


@needs_terraform
@pytest.mark.skipif(shutil.which("ssh") is None, reason="needs ssh: apt-get install openssh-client")
def test_the_ssh_command_checks_host_keys_from_the_variable(tmp_path: Path) -> None:
    envs = evaluate_locals(
        tmp_path / "tf", {"env": "local.manifest_env"}, SCENARIOS["private-repo-ssh"]
    )
    env = envs["env"]
    command = shlex.split(env["GIT_SSH_COMMAND"])
    shown = subprocess.run(
        [*command, "-G", "git.example.com"],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "HOME": str(tmp_path)},
    )
    assert shown.returncode == 0, shown.stderr
    lines = [line.split(" ", 1) for line in shown.stdout.splitlines() if " " in line]
    options = dict(lines)
    assert options["stricthostkeychecking"] == "true"
    assert options["identitiesonly"] == "yes"  # only the mounted key is offered
    identities = [value for key, value in lines if key == "identityfile"]
    assert "/etc/secrets/nixery-git/credential" in identities
    assert options["knownhostscommand"] == "/usr/bin/printenv NIXERY_GIT_KNOWN_HOSTS"
    printed = subprocess.run(
        shlex.split(options["knownhostscommand"]),
        capture_output=True,
        text=True,
        timeout=10,
        env={"NIXERY_GIT_KNOWN_HOSTS": env["NIXERY_GIT_KNOWN_HOSTS"]},
    )
    assert printed.stdout.strip() == SCENARIOS["private-repo-ssh"]["pkgs_repo_ssh_known_hosts"]


# ------------------------------------------------------------ IAM

IAM_MEMBER_TYPES = (
    "google_project_iam_member",
    "google_storage_bucket_iam_member",
    "google_service_account_iam_member",
    "google_cloud_run_v2_job_iam_member",
    "google_cloud_run_v2_service_iam_member",
    "google_secret_manager_secret_iam_member",
    "google_artifact_registry_repository_iam_member",
)
#: Predefined roles this module grants, with the permission the code needs
#: from each (all are Google's documented predefined roles).
KNOWN_ROLES = {
    "roles/datastore.user": "datastore.entities.{get,create,update}",
    "roles/run.jobsExecutorWithOverrides": "run.jobs.runWithOverrides",
    "roles/run.invoker": "run.routes.invoke",
    "roles/storage.objectViewer": "storage.objects.get",
    "roles/storage.objectUser": "storage.objects.{create,delete,get}",
    "roles/storage.objectAdmin": "storage.objects.* (function builds' staging)",
    "roles/iam.serviceAccountTokenCreator": "iam.serviceAccounts.signBlob",
    "roles/secretmanager.secretAccessor": "secretmanager.versions.access",
    "roles/logging.logWriter": "logging.logEntries.create",
    "roles/artifactregistry.writer": "artifactregistry.repositories.uploadArtifacts",
}
#: Every grant, as (account, role, resource it is bound on): least privilege,
#: and nothing else.
EXPECTED_GRANTS = {
    ("manifest", "roles/datastore.user", "project (this database)"),
    ("manifest", "roles/run.jobsExecutorWithOverrides", "google_cloud_run_v2_job.builder"),
    ("manifest", "roles/secretmanager.secretAccessor", "var.pkgs_repo_credential_secret"),
    ("manifest", "roles/secretmanager.secretAccessor", "var.auth_htpasswd_secret"),
    ("blob", "roles/secretmanager.secretAccessor", "var.auth_htpasswd_secret"),
    ("blob", "roles/storage.objectViewer", "google_storage_bucket.blobs"),
    ("blob", "roles/iam.serviceAccountTokenCreator", "google_service_account.blob"),
    ("builder", "roles/storage.objectUser", "google_storage_bucket.blobs"),
    ("builder", "roles/datastore.user", "project (this database)"),
    ("builder", "roles/secretmanager.secretAccessor", "var.pkgs_repo_credential_secret"),
    ("function_build", "roles/logging.logWriter", "project"),
    ("function_build", "roles/storage.objectAdmin", "project (source buckets)"),
    (
        "function_build",
        "roles/artifactregistry.writer",
        "google_artifact_registry_repository.images",
    ),
    ("allUsers", "roles/run.invoker", "the functions' Cloud Run services"),
}


def _resource_of(type_: str, body: dict[str, Any]) -> str:
    if type_ == "google_project_iam_member":
        condition = body.get("condition")
        if not condition:
            return "project"
        expression = one(condition)["expression"]
        if expression == "${local.firestore_condition}":
            return "project (this database)"
        return "project (source buckets)"
    if type_ == "google_cloud_run_v2_service_iam_member":
        return "the functions' Cloud Run services"
    for key in ("bucket", "service_account_id", "name", "secret_id", "repository"):
        if key in body:
            target = ref(body[key])
            return target.rsplit(".", 1)[0] if target.startswith("google_") else target
    raise AssertionError(body)


def grants(config: Config) -> set[tuple[str, str, str]]:
    found = set()
    for type_ in IAM_MEMBER_TYPES:
        for name, body in config.of_type(type_).items():
            roles = [body["role"]]
            if "for_each" in body and "role" in body and body["role"] == "${each.key}":
                roles = list(body["for_each"])
            member = body["member"]
            account = (
                member
                if member in ("allUsers", "allAuthenticatedUsers")
                else re.fullmatch(r"google_service_account\.(\w+)\.member", ref(member))
            )
            assert account, f"{type_}.{name}: member {member!r} is not a service account's"
            who = account if isinstance(account, str) else account.group(1)
            for role in roles:
                if type_ == "google_project_iam_member" and "for_each" in body:
                    condition = body["for_each"][role]
                    where = "project" if condition is None else "project (source buckets)"
                else:
                    where = _resource_of(type_, body)
                found.add((who, role, where))
    return found


def test_grants_are_exactly_the_least_privilege_table(config: Config) -> None:
    assert grants(config) == EXPECTED_GRANTS


def test_every_role_and_service_account_referenced_exists(config: Config) -> None:
    accounts = set(config.of_type("google_service_account"))
    # prebuild_scheduler holds no role: it only signs Cloud Scheduler's tokens.
    assert accounts == {"manifest", "blob", "builder", "function_build", "prebuild_scheduler"}
    for who, role, _ in grants(config):
        assert role in KNOWN_ROLES, role
        assert who in accounts or who == "allUsers"
    text = "\n".join(config.texts.values())
    for account in re.findall(r"google_service_account\.(\w+)\.", text):
        assert account in accounts, account
    # Each component runs as its own account.
    fn = config.of_type("google_cloudfunctions2_function")
    assert ref(one(fn["manifest"]["service_config"])["service_account_email"]) == (
        "google_service_account.manifest.email"
    )
    assert ref(one(fn["blob"]["service_config"])["service_account_email"]) == (
        "google_service_account.blob.email"
    )
    for function in fn.values():
        assert ref(one(function["build_config"])["service_account"]) == (
            "google_service_account.function_build.id"
        )
    job = one(one(config.resource("google_cloud_run_v2_job", "builder")["template"])["template"])
    assert ref(job["service_account"]) == "google_service_account.builder.email"


def test_the_blob_function_may_sign_only_as_itself(config: Config) -> None:
    signing = [
        body
        for body in config.of_type("google_service_account_iam_member").values()
        if body["role"] == "roles/iam.serviceAccountTokenCreator"
    ]
    assert len(signing) == 1
    assert ref(signing[0]["service_account_id"]) == "google_service_account.blob.name"
    assert ref(signing[0]["member"]) == "google_service_account.blob.member"
    assert all(
        body["role"] != "roles/iam.serviceAccountTokenCreator"
        for body in config.of_type("google_project_iam_member").values()
    )


def test_every_binding_says_why(config: Config) -> None:
    text = config.texts["iam.tf"]
    blocks = re.finditer(r'((?:^#.*\n)*)^resource "(google_\w+_iam_member)" "(\w+)"', text, re.M)
    found = 0
    for block in blocks:
        found += 1
        assert "# Why:" in block.group(1), f"{block.group(2)}.{block.group(3)} has no '# Why:'"
    assert found == len([g for g in IAM_MEMBER_TYPES for _ in config.of_type(g)]) - 1  # the
    # public invoker binding is in functions.tf, explained there:
    assert "A public registry" in config.texts["functions.tf"]


def test_firestore_conditions_name_the_database(config: Config) -> None:
    assert config.locals["firestore_condition"] == (
        'resource.name == "projects/${var.project_id}/databases/${var.firestore_database}"'
    )


# ------------------------------------------------------------ storage


def test_no_public_member_on_any_bucket(config: Config) -> None:
    public = {"allUsers", "allAuthenticatedUsers"}
    for type_, name, body in config.all_resources():
        if type_.startswith("google_storage_bucket_iam"):
            members = body.get("members", [body.get("member")])
            assert not public & set(members), f"{type_}.{name} is public"
        assert not type_.startswith(("google_storage_bucket_acl", "google_storage_default_object"))
    # The only public binding in the module: the functions' invoker.
    for type_, name, body in config.all_resources():
        if body.get("member") in public:
            assert (type_, body["role"]) == (
                "google_cloud_run_v2_service_iam_member",
                "roles/run.invoker",
            ), f"{type_}.{name}"


def test_buckets_are_private_uniform_unversioned(config: Config) -> None:
    for name, bucket in config.of_type("google_storage_bucket").items():
        assert bucket["uniform_bucket_level_access"] is True, name
        assert bucket["public_access_prevention"] == "enforced", name
        assert one(bucket["versioning"])["enabled"] is False, name
    blobs = config.resource("google_storage_bucket", "blobs")
    rule = one(blobs["lifecycle_rule"])
    assert one(rule["condition"]) == {"age": 1, "matches_prefix": ["tmp/"]}
    assert one(rule["action"]) == {"type": "Delete"}


def test_blob_store_prefixes_match_the_code() -> None:
    from blobstore.gcs import BLOB_PREFIX, TMP_PREFIX

    assert TMP_PREFIX == "tmp/"  # the lifecycle rule's prefix
    assert BLOB_PREFIX == "blobs/sha256/"  # never matched by it
    assert not BLOB_PREFIX.startswith(TMP_PREFIX)


def test_function_sources_are_named_by_content(config: Config) -> None:
    obj = config.resource("google_storage_bucket_object", "function_source")
    assert obj["name"] == "functions/${each.key}-${local.function_source_hash[each.key]}.zip"
    assert "filesha256" in config.locals["function_source_hash"]
    archive = config.data["archive_file"]["function_source"]
    assert archive["type"] == "zip"
    assert archive["source_dir"] == "${local.functions_source_dir}/${each.key}"
    assert config.locals["functions_source_dir"].endswith(
        '"${path.module}/../../build/functions")}'
    )
    for name in ("manifest", "blob"):
        build = one(config.resource("google_cloudfunctions2_function", name)["build_config"])
        source = one(one(build["source"])["storage_source"])
        assert source["object"] == (
            f'${{google_storage_bucket_object.function_source["{name}"].name}}'
        )
        assert build["entry_point"] == name


# ------------------------------------------------------------ Firestore


def test_firestore_provisions_exactly_what_the_code_declares(config: Config) -> None:
    assert config.locals["firestore_ttl_fields"] == dict(TTL_FIELDS)
    assert config.locals["firestore_index_exemptions"] == {
        collection: list(fields) for collection, fields in INDEX_EXEMPTIONS.items()
    }
    assert INDEXES == (), "composite indexes appeared in the code: add google_firestore_index"
    assert config.of_type("google_firestore_index") == {}
    ttl = config.resource("google_firestore_field", "ttl")
    assert ttl["for_each"] == "${local.firestore_ttl_fields}"
    assert ttl["collection"] == "${var.firestore_prefix}${each.key}"
    assert ttl["ttl_config"] == [{}]
    exempt = config.resource("google_firestore_field", "index_exemption")
    assert exempt["for_each"] == "${local.firestore_exempt_fields}"
    assert exempt["index_config"] == [{}]  # empty: no single-field index at all
    database = config.resource("google_firestore_database", "metadata")
    assert database["type"] == "FIRESTORE_NATIVE"


# ------------------------------------------------------------ front

#: How deep a name the URL map routes to the blob function (see loadbalancer.tf).
MAX_ROUTED_NAME_DEPTH = 4
DIGEST = "sha256:" + "ab" * 32


def template_regex(template: str) -> re.Pattern[str]:
    """A URL map path template as a regular expression, after checking the
    documented limits: at most 5 operators, and `**` only as the last one."""
    operators = re.findall(r"\{[^}]*\}|\*\*|\*", template)
    assert len(operators) <= 5, f"{template}: more than 5 operators"
    for index, operator in enumerate(operators):
        if "**" in operator:
            assert index == len(operators) - 1, f"{template}: ** must be the last operator"
    pattern = ""
    for piece in re.split(r"(\{[^}]*\}|\*\*|\*)", template):
        if piece in ("*",) or (piece.startswith("{") and "**" not in piece):
            pattern += "[^/]+"
        elif piece == "**" or piece.startswith("{"):
            pattern += ".*"
        else:
            pattern += re.escape(piece)
    return re.compile(pattern)


def route(config: Config, path: str) -> str:
    """The function the URL map sends ``path`` to."""
    url_map = config.resource("google_compute_url_map", "front")
    matcher = one(url_map["path_matcher"])
    assert one(url_map["host_rule"]) == {"hosts": ["${var.domain}"], "path_matcher": "registry"}
    for rule in sorted(matcher["route_rules"], key=lambda r: r["priority"]):
        templates_ref = dynamic(rule, "match_rules")
        assert ref(templates_ref["for_each"]) == "local.blob_path_templates"
        assert one(templates_ref["content"]) == {"path_template_match": "${match_rules.value}"}
        if any(template_regex(t).fullmatch(path) for t in config.locals["blob_path_templates"]):
            return backend_function(config, rule["service"])
    return backend_function(config, matcher["default_service"])


def backend_function(config: Config, service: str) -> str:
    key = re.fullmatch(r'google_compute_backend_service\.function\["(\w+)"\]\.id', ref(service))
    assert key, service
    backends = config.resource("google_compute_backend_service", "function")
    assert ref(backends["for_each"]) == "google_compute_region_network_endpoint_group.function"
    negs = config.resource("google_compute_region_network_endpoint_group", "function")
    function = ref(negs["for_each"][key.group(1)])
    assert one(negs["cloud_run"]) == {"service": "${each.value}"}
    found = re.fullmatch(r"google_cloudfunctions2_function\.(\w+)\.name", function)
    assert found, function
    return found.group(1)


PATHS = [
    "/v2/",
    "/",
    "/builds",
    "/_nixery/prebuild",
    "/v2/hello/manifests/latest",
    f"/v2/shell/git/htop/manifests/{DIGEST}",
    "/v2/a/b/c/d/e/f/manifests/latest",
    "/v2/shell/tags/list",
    "/v2/hello/blobs/uploads/",
    *(f"/v2/{'/'.join(['p'] * depth)}/blobs/{DIGEST}" for depth in range(1, 5)),
    f"/v2/arm64/shell/blobs/{DIGEST}",
]


@pytest.mark.parametrize("path", PATHS)
def test_the_url_map_sends_each_route_to_its_function(config: Config, path: str) -> None:
    expected = "blob" if parse(path).kind is Kind.BLOB else "manifest"
    assert route(config, path) == expected


def test_blob_routes_cover_names_up_to_the_documented_depth(config: Config) -> None:
    depths = [
        depth
        for depth in range(1, 12)
        if route(config, f"/v2/{'/'.join(['n'] * depth)}/blobs/{DIGEST}") == "blob"
    ]
    assert depths == list(range(1, MAX_ROUTED_NAME_DEPTH + 1))
    readme = (REPO / "README.md").read_text()
    assert f"up to {MAX_ROUTED_NAME_DEPTH} components" in readme


def test_functions_admit_only_the_load_balancer(config: Config) -> None:
    for name, function in config.of_type("google_cloudfunctions2_function").items():
        service = one(function["service_config"])
        assert service["ingress_settings"] == "ALLOW_INTERNAL_AND_GCLB", name
        assert service["min_instance_count"] == 0, name  # scale to zero
    invoker = config.resource("google_cloud_run_v2_service_iam_member", "public_invoker")
    assert set(invoker["for_each"]) == {"manifest", "blob"}
    assert invoker["role"] == "roles/run.invoker"
    assert ref(invoker["name"]) == "each.value.name"


def test_https_with_a_managed_certificate_and_redirect(config: Config) -> None:
    cert = config.resource("google_compute_managed_ssl_certificate", "front")
    assert one(cert["managed"]) == {"domains": ["${var.domain}"]}
    proxy = config.resource("google_compute_target_https_proxy", "front")
    assert proxy["ssl_certificates"] == ["${google_compute_managed_ssl_certificate.front.id}"]
    https = config.resource("google_compute_global_forwarding_rule", "https")
    assert (https["port_range"], https["load_balancing_scheme"]) == ("443", "EXTERNAL_MANAGED")
    redirect = one(config.resource("google_compute_url_map", "redirect")["default_url_redirect"])
    assert redirect["https_redirect"] is True
    http = config.resource("google_compute_global_forwarding_rule", "http")
    assert http["port_range"] == "80"
    assert http["ip_address"] == https["ip_address"]
    for backend in config.of_type("google_compute_backend_service").values():
        assert backend["load_balancing_scheme"] == "EXTERNAL_MANAGED"  # path templates need it


# ------------------------------------------------------------ module conventions


def test_variables_are_typed_described_and_named_by_convention(config: Config) -> None:
    for name, variable in config.variables.items():
        assert re.fullmatch(r"[a-z][a-z0-9_]*", name), name
        assert variable.get("type"), f"{name} has no type"
        assert variable.get("description"), f"{name} has no description"
        if variable["type"] == "${bool}":
            assert name.startswith(("create_", "enable_")), name
        if re.search(r"timeout|ttl|retention|lease|_start", name):
            assert name.endswith("_s"), f"{name}: durations end in _s"
        if "memory" in name:
            assert name.endswith("_mb"), f"{name}: memory ends in _mb"
    for name, output in config.outputs.items():
        assert output.get("description"), f"output {name} has no description"
    for wanted in ("registry_url", "blob_bucket", "builder_job", "manifest_function"):
        assert wanted in config.outputs


def test_versions_are_pinned(config: Config) -> None:
    (terraform,) = config.terraform
    assert re.fullmatch(r">= 1\.\d+\.\d+, < 2\.0\.0", terraform["required_version"])
    providers = one(terraform["required_providers"])
    assert providers["google"]["source"] == "hashicorp/google"
    assert re.fullmatch(r">= \d+\.\d+\.\d+, < \d+\.0\.0", providers["google"]["version"])


def test_the_minimal_example_passes_the_three_required_variables(config: Config) -> None:
    required = {name for name, v in config.variables.items() if "default" not in v}
    assert required == {"project_id", "domain", "builder_image"}
    example = load(EXAMPLE)
    module = example.modules["nixery"]
    assert module["source"] == "../.."
    passed = {k for k in module if k != "source" and not k.startswith("__")}
    assert passed == required


def test_the_readme_documents_every_input_and_output(config: Config) -> None:
    readme = (REPO / "README.md").read_text()
    section = readme.split("## Deploying to Google Cloud", 1)[1].split("\n## ", 1)[0]
    for name in config.variables:
        assert f"| `{name}` |" in section, f"input {name} is not in the README's table"
    for name in config.outputs:
        assert f"| `{name}` |" in section, f"output {name} is not in the README's table"
