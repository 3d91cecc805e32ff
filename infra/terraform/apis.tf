# The APIs the registry uses. Never disabled on destroy: other things in the
# project may depend on them.
locals {
  required_apis = toset(concat(
    [
      "artifactregistry.googleapis.com", # builder image, function images
      "cloudbuild.googleapis.com",       # builds of the function sources
      "cloudfunctions.googleapis.com",   # the two functions
      "compute.googleapis.com",          # the load balancer
      "firestore.googleapis.com",        # metadata
      "iam.googleapis.com",              # service accounts
      "iamcredentials.googleapis.com",   # signBlob: signed blob URLs without a key file
      "run.googleapis.com",              # the builder job, the functions' services
      "storage.googleapis.com",          # blobs, function sources
    ],
    local.git_credential_enabled || local.auth_enabled ? ["secretmanager.googleapis.com"] : [],
  ))
}

resource "google_project_service" "apis" {
  for_each = var.enable_apis ? local.required_apis : toset([])

  project            = var.project_id
  service            = each.value
  disable_on_destroy = false
}
