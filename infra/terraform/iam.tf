# One service account per component, each granted only what its code calls.
# Project-wide roles are narrowed by IAM conditions where the service
# supports them; everything else is bound on the one resource it concerns.

resource "google_service_account" "manifest" {
  project      = var.project_id
  account_id   = "${var.name}-manifest"
  display_name = "nixery manifest function"
  description  = "Reads and claims builds in Firestore, starts builder job executions."
}

resource "google_service_account" "blob" {
  project      = var.project_id
  account_id   = "${var.name}-blob"
  display_name = "nixery blob function"
  description  = "Reads blob metadata and signs blob URLs as itself."
}

resource "google_service_account" "builder" {
  project      = var.project_id
  account_id   = "${var.name}-builder"
  display_name = "nixery builder job"
  description  = "Writes blobs to Cloud Storage and build results to Firestore."
}

resource "google_service_account" "function_build" {
  project      = var.project_id
  account_id   = "${var.name}-fn-build"
  display_name = "nixery function builds"
  description  = "Cloud Build identity that turns the function sources into images."
}

locals {
  # Firestore IAM conditions name the database: the grants reach this
  # registry's database only, not others in the project.
  firestore_condition = "resource.name == \"projects/${var.project_id}/databases/${var.firestore_database}\""
}

# ---------------------------------------------------------------- manifest function

# Why: a pull reads image and manifest records, and a cold pull claims the
# build (one batch creating the build record and moving the lease) or marks
# a build failed when the job cannot start. Reads and writes: datastore.user.
resource "google_project_iam_member" "manifest_firestore" {
  project = var.project_id
  role    = "roles/datastore.user"
  member  = google_service_account.manifest.member

  condition {
    title      = "nixery-firestore-database"
    expression = local.firestore_condition
  }
}

# Why: builds start with run_job and per-execution overrides (the request in
# NIXERY_BUILD_REQUEST, task count, timeout), which needs
# run.jobs.runWithOverrides, on this job only.
resource "google_cloud_run_v2_job_iam_member" "manifest_runs_builder" {
  project  = var.project_id
  location = google_cloud_run_v2_job.builder.location
  name     = google_cloud_run_v2_job.builder.name
  role     = "roles/run.jobsExecutorWithOverrides"
  member   = google_service_account.manifest.member
}

# Why: the manifest function pins a private repository's refs to commits
# (git ls-remote) with the mounted credential.
resource "google_secret_manager_secret_iam_member" "manifest_git_credential" {
  count = local.git_credential_enabled ? 1 : 0

  project   = var.project_id
  secret_id = var.pkgs_repo_credential_secret
  role      = "roles/secretmanager.secretAccessor"
  member    = google_service_account.manifest.member
}

# No bucket role: the manifest function never touches blobs (registry.app
# builds it no blob store).

# ---------------------------------------------------------------- blob function

# Why: a blob request reads the object's metadata (its size, for HEAD and to
# answer BLOB_UNKNOWN), and the signed URL it redirects to is authorised as
# the signer, this account: read-only objects, on the blob bucket only.
resource "google_storage_bucket_iam_member" "blob_reads_objects" {
  bucket = google_storage_bucket.blobs.name
  role   = "roles/storage.objectViewer"
  member = google_service_account.blob.member
}

# Why: without a key file, V4 URLs are signed through IAM signBlob as the
# function's own account (blobstore.signing.IamSigner): token creator on
# ITSELF, never on another account.
resource "google_service_account_iam_member" "blob_signs_as_itself" {
  service_account_id = google_service_account.blob.name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = google_service_account.blob.member
}

# ---------------------------------------------------------------- builder job

# Why: the builder creates blobs create-if-absent (ifGenerationMatch=0; the
# loser of a race must get 412, and attempting a write over an existing name
# needs delete permission), reads metadata to skip stored digests, copies
# tmp/ uploads to their name and deletes the tmp/ object: objectUser, on the
# blob bucket only.
resource "google_storage_bucket_iam_member" "builder_writes_objects" {
  bucket = google_storage_bucket.blobs.name
  role   = "roles/storage.objectUser"
  member = google_service_account.builder.member
}

# Why: the builder heartbeats its lease, records layers, manifests and the
# image when done, or the failure: reads and writes on this database.
resource "google_project_iam_member" "builder_firestore" {
  project = var.project_id
  role    = "roles/datastore.user"
  member  = google_service_account.builder.member

  condition {
    title      = "nixery-firestore-database"
    expression = local.firestore_condition
  }
}

# Why: Nix fetches a private package set with git, using the mounted credential.
resource "google_secret_manager_secret_iam_member" "builder_git_credential" {
  count = local.git_credential_enabled ? 1 : 0

  project   = var.project_id
  secret_id = var.pkgs_repo_credential_secret
  role      = "roles/secretmanager.secretAccessor"
  member    = google_service_account.builder.member
}

# ---------------------------------------------------------------- both functions

# Why: with basic authentication on, the manifest function reads the
# mounted htpasswd file (registry.auth) to check every pull.
resource "google_secret_manager_secret_iam_member" "manifest_auth_htpasswd" {
  count = local.auth_enabled ? 1 : 0

  project   = var.project_id
  secret_id = var.auth_htpasswd_secret
  role      = "roles/secretmanager.secretAccessor"
  member    = google_service_account.manifest.member
}

# Why: the blob function checks the same credentials on every blob request.
resource "google_secret_manager_secret_iam_member" "blob_auth_htpasswd" {
  count = local.auth_enabled ? 1 : 0

  project   = var.project_id
  secret_id = var.auth_htpasswd_secret
  role      = "roles/secretmanager.secretAccessor"
  member    = google_service_account.blob.member
}

# ---------------------------------------------------------------- function builds

# Why: Cloud Build (as this account) writes the build log, reads the source
# zip and the copy Cloud Functions stages in its gcf-v2-* buckets, and pushes
# the function image; Google's documented build roles, each narrowed to
# where it is used.
resource "google_project_iam_member" "function_build" {
  for_each = {
    # Build logs (Cloud Logging has no finer resource to bind on).
    "roles/logging.logWriter" = null
    # Sources: this module's bucket and Cloud Functions' own staging buckets.
    "roles/storage.objectAdmin" = "resource.name.startsWith(\"projects/_/buckets/${local.source_bucket_name}\") || resource.name.startsWith(\"projects/_/buckets/gcf-v2-sources-\") || resource.name.startsWith(\"projects/_/buckets/gcf-v2-uploads-\")"
  }

  project = var.project_id
  role    = each.key
  member  = google_service_account.function_build.member

  dynamic "condition" {
    for_each = each.value == null ? [] : [each.value]
    content {
      title      = "nixery-function-sources"
      expression = condition.value
    }
  }
}

# Why: the built function images go to this module's repository (build_config.docker_repository).
resource "google_artifact_registry_repository_iam_member" "function_build" {
  project    = var.project_id
  location   = google_artifact_registry_repository.images.location
  repository = google_artifact_registry_repository.images.name
  role       = "roles/artifactregistry.writer"
  member     = google_service_account.function_build.member
}
