terraform {
  # 1.5: check blocks and lifecycle preconditions as used here; 2.x may break the language.
  required_version = ">= 1.5.0, < 2.0.0"

  required_providers {
    # 6.x: cloud_run_v2_job deletion_protection, cloudfunctions2 build service
    # accounts, url map path templates. 7.x is untested with this module.
    google = {
      source  = "hashicorp/google"
      version = ">= 6.14.0, < 7.0.0"
    }
    archive = {
      source  = "hashicorp/archive"
      version = ">= 2.4.0, < 3.0.0"
    }
  }
}
