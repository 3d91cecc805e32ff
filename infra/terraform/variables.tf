# ---------------------------------------------------------------- required

variable "project_id" {
  type        = string
  description = "Google Cloud project to deploy into."
}

variable "domain" {
  type        = string
  description = "Hostname of the registry (for example registry.example.com). Its DNS A record must point at the `ip_address` output for the Google-managed certificate to be issued."

  validation {
    condition     = can(regex("^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\\.)+[a-z]{2,63}$", var.domain))
    error_message = "domain must be a lowercase DNS name such as registry.example.com."
  }
}

variable "builder_image" {
  type        = string
  description = "Image of the builder job (builder_job/Dockerfile), pushed to the `artifact_registry_repository` output; a digest reference (...@sha256:...) makes every new image a new job revision."
}

# ---------------------------------------------------------------- placement

variable "region" {
  type        = string
  default     = "us-central1"
  description = "Region of the functions, the builder job, the buckets and the Artifact Registry repository."
}

variable "name" {
  type        = string
  default     = "nixery"
  description = "Prefix of every resource name (service accounts, functions, job, buckets, load balancer)."

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,18}[a-z0-9]$", var.name))
    error_message = "name must be 3-20 lowercase letters, digits or hyphens, starting with a letter (service account IDs are at most 30 characters)."
  }
}

variable "labels" {
  type        = map(string)
  default     = {}
  description = "Labels added to every resource that takes them."
}

variable "enable_apis" {
  type        = bool
  default     = true
  description = "Enable the required APIs in the project (never disabled on destroy)."
}

variable "enable_force_destroy" {
  type        = bool
  default     = false
  description = "Let `terraform destroy` delete the buckets with their objects (the image cache)."
}

# ---------------------------------------------------------------- package source

variable "nixpkgs_channel" {
  type        = string
  default     = "nixos-unstable"
  description = "NIXERY_CHANNEL: nixpkgs channel name or commit, used unless `pkgs_repo` is set."

  validation {
    condition     = var.nixpkgs_channel != ""
    error_message = "nixpkgs_channel must not be empty (it is the package source when pkgs_repo is not set)."
  }
}

variable "pkgs_repo" {
  type        = string
  default     = ""
  description = "NIXERY_PKGS_REPO: git URL of a package set; replaces the channel. The image tag is the git ref."
}

variable "pkgs_repo_credential_secret" {
  type        = string
  default     = ""
  description = "Secret Manager secret (ID in this project) holding the credential of a private `pkgs_repo`: an SSH private key or an HTTPS token. Add its value out of band (gcloud secrets versions add), so it never lands in Terraform state. Empty: public repository."
}

variable "pkgs_repo_credential_version" {
  type        = string
  default     = "latest"
  description = "Version of `pkgs_repo_credential_secret` to mount."
}

variable "pkgs_repo_credential_type" {
  type        = string
  default     = "token"
  description = "`token` (HTTPS, sent by a git credential helper reading the mounted file) or `ssh` (a private key file given to ssh)."

  validation {
    condition     = contains(["token", "ssh"], var.pkgs_repo_credential_type)
    error_message = "pkgs_repo_credential_type must be token or ssh."
  }
}

variable "pkgs_repo_token_username" {
  type        = string
  default     = "x-access-token"
  description = "User name git sends with an HTTPS token (GitHub: x-access-token, GitLab: oauth2)."
}

variable "pkgs_repo_ssh_known_hosts" {
  type        = string
  default     = ""
  description = "known_hosts lines of the git server, required with an ssh credential (host keys are checked strictly)."
}

variable "channel_url" {
  type        = string
  default     = "https://channels.nixos.org"
  description = "NIXERY_CHANNEL_URL: where channel names resolve to commits."
}

variable "popularity_url" {
  type        = string
  default     = ""
  description = "NIX_POPULARITY_URL: popularity data for the layering (http(s) or gs:// URL); empty: size-first layering."
}

# ---------------------------------------------------------------- images and builds

variable "enable_unfree_packages" {
  type        = bool
  default     = false
  description = "NIXERY_ALLOW_UNFREE: build packages with unfree licenses."
}

variable "layer_budget" {
  type        = number
  default     = 94
  description = "NIXERY_LAYER_BUDGET: store-path layers per image (at most 120)."

  validation {
    condition     = var.layer_budget >= 1 && var.layer_budget <= 120
    error_message = "layer_budget must be 1-120."
  }
}

variable "max_packages" {
  type        = number
  default     = 50
  description = "NIXERY_MAX_PACKAGES: packages per image."
}

variable "max_name_length" {
  type        = number
  default     = 255
  description = "NIXERY_MAX_NAME_LENGTH: characters per image name."
}

variable "nix_timeout_s" {
  type        = number
  default     = 600
  description = "NIX_TIMEOUT: seconds for all Nix work of one build (evaluation, downloads, builds)."

  validation {
    condition     = var.nix_timeout_s > 0
    error_message = "nix_timeout_s must be positive."
  }
}

variable "build_lease_s" {
  type        = number
  default     = 30
  description = "NIXERY_LEASE_S: build lease; the builder renews it every third of it, an expired one is taken over."
}

variable "build_start_s" {
  type        = number
  default     = 120
  description = "NIXERY_BUILD_START_S: how long a started job execution may take to report before its build is taken over."
}

variable "failure_ttl_s" {
  type        = number
  default     = 60
  description = "NIXERY_FAILURE_TTL_S: how long a failed build is answered from its record."
}

variable "source_ttl_s" {
  type        = number
  default     = 10
  description = "NIXERY_SOURCE_TTL_S: how long a resolved source revision (channel commit, git ref) is reused."
}

variable "build_retention_s" {
  type        = number
  default     = 2592000
  description = "NIXERY_BUILD_RETENTION_S: Firestore TTL of build records and leases (default 30 days)."
}

variable "signed_url_ttl_s" {
  type        = number
  default     = 600
  description = "NIXERY_SIGNED_URL_TTL_S: lifetime of the signed URLs blob requests redirect to (at most 604800)."

  validation {
    condition     = var.signed_url_ttl_s > 0 && var.signed_url_ttl_s <= 604800
    error_message = "signed_url_ttl_s must be 1-604800 (a V4 signed URL lives at most 7 days)."
  }
}

variable "prebuild_trigger_service_accounts" {
  type        = list(string)
  default     = []
  description = "Service accounts (emails) allowed to POST /_nixery/prebuild with a Google OIDC token whose audience is https://<domain>/_nixery/prebuild (for example Cloud Scheduler's). Empty: the trigger is off."
}

variable "allow_packages" {
  type        = list(string)
  default     = []
  description = "NIXERY_ALLOW_PACKAGES: if set, only packages matching one of these shell-style patterns (python3packages.*) may be built."
}

variable "deny_packages" {
  type        = list(string)
  default     = []
  description = "NIXERY_DENY_PACKAGES: packages matching one of these shell-style patterns are never built."
}

variable "max_builds" {
  type        = number
  default     = 32
  description = "NIXERY_MAX_BUILDS: builds running at once in the whole registry; more are refused with TOOMANYREQUESTS (a cost ceiling)."
}

variable "max_builds_per_instance" {
  type        = number
  default     = 8
  description = "NIXERY_MAX_BUILDS_PER_INSTANCE: builds one manifest function instance may have started and running."
}

variable "build_timeout_s" {
  type        = number
  default     = 1500
  description = "NIXERY_BUILD_TIMEOUT_S: one build from the builder's start (Nix, packing, uploads); below builder_timeout_s so the builder records the failure itself."
}

variable "max_closure_mb" {
  type        = number
  default     = 3072
  description = "NIXERY_MAX_CLOSURE_MB: largest closure built; at most half of builder_memory_mb, since the builder's disk is its memory."
}

variable "auth_htpasswd_secret" {
  type        = string
  default     = ""
  description = "Secret Manager secret (ID in this project) holding an htpasswd file (bcrypt or SHA-crypt): pulls then need basic authentication (NIXERY_AUTH=basic). Empty: a public registry."
}

variable "auth_htpasswd_version" {
  type        = string
  default     = "latest"
  description = "Version of `auth_htpasswd_secret` to mount."
}

variable "auth_realm" {
  type        = string
  default     = "nixery"
  description = "NIXERY_AUTH_REALM: realm of the basic authentication challenge."
}

# ---------------------------------------------------------------- builder job

variable "builder_cpu" {
  type        = number
  default     = 2
  description = "vCPUs of a builder task (Cloud Run: 1, 2, 4, 6 or 8)."

  validation {
    condition     = contains([1, 2, 4, 6, 8], var.builder_cpu)
    error_message = "builder_cpu must be 1, 2, 4, 6 or 8."
  }
}

variable "builder_memory_mb" {
  type        = number
  default     = 8192
  description = "Memory of a builder task in MiB. Cloud Run's disk is memory: the Nix store and the packed layers of a build count against it."

  validation {
    condition     = var.builder_memory_mb >= 512 && var.builder_memory_mb <= 32768
    error_message = "builder_memory_mb must be 512-32768."
  }
}

variable "builder_timeout_s" {
  type        = number
  default     = 1800
  description = "Task timeout of the builder job in seconds; must exceed nix_timeout_s (packing and uploading come after Nix)."
}

variable "builder_max_retries" {
  type        = number
  default     = 0
  description = "Retries of a failed builder task. A failed build is recorded as failed and a crashed one is taken over by the next pull once its lease expires, so 0 avoids duplicate builds."

  validation {
    condition     = var.builder_max_retries >= 0 && var.builder_max_retries <= 10
    error_message = "builder_max_retries must be 0-10."
  }
}

# ---------------------------------------------------------------- functions

variable "functions_source_dir" {
  type        = string
  default     = ""
  description = "Folder holding the staged function sources (<dir>/manifest, <dir>/blob) made by scripts/stage-functions; empty: build/functions of this repository."
}

variable "python_runtime" {
  type        = string
  default     = "python311"
  description = "Cloud Functions runtime of both functions (the project targets Python 3.11)."

  validation {
    condition     = can(regex("^python3(11|12|13)$", var.python_runtime))
    error_message = "python_runtime must be python311, python312 or python313."
  }
}

variable "manifest_timeout_s" {
  type        = number
  default     = 600
  description = "Request timeout of the manifest function; a pull waits for its build up to 10 s less (NIXERY_BUILD_WAIT_S)."

  validation {
    condition     = var.manifest_timeout_s >= 60 && var.manifest_timeout_s <= 3600
    error_message = "manifest_timeout_s must be 60-3600."
  }
}

variable "manifest_memory_mb" {
  type        = number
  default     = 512
  description = "Memory of a manifest function instance in MiB."
}

variable "manifest_max_instances" {
  type        = number
  default     = 20
  description = "Most manifest function instances (a cost ceiling; pulls waiting for builds hold requests open)."
}

variable "blob_timeout_s" {
  type        = number
  default     = 60
  description = "Request timeout of the blob function (it answers redirects; bytes go from Cloud Storage)."

  validation {
    condition     = var.blob_timeout_s >= 10 && var.blob_timeout_s <= 3600
    error_message = "blob_timeout_s must be 10-3600."
  }
}

variable "blob_memory_mb" {
  type        = number
  default     = 512
  description = "Memory of a blob function instance in MiB."
}

variable "blob_max_instances" {
  type        = number
  default     = 20
  description = "Most blob function instances."
}

variable "function_concurrency" {
  type        = number
  default     = 80
  description = "Concurrent requests per function instance (both functions are threaded and mostly wait on the network)."

  validation {
    condition     = var.function_concurrency >= 1 && var.function_concurrency <= 1000
    error_message = "function_concurrency must be 1-1000."
  }
}

# ---------------------------------------------------------------- storage and metadata

variable "blob_bucket_name" {
  type        = string
  default     = ""
  description = "Name of the blob bucket; empty: <project_id>-<name>-blobs."
}

variable "create_firestore_database" {
  type        = bool
  default     = true
  description = "Create the Firestore database; false to use an existing native-mode one named `firestore_database`."
}

variable "firestore_database" {
  type        = string
  default     = "(default)"
  description = "NIXERY_FIRESTORE_DATABASE: Firestore database ID ((default) gets Firestore's free tier)."

  validation {
    condition     = can(regex("^(\\(default\\)|[a-z][a-z0-9-]{2,61}[a-z0-9])$", var.firestore_database))
    error_message = "firestore_database must be (default) or 4-63 lowercase letters, digits and hyphens."
  }
}

variable "firestore_location" {
  type        = string
  default     = ""
  description = "Location of a created Firestore database; empty: `region`."
}

variable "firestore_prefix" {
  type        = string
  default     = "nixery-"
  description = "NIXERY_FIRESTORE_PREFIX: prefix of every collection name."

  validation {
    condition     = can(regex("^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$", var.firestore_prefix))
    error_message = "firestore_prefix must be letters, digits, '_', '.' or '-', not starting with '_', '.' or '-'."
  }
}

# ---------------------------------------------------------------- front

variable "enable_http_redirect" {
  type        = bool
  default     = true
  description = "Answer http:// on port 80 with a redirect to https:// (a second forwarding rule, within the same hourly price)."
}

# -- Prebuild schedule (scheduler.tf) ------------------------------------------

variable "enable_prebuild_schedule" {
  type        = bool
  default     = false
  description = "Create a Cloud Scheduler job that calls the prebuild trigger with prebuild_images on prebuild_schedule."
}

variable "prebuild_images" {
  type        = list(string)
  default     = []
  description = "Image names (tags allowed) the schedule prebuilds, e.g. [\"shell\", \"shell/git\"]."
}

variable "prebuild_schedule" {
  type        = string
  default     = "0 3 * * *"
  description = "Cron schedule of the prebuild (Cloud Scheduler syntax)."
}

variable "prebuild_time_zone" {
  type        = string
  default     = "Etc/UTC"
  description = "Time zone of prebuild_schedule (tz database name)."
}

variable "prebuild_tasks" {
  type        = number
  default     = 10
  description = "Tasks of the builder job execution that splits the prebuild list."

  validation {
    condition     = var.prebuild_tasks >= 1 && var.prebuild_tasks <= 10000
    error_message = "prebuild_tasks must be between 1 and 10000."
  }
}

variable "prebuild_attempt_deadline_s" {
  type        = number
  default     = 120
  description = "Seconds Cloud Scheduler waits for the trigger's answer (it starts the execution and answers; it does not wait for builds)."
}
