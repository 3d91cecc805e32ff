# Metadata (metastore.firestore). What the code declares, provisioned
# exactly (tests/infra/test_terraform.py compares these with the Python
# constants):
#   TTL_FIELDS        collection -> timestamp field of its TTL policy
#   INDEXES           composite indexes the queries need: none
#   INDEX_EXEMPTIONS  fields never queried, exempted from single-field indexing
locals {
  firestore_ttl_fields = {
    builds = "expire_at"
    leases = "expire_at"
  }
  firestore_index_exemptions = {
    manifests = ["data"]
    builds    = ["spec", "log_tail", "error", "timings"]
  }
  firestore_exempt_fields = {
    for pair in flatten([
      for collection, fields in local.firestore_index_exemptions : [
        for field in fields : { collection = collection, field = field }
      ]
    ]) : "${pair.collection}.${pair.field}" => pair
  }
  firestore_database_name = var.create_firestore_database ? google_firestore_database.metadata[0].name : var.firestore_database
}

resource "google_firestore_database" "metadata" {
  count = var.create_firestore_database ? 1 : 0

  project                     = var.project_id
  name                        = var.firestore_database
  location_id                 = local.firestore_location
  type                        = "FIRESTORE_NATIVE"
  concurrency_mode            = "OPTIMISTIC" # claims are preconditioned batches, never locks
  app_engine_integration_mode = "DISABLED"
  # The cache can be rebuilt from Nix; deleting the database with the stack is fine.
  delete_protection_state = "DELETE_PROTECTION_DISABLED"
  deletion_policy         = "DELETE"

  depends_on = [google_project_service.apis]
}

# TTL policies: Firestore deletes a build record or lease some time (up to
# about a day) after its expire_at; correctness never depends on it.
resource "google_firestore_field" "ttl" {
  for_each = local.firestore_ttl_fields

  project    = var.project_id
  database   = local.firestore_database_name
  collection = "${var.firestore_prefix}${each.key}"
  field      = each.value

  ttl_config {}
}

# Single-field index exemptions: an empty index_config removes every
# automatic index of the field.
resource "google_firestore_field" "index_exemption" {
  for_each = local.firestore_exempt_fields

  project    = var.project_id
  database   = local.firestore_database_name
  collection = "${var.firestore_prefix}${each.value.collection}"
  field      = each.value.field

  index_config {}
}
