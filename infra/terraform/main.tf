# nixery-serverless on Google Cloud: two Cloud Functions (manifest, blob)
# behind one HTTPS hostname, a Cloud Run job holding Nix (the builder), blobs
# in Cloud Storage, metadata in Firestore. Files by concern:
#
#   apis.tf               required APIs
#   storage.tf            blob bucket, function source bucket and uploads
#   firestore.tf          database, TTL policies, index exemptions
#   artifact_registry.tf  repository of the builder and function images
#   builder_job.tf        the Cloud Run job
#   functions.tf          the two functions and their public invoker binding
#   iam.tf                one service account per component, each binding with its reason
#   loadbalancer.tf       global external Application Load Balancer, URL map, certificate
#
# The environment below is the only configuration the code reads
# (registry.settings.Settings.from_env); tests/infra/test_terraform.py checks
# that every variable the settings read is set for each component.

locals {
  labels = merge({ app = "nixery", component = "registry" }, var.labels)

  blob_bucket_name   = coalesce(var.blob_bucket_name, "${var.project_id}-${var.name}-blobs")
  source_bucket_name = "${var.project_id}-${var.name}-sources"
  firestore_location = coalesce(var.firestore_location, var.region)
  builder_job_name   = "${var.name}-builder"
  # The full name NIXERY_BUILDER_JOB wants, known before the job exists.
  builder_job_full_name = "projects/${var.project_id}/locations/${var.region}/jobs/${local.builder_job_name}"
  registry_url          = "https://${var.domain}"

  # The prebuild trigger (scheduler.tf): its URL is also the OIDC audience.
  # The schedule's account email is derived from its id, known before the
  # account exists, so the function's environment does not wait for it.
  prebuild_trigger_url     = "${local.registry_url}/_nixery/prebuild"
  prebuild_scheduler_email = "${var.name}-prebuild@${var.project_id}.iam.gserviceaccount.com"
  trigger_service_accounts = concat(
    var.prebuild_trigger_service_accounts,
    var.enable_prebuild_schedule ? [local.prebuild_scheduler_email] : [],
  )

  # A pull waits for its build a little less than the manifest function may
  # run, so the answer (a manifest, or TOOMANYREQUESTS with Retry-After) is
  # always sent before the platform cuts the request.
  build_wait_margin_s = 10
  build_wait_s        = var.manifest_timeout_s - local.build_wait_margin_s

  git_credential_enabled = var.pkgs_repo_credential_secret != ""
  git_credential_dir     = "/etc/secrets/nixery-git"
  git_credential_file    = "${local.git_credential_dir}/credential"

  # Every component builds its settings from its whole environment with
  # Settings.from_env, which checks the variables together (a package source
  # is required everywhere; the build retention must outlive the waits), so
  # all three get this one map. Empty values are dropped below: the code
  # reads an empty variable as unset.
  shared_env = {
    NIXERY_CHANNEL            = var.pkgs_repo == "" ? var.nixpkgs_channel : ""
    NIXERY_PKGS_REPO          = var.pkgs_repo
    NIXERY_CHANNEL_URL        = var.channel_url
    NIXERY_SOURCE_TTL_S       = tostring(var.source_ttl_s)
    NIXERY_STORAGE_BACKEND    = "gcs"
    GCS_BUCKET                = google_storage_bucket.blobs.name
    NIXERY_SIGNED_URL_TTL_S   = tostring(var.signed_url_ttl_s)
    NIXERY_METADATA_BACKEND   = "firestore"
    GOOGLE_CLOUD_PROJECT      = var.project_id
    NIXERY_FIRESTORE_DATABASE = var.firestore_database
    NIXERY_FIRESTORE_PREFIX   = var.firestore_prefix
    NIXERY_BUILD_RETENTION_S  = tostring(var.build_retention_s)
    NIX_TIMEOUT               = tostring(var.nix_timeout_s)
    NIX_POPULARITY_URL        = var.popularity_url
    NIXERY_LAYER_BUDGET       = tostring(var.layer_budget)
    NIXERY_MAX_PACKAGES       = tostring(var.max_packages)
    NIXERY_MAX_NAME_LENGTH    = tostring(var.max_name_length)
    NIXERY_ALLOW_UNFREE       = tostring(var.enable_unfree_packages)
    NIXERY_BUILD_WAIT_S       = tostring(local.build_wait_s)
    NIXERY_LEASE_S            = tostring(var.build_lease_s)
    NIXERY_BUILD_START_S      = tostring(var.build_start_s)
    NIXERY_FAILURE_TTL_S      = tostring(var.failure_ttl_s)
    NIXERY_WORK_DIR           = "/tmp/nixery-builds"
    # registry.limits: what anyone may make this registry build.
    NIXERY_ALLOW_PACKAGES          = join(",", var.allow_packages)
    NIXERY_DENY_PACKAGES           = join(",", var.deny_packages)
    NIXERY_MAX_BUILDS              = tostring(var.max_builds)
    NIXERY_MAX_BUILDS_PER_INSTANCE = tostring(var.max_builds_per_instance)
    NIXERY_BUILD_TIMEOUT_S         = tostring(var.build_timeout_s)
    NIXERY_MAX_CLOSURE_MB          = tostring(var.max_closure_mb)
  }

  # Settings that name a component's own collaborators: only the manifest
  # function starts builds and answers the prebuild trigger, only the blob
  # function signs URLs. Elsewhere the defaults stand (and are never used).
  manifest_only_env = {
    NIXERY_LAUNCHER           = "cloudrun"
    NIXERY_BUILDER_JOB        = local.builder_job_full_name
    NIXERY_TRIGGER_AUDIENCE   = length(local.trigger_service_accounts) > 0 ? local.prebuild_trigger_url : ""
    NIXERY_TRIGGER_ALLOWED_SA = join(",", local.trigger_service_accounts)
  }
  blob_only_env = {
    NIXERY_SIGNING_SERVICE_ACCOUNT = google_service_account.blob.email
  }

  # Basic authentication guards both functions (registry.auth): the htpasswd
  # file comes from Secret Manager, mounted into each; the builder serves no
  # requests and never reads it.
  auth_enabled = var.auth_htpasswd_secret != ""
  auth_dir     = "/etc/secrets/nixery-auth"
  functions_env = {
    NIXERY_AUTH          = local.auth_enabled ? "basic" : ""
    NIXERY_AUTH_HTPASSWD = local.auth_enabled ? "${local.auth_dir}/htpasswd" : ""
    NIXERY_AUTH_REALM    = local.auth_enabled ? var.auth_realm : ""
  }

  # git's credentials for a private NIXERY_PKGS_REPO, read from the mounted
  # Secret Manager file when git runs: the secret is never an environment
  # value, never logged, never in a build record. The manifest function pins
  # refs (git ls-remote), the builder fetches (Nix runs git).
  git_ssh_env = {
    GIT_SSH_COMMAND        = "ssh -o IdentityFile=${local.git_credential_file} -o IdentitiesOnly=yes -o IdentityAgent=none -o BatchMode=yes -o StrictHostKeyChecking=yes -o UserKnownHostsFile=/dev/null -o 'KnownHostsCommand=/usr/bin/printenv NIXERY_GIT_KNOWN_HOSTS'"
    NIXERY_GIT_KNOWN_HOSTS = var.pkgs_repo_ssh_known_hosts
  }
  git_token_env = {
    GIT_CONFIG_COUNT   = "1"
    GIT_CONFIG_KEY_0   = "credential.helper"
    GIT_CONFIG_VALUE_0 = "!f() { test \"$1\" = get || exit 0; echo username=${var.pkgs_repo_token_username}; printf password=; cat ${local.git_credential_file}; }; f"
  }
  git_env = !local.git_credential_enabled ? {} : (
    var.pkgs_repo_credential_type == "ssh" ? local.git_ssh_env : local.git_token_env
  )

  manifest_env = { for k, v in merge(local.shared_env, local.functions_env, local.manifest_only_env, local.git_env) : k => v if v != "" }
  blob_env     = { for k, v in merge(local.shared_env, local.functions_env, local.blob_only_env) : k => v if v != "" }
  builder_env  = { for k, v in merge(local.shared_env, local.git_env) : k => v if v != "" }
}
