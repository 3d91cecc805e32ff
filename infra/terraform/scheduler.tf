# Optional: Cloud Scheduler warms the cache by calling the prebuild trigger
# (POST /_nixery/prebuild on the registry's hostname) on a schedule. The
# trigger starts one builder job execution whose tasks split the list; images
# already built are skipped. Cloud Scheduler sends a Google-signed OIDC
# identity token of its own service account, which the manifest function
# verifies (audience = the trigger's URL, email = an allowed account; see
# local.trigger_service_accounts in main.tf).

resource "google_project_service" "cloudscheduler" {
  count = var.enable_prebuild_schedule && var.enable_apis ? 1 : 0

  project            = var.project_id
  service            = "cloudscheduler.googleapis.com"
  disable_on_destroy = false
}

# The identity Cloud Scheduler signs its tokens as. It needs no role: the
# functions are invoked through the public load balancer, and the trigger
# itself checks the token's email against NIXERY_TRIGGER_ALLOWED_SA.
resource "google_service_account" "prebuild_scheduler" {
  count = var.enable_prebuild_schedule ? 1 : 0

  project      = var.project_id
  account_id   = "${var.name}-prebuild"
  display_name = "Nixery prebuild schedule (Cloud Scheduler OIDC identity)"
}

resource "google_cloud_scheduler_job" "prebuild" {
  count = var.enable_prebuild_schedule ? 1 : 0

  project          = var.project_id
  region           = var.region
  name             = "${var.name}-prebuild"
  description      = "Prebuild popular images so their first pull is a cache hit"
  schedule         = var.prebuild_schedule
  time_zone        = var.prebuild_time_zone
  attempt_deadline = "${var.prebuild_attempt_deadline_s}s"

  retry_config {
    retry_count          = 3
    min_backoff_duration = "30s"
    max_backoff_duration = "300s"
  }

  http_target {
    http_method = "POST"
    uri         = local.prebuild_trigger_url
    headers     = { "Content-Type" = "application/json" }
    body        = base64encode(jsonencode({ images = var.prebuild_images, tasks = var.prebuild_tasks }))

    oidc_token {
      service_account_email = google_service_account.prebuild_scheduler[0].email
      audience              = local.prebuild_trigger_url
    }
  }

  depends_on = [google_project_service.cloudscheduler]
}
