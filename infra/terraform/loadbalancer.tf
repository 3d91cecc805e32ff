# One HTTPS hostname for Docker: a global external Application Load Balancer
# (EXTERNAL_MANAGED) with a serverless NEG per function.
#
# Routing. Blob requests go to the blob function, everything else (/v2/,
# manifests, tags, uploads' 405, the pages, the prebuild trigger) to the
# manifest function. Path templates allow at most 5 operators, and a
# multi-segment wildcard (`**`, `{name=**}`) only as the LAST operator, so
# `/v2/{name=**}/blobs/{digest}` is refused by the API (an operator follows
# the `**`), and regular expressions are not offered to this load balancer
# type. The blob route is therefore one template per name depth, one `*` per
# path component: names of 1 to 4 components (4 + the digest = 5 operators).
# See README "Deploying to Google Cloud" for what deeper names need.
locals {
  blob_path_templates = [
    "/v2/*/blobs/*",
    "/v2/*/*/blobs/*",
    "/v2/*/*/*/blobs/*",
    "/v2/*/*/*/*/blobs/*",
  ]
}

resource "google_compute_global_address" "front" {
  project    = var.project_id
  name       = "${var.name}-front"
  ip_version = "IPV4"

  depends_on = [google_project_service.apis]
}

resource "google_compute_region_network_endpoint_group" "function" {
  for_each = {
    manifest = google_cloudfunctions2_function.manifest.name
    blob     = google_cloudfunctions2_function.blob.name
  }

  project               = var.project_id
  name                  = "${var.name}-${each.key}"
  region                = var.region
  network_endpoint_type = "SERVERLESS"

  # 2nd gen functions are Cloud Run services: a Cloud Run serverless NEG.
  cloud_run {
    service = each.value
  }
}

resource "google_compute_backend_service" "function" {
  for_each = google_compute_region_network_endpoint_group.function

  project               = var.project_id
  name                  = "${var.name}-${each.key}"
  load_balancing_scheme = "EXTERNAL_MANAGED"
  protocol              = "HTTPS"
  # No timeout_sec: serverless backends answer within their own request timeout.

  backend {
    group = each.value.id
  }

  log_config {
    enable      = true
    sample_rate = 1.0
  }
}

resource "google_compute_url_map" "front" {
  project         = var.project_id
  name            = "${var.name}-front"
  description     = "nixery-serverless: blobs to the blob function, everything else to the manifest function"
  default_service = google_compute_backend_service.function["manifest"].id

  host_rule {
    hosts        = [var.domain]
    path_matcher = "registry"
  }

  path_matcher {
    name            = "registry"
    default_service = google_compute_backend_service.function["manifest"].id

    route_rules {
      priority = 1
      service  = google_compute_backend_service.function["blob"].id

      # OR semantics: any template matches.
      dynamic "match_rules" {
        for_each = local.blob_path_templates
        content {
          path_template_match = match_rules.value
        }
      }
    }
  }
}

resource "google_compute_managed_ssl_certificate" "front" {
  project = var.project_id
  name    = "${var.name}-front"

  managed {
    domains = [var.domain]
  }

  lifecycle {
    create_before_destroy = true
  }
}

resource "google_compute_ssl_policy" "front" {
  project         = var.project_id
  name            = "${var.name}-front"
  profile         = "MODERN"
  min_tls_version = "TLS_1_2"
}

resource "google_compute_target_https_proxy" "front" {
  project          = var.project_id
  name             = "${var.name}-front"
  url_map          = google_compute_url_map.front.id
  ssl_certificates = [google_compute_managed_ssl_certificate.front.id]
  ssl_policy       = google_compute_ssl_policy.front.id
}

resource "google_compute_global_forwarding_rule" "https" {
  project               = var.project_id
  name                  = "${var.name}-https"
  load_balancing_scheme = "EXTERNAL_MANAGED"
  ip_protocol           = "TCP"
  ip_address            = google_compute_global_address.front.id
  port_range            = "443"
  target                = google_compute_target_https_proxy.front.id
  labels                = local.labels
}

# http:// -> https:// (Docker itself always speaks HTTPS to a non-local registry).
resource "google_compute_url_map" "redirect" {
  count = var.enable_http_redirect ? 1 : 0

  project     = var.project_id
  name        = "${var.name}-redirect"
  description = "nixery-serverless: http to https"

  default_url_redirect {
    https_redirect         = true
    redirect_response_code = "MOVED_PERMANENTLY_DEFAULT"
    strip_query            = false
  }
}

resource "google_compute_target_http_proxy" "redirect" {
  count = var.enable_http_redirect ? 1 : 0

  project = var.project_id
  name    = "${var.name}-redirect"
  url_map = google_compute_url_map.redirect[0].id
}

resource "google_compute_global_forwarding_rule" "http" {
  count = var.enable_http_redirect ? 1 : 0

  project               = var.project_id
  name                  = "${var.name}-http"
  load_balancing_scheme = "EXTERNAL_MANAGED"
  ip_protocol           = "TCP"
  ip_address            = google_compute_global_address.front.id
  port_range            = "80"
  target                = google_compute_target_http_proxy.redirect[0].id
  labels                = local.labels
}
