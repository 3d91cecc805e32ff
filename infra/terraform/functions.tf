# The two Cloud Functions (2nd gen), each deployed from its staged source zip
# (storage.tf) and reachable only through the load balancer.

resource "google_cloudfunctions2_function" "manifest" {
  project     = var.project_id
  name        = "${var.name}-manifest"
  location    = var.region
  description = "nixery-serverless: /v2/ and /v2/<name>/manifests/<ref> (and everything else but blobs)"
  labels      = local.labels

  build_config {
    runtime           = var.python_runtime
    entry_point       = "manifest"
    service_account   = google_service_account.function_build.id
    docker_repository = google_artifact_registry_repository.images.id
    source {
      storage_source {
        bucket = google_storage_bucket.sources.name
        object = google_storage_bucket_object.function_source["manifest"].name
      }
    }
  }

  service_config {
    service_account_email            = google_service_account.manifest.email
    timeout_seconds                  = var.manifest_timeout_s
    available_memory                 = "${var.manifest_memory_mb}Mi"
    available_cpu                    = "1"
    max_instance_request_concurrency = var.function_concurrency
    min_instance_count               = 0 # scale to zero when nobody pulls
    max_instance_count               = var.manifest_max_instances
    ingress_settings                 = "ALLOW_INTERNAL_AND_GCLB" # only through the load balancer
    all_traffic_on_latest_revision   = true
    environment_variables            = local.manifest_env

    dynamic "secret_volumes" {
      for_each = local.auth_enabled ? [1] : []
      content {
        mount_path = local.auth_dir
        project_id = var.project_id
        secret     = var.auth_htpasswd_secret
        versions {
          version = var.auth_htpasswd_version
          path    = "htpasswd"
        }
      }
    }

    dynamic "secret_volumes" {
      for_each = local.git_credential_enabled ? [1] : []
      content {
        mount_path = local.git_credential_dir
        project_id = var.project_id
        secret     = var.pkgs_repo_credential_secret
        versions {
          version = var.pkgs_repo_credential_version
          path    = "credential"
        }
      }
    }
  }

  depends_on = [
    google_project_service.apis,
    google_project_iam_member.function_build,
    google_artifact_registry_repository_iam_member.function_build,
    google_secret_manager_secret_iam_member.manifest_git_credential,
    google_secret_manager_secret_iam_member.manifest_auth_htpasswd,
  ]
}

resource "google_cloudfunctions2_function" "blob" {
  project     = var.project_id
  name        = "${var.name}-blob"
  location    = var.region
  description = "nixery-serverless: /v2/<name>/blobs/<digest> (307 to a V4 signed Cloud Storage URL)"
  labels      = local.labels

  build_config {
    runtime           = var.python_runtime
    entry_point       = "blob"
    service_account   = google_service_account.function_build.id
    docker_repository = google_artifact_registry_repository.images.id
    source {
      storage_source {
        bucket = google_storage_bucket.sources.name
        object = google_storage_bucket_object.function_source["blob"].name
      }
    }
  }

  service_config {
    service_account_email            = google_service_account.blob.email
    timeout_seconds                  = var.blob_timeout_s
    available_memory                 = "${var.blob_memory_mb}Mi"
    available_cpu                    = "1"
    max_instance_request_concurrency = var.function_concurrency
    min_instance_count               = 0
    max_instance_count               = var.blob_max_instances
    ingress_settings                 = "ALLOW_INTERNAL_AND_GCLB"
    all_traffic_on_latest_revision   = true
    environment_variables            = local.blob_env

    dynamic "secret_volumes" {
      for_each = local.auth_enabled ? [1] : []
      content {
        mount_path = local.auth_dir
        project_id = var.project_id
        secret     = var.auth_htpasswd_secret
        versions {
          version = var.auth_htpasswd_version
          path    = "htpasswd"
        }
      }
    }
  }

  depends_on = [
    google_project_service.apis,
    google_project_iam_member.function_build,
    google_artifact_registry_repository_iam_member.function_build,
    google_secret_manager_secret_iam_member.blob_auth_htpasswd,
  ]
}

# A public registry: anyone may pull, as from Docker Hub or nixery.dev. The
# load balancer forwards requests without credentials, so the functions'
# Cloud Run services must admit unauthenticated calls; ingress
# ALLOW_INTERNAL_AND_GCLB keeps their own run.app URLs closed, so the load
# balancer is the only way in. Nothing here can write: every write path
# answers 405, and the prebuild trigger checks its own OIDC tokens. With
# auth_htpasswd_secret set, the functions themselves demand basic
# authentication (registry.auth) on every request.
resource "google_cloud_run_v2_service_iam_member" "public_invoker" {
  for_each = {
    manifest = google_cloudfunctions2_function.manifest
    blob     = google_cloudfunctions2_function.blob
  }

  project  = var.project_id
  location = var.region
  name     = each.value.name # a 2nd gen function's Cloud Run service has its name
  role     = "roles/run.invoker"
  member   = "allUsers"
}
