# Images: the builder (pushed by builder_job/cloudbuild.yaml) and the
# functions' images (written by Cloud Build when a function deploys).
resource "google_artifact_registry_repository" "images" {
  # checkov:skip=CKV_GCP_84:Images hold only this project's open-source code and public Nix tooling; Google-managed encryption is enough and a customer-managed key would add a KMS key to pay for and rotate.
  project       = var.project_id
  location      = var.region
  repository_id = var.name
  format        = "DOCKER"
  description   = "nixery-serverless: the builder job image and the functions' images"
  labels        = local.labels

  # Every deploy adds images: keep the recent ones, drop the rest after 30 days.
  cleanup_policies {
    id     = "keep-recent"
    action = "KEEP"
    most_recent_versions {
      keep_count = 5
    }
  }
  cleanup_policies {
    id     = "delete-old"
    action = "DELETE"
    condition {
      older_than = "2592000s"
    }
  }

  depends_on = [google_project_service.apis]
}
