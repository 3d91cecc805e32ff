# The smallest deployment: a project, a hostname, and the builder image
# pushed by builder_job/cloudbuild.yaml. Everything else has a default.
#
#   make stage                       # from the repository root
#   terraform init && terraform apply

terraform {
  required_version = ">= 1.5.0, < 2.0.0"
  required_providers {
    google = {
      source  = "hashicorp/google"
      version = ">= 6.14.0, < 7.0.0"
    }
  }
}

variable "project_id" {
  type        = string
  description = "Google Cloud project to deploy into."
}

variable "domain" {
  type        = string
  description = "Hostname of the registry."
}

variable "builder_image" {
  type        = string
  description = "Builder image reference (REGION-docker.pkg.dev/PROJECT/nixery/builder@sha256:...)."
}

provider "google" {
  project = var.project_id
}

module "nixery" {
  source = "../.."

  project_id    = var.project_id
  domain        = var.domain
  builder_image = var.builder_image
}

output "registry_url" {
  description = "docker pull <this host>/shell/git"
  value       = module.nixery.registry_url
}

output "ip_address" {
  description = "Point the domain's A record here."
  value       = module.nixery.ip_address
}

output "artifact_registry_repository" {
  description = "Push the builder image to <this>/builder (builder_job/cloudbuild.yaml)."
  value       = module.nixery.artifact_registry_repository
}
