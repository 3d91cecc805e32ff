output "registry_url" {
  description = "Base URL of the registry: docker pull <domain>/shell/git."
  value       = local.registry_url
}

output "ip_address" {
  description = "IPv4 address of the load balancer: point the domain's DNS A record here (the certificate is issued once it resolves)."
  value       = google_compute_global_address.front.address
}

output "blob_bucket" {
  description = "Cloud Storage bucket holding the blobs (blobs/sha256/<hex>)."
  value       = google_storage_bucket.blobs.name
}

output "source_bucket" {
  description = "Cloud Storage bucket holding the functions' source zips."
  value       = google_storage_bucket.sources.name
}

output "firestore_database" {
  description = "Firestore database holding the metadata (collections prefixed by firestore_prefix)."
  value       = local.firestore_database_name
}

output "artifact_registry_repository" {
  description = "Docker repository for the builder image: push builder_job's image to <this>/builder."
  value       = "${google_artifact_registry_repository.images.location}-docker.pkg.dev/${var.project_id}/${google_artifact_registry_repository.images.repository_id}"
}

output "builder_job" {
  description = "Full name of the builder Cloud Run job (NIXERY_BUILDER_JOB)."
  value       = google_cloud_run_v2_job.builder.id
}

output "manifest_function" {
  description = "Name and Cloud Run URL of the manifest function (its URL only answers through the load balancer)."
  value = {
    name = google_cloudfunctions2_function.manifest.name
    url  = google_cloudfunctions2_function.manifest.service_config[0].uri
  }
}

output "blob_function" {
  description = "Name and Cloud Run URL of the blob function (its URL only answers through the load balancer)."
  value = {
    name = google_cloudfunctions2_function.blob.name
    url  = google_cloudfunctions2_function.blob.service_config[0].uri
  }
}

output "service_accounts" {
  description = "Service account emails per component."
  value = {
    manifest       = google_service_account.manifest.email
    blob           = google_service_account.blob.email
    builder        = google_service_account.builder.email
    function_build = google_service_account.function_build.email
  }
}

output "deployment_env" {
  description = "The manifest function's environment: `nixery prebuild --deployment FILE` with these lines (KEY=VALUE) starts builds on this deployment from a workstation."
  value       = local.manifest_env
}
