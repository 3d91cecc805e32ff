# The builder: one Cloud Run job whose container runs `python -m builder_job`.
# Each build is one execution started by the manifest function with
# per-execution overrides (NIXERY_BUILD_REQUEST, task count, timeout); the
# rest of its configuration is the environment below.
resource "google_cloud_run_v2_job" "builder" {
  project             = var.project_id
  name                = local.builder_job_name
  location            = var.region
  labels              = local.labels
  deletion_protection = false # recreated from this configuration at will

  template {
    task_count = 1
    labels     = local.labels

    template {
      service_account       = google_service_account.builder.email
      timeout               = "${var.builder_timeout_s}s"
      max_retries           = var.builder_max_retries
      execution_environment = "EXECUTION_ENVIRONMENT_GEN2" # full Linux compatibility for Nix

      containers {
        image = var.builder_image

        resources {
          limits = {
            cpu    = tostring(var.builder_cpu)
            memory = "${var.builder_memory_mb}Mi"
          }
        }

        dynamic "env" {
          for_each = local.builder_env
          content {
            name  = env.key
            value = env.value
          }
        }

        dynamic "volume_mounts" {
          for_each = local.git_credential_enabled ? [1] : []
          content {
            name       = "git-credential"
            mount_path = local.git_credential_dir
          }
        }
      }

      dynamic "volumes" {
        for_each = local.git_credential_enabled ? [1] : []
        content {
          name = "git-credential"
          secret {
            secret       = var.pkgs_repo_credential_secret
            default_mode = 292 # 0444, owned by root: readable by the image's non-root user, and ssh accepts a key it does not own
            items {
              version = var.pkgs_repo_credential_version
              path    = "credential"
              mode    = 292
            }
          }
        }
      }
    }
  }

  lifecycle {
    precondition {
      condition     = var.builder_timeout_s > var.nix_timeout_s
      error_message = "builder_timeout_s must exceed nix_timeout_s: layers are packed and uploaded after Nix is done."
    }
    precondition {
      condition     = var.builder_timeout_s > var.build_timeout_s
      error_message = "builder_timeout_s must exceed build_timeout_s, so the builder records a timed-out build itself."
    }
    precondition {
      condition     = var.max_closure_mb * 2 <= var.builder_memory_mb
      error_message = "max_closure_mb may be at most half of builder_memory_mb: the closure and its packed layers live in the task's memory."
    }
    precondition {
      condition     = var.build_retention_s >= max(var.build_lease_s, var.build_start_s, var.failure_ttl_s, local.build_wait_s)
      error_message = "build_retention_s must outlive the lease, the start time, the failure TTL and the build wait."
    }
    precondition {
      condition     = !local.git_credential_enabled || var.pkgs_repo != ""
      error_message = "pkgs_repo_credential_secret is for a private pkgs_repo: set pkgs_repo too."
    }
    precondition {
      condition     = !(local.git_credential_enabled && var.pkgs_repo_credential_type == "ssh") || var.pkgs_repo_ssh_known_hosts != ""
      error_message = "An ssh credential needs pkgs_repo_ssh_known_hosts (the git server's host keys)."
    }
  }

  depends_on = [
    google_project_service.apis,
    google_secret_manager_secret_iam_member.builder_git_credential,
  ]
}
