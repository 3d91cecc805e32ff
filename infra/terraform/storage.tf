# Blobs: objects blobs/sha256/<hex> (immutable, content-addressed, written
# create-if-absent) and tmp/ (large layers on their way to their name).
resource "google_storage_bucket" "blobs" {
  # checkov:skip=CKV_GCP_62:Access logs would log every layer download of every pull; Cloud Audit Logs (Data Access) can be enabled for the bucket instead when needed.
  # checkov:skip=CKV_GCP_78:Versioning off on purpose: objects are immutable and named by their digest, overwrites never happen (ifGenerationMatch=0), and versions would keep every deleted tmp/ object billed.
  project                     = var.project_id
  name                        = local.blob_bucket_name
  location                    = var.region # same region as the functions and the job: no inter-region transfer
  storage_class               = "STANDARD"
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced" # clients read through V4 signed URLs only
  force_destroy               = var.enable_force_destroy
  labels                      = local.labels

  versioning {
    enabled = false
  }

  # A builder that dies between uploading a large layer to tmp/ and copying
  # it to its name leaves the temporary object behind (blobstore.gcs).
  lifecycle_rule {
    condition {
      age            = 1
      matches_prefix = ["tmp/"]
    }
    action {
      type = "Delete"
    }
  }

  depends_on = [google_project_service.apis]
}

# Function sources: one zip per function and content hash.
resource "google_storage_bucket" "sources" {
  # checkov:skip=CKV_GCP_62:Only Terraform and Cloud Build read this bucket; their own audit logs record it.
  # checkov:skip=CKV_GCP_78:Every source zip is a new object named by its content hash; nothing is overwritten, so versions would hold nothing.
  project                     = var.project_id
  name                        = local.source_bucket_name
  location                    = var.region
  storage_class               = "STANDARD"
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = true # holds only copies of build/functions
  labels                      = local.labels

  versioning {
    enabled = false
  }

  depends_on = [google_project_service.apis]
}

locals {
  functions_source_dir = var.functions_source_dir != "" ? var.functions_source_dir : abspath("${path.module}/../../build/functions")
  function_names       = toset(["manifest", "blob"])
  # A hash of the staged files' names and contents (independent of zip
  # metadata): a change of code or of a pinned version is a new object name,
  # and a new object redeploys the function.
  function_source_hash = {
    for name in local.function_names : name => sha256(join("\n", [
      for file in sort(fileset("${local.functions_source_dir}/${name}", "**")) :
      "${file} ${filesha256("${local.functions_source_dir}/${name}/${file}")}"
    ]))
  }
}

data "archive_file" "function_source" {
  for_each = local.function_names

  type        = "zip"
  source_dir  = "${local.functions_source_dir}/${each.key}"
  output_path = "${path.root}/.terraform/nixery-functions/${each.key}.zip"
}

resource "google_storage_bucket_object" "function_source" {
  for_each = local.function_names

  bucket = google_storage_bucket.sources.name
  name   = "functions/${each.key}-${local.function_source_hash[each.key]}.zip"
  source = data.archive_file.function_source[each.key].output_path

  lifecycle {
    precondition {
      condition     = fileexists("${local.functions_source_dir}/${each.key}/main.py") && fileexists("${local.functions_source_dir}/${each.key}/requirements.txt")
      error_message = "No staged source in ${local.functions_source_dir}/${each.key}: run `make stage` (scripts/stage-functions) first."
    }
  }
}
