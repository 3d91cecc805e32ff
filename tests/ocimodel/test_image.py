"""Image config and manifests as deterministic bytes (`ocimodel.image`)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest

from ocimodel.image import (
    EPOCH,
    Blob,
    LayerBlob,
    RuntimeConfig,
    build_config,
    build_manifest,
    canonical_json,
    config_media_type,
    layer_comment,
)
from ocimodel.mediatypes import MediaType


def _sha(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


LAYERS = (
    LayerBlob(_sha("gz1"), 1000, _sha("tar1"), "glibc-2.39"),
    LayerBlob(_sha("gz2"), 20, _sha("tar2"), "hello-2.12"),
)
RUNTIME = RuntimeConfig(
    architecture="amd64",
    env=("SSL_CERT_FILE=/etc/ssl/certs/ca-bundle.crt", "PATH=/bin"),
    cmd=("bash",),
    labels=(("org.example.b", "2"), ("org.example.a", "1")),
)


def test_config_content() -> None:
    config = json.loads(build_config(RUNTIME, LAYERS))
    assert config == {
        "architecture": "amd64",
        "os": "linux",
        "created": EPOCH,
        "config": {
            "Env": ["SSL_CERT_FILE=/etc/ssl/certs/ca-bundle.crt", "PATH=/bin"],
            "Cmd": ["bash"],
            "Labels": {"org.example.a": "1", "org.example.b": "2"},
        },
        "rootfs": {"type": "layers", "diff_ids": [_sha("tar1"), _sha("tar2")]},
        "history": [
            {"created": EPOCH, "created_by": "nixery-serverless", "comment": "glibc-2.39"},
            {"created": EPOCH, "created_by": "nixery-serverless", "comment": "hello-2.12"},
        ],
    }
    assert EPOCH == "1970-01-01T00:00:01Z"


def test_config_omits_empty_runtime_fields() -> None:
    config = json.loads(build_config(RuntimeConfig(architecture="arm64"), []))
    assert config["config"] == {}
    assert config["architecture"] == "arm64"
    assert config["rootfs"] == {"type": "layers", "diff_ids": []}
    assert config["history"] == []


@pytest.mark.parametrize(
    "build",
    [
        pytest.param(lambda: build_config(RUNTIME, LAYERS), id="config"),
        pytest.param(
            lambda: build_manifest(MediaType.DOCKER_MANIFEST, b"{}", LAYERS).data, id="docker"
        ),
        pytest.param(lambda: build_manifest(MediaType.OCI_MANIFEST, b"{}", LAYERS).data, id="oci"),
    ],
)
def test_bytes_are_canonical_and_repeatable(build: Any) -> None:
    data: bytes = build()
    assert data == build()
    assert data == json.dumps(json.loads(data), sort_keys=True, separators=(",", ":")).encode()
    assert b"\n" not in data and b": " not in data


def test_config_changes_with_layer_order() -> None:
    assert build_config(RUNTIME, LAYERS) != build_config(RUNTIME, LAYERS[::-1])


@pytest.mark.parametrize(
    ("media_type", "config_type", "layer_type"),
    [
        pytest.param(
            MediaType.DOCKER_MANIFEST,
            MediaType.DOCKER_CONFIG,
            MediaType.DOCKER_LAYER_GZIP,
            id="docker",
        ),
        pytest.param(
            MediaType.OCI_MANIFEST, MediaType.OCI_CONFIG, MediaType.OCI_LAYER_GZIP, id="oci"
        ),
    ],
)
def test_manifest_flavours(
    media_type: MediaType, config_type: MediaType, layer_type: MediaType
) -> None:
    config = build_config(RUNTIME, LAYERS)
    blob = build_manifest(media_type, config, LAYERS)
    assert blob.media_type == str(media_type)
    assert json.loads(blob.data) == {
        "schemaVersion": 2,
        "mediaType": str(media_type),
        "config": {
            "mediaType": str(config_type),
            "size": len(config),
            "digest": "sha256:" + hashlib.sha256(config).hexdigest(),
        },
        "layers": [
            {"mediaType": str(layer_type), "size": 1000, "digest": _sha("gz1")},
            {"mediaType": str(layer_type), "size": 20, "digest": _sha("gz2")},
        ],
    }
    assert config_media_type(media_type) is config_type


def test_both_flavours_share_the_blobs_but_differ_in_bytes() -> None:
    config = build_config(RUNTIME, LAYERS)
    docker = json.loads(build_manifest(MediaType.DOCKER_MANIFEST, config, LAYERS).data)
    oci = json.loads(build_manifest(MediaType.OCI_MANIFEST, config, LAYERS).data)
    assert docker["config"]["digest"] == oci["config"]["digest"]
    assert [x["digest"] for x in docker["layers"]] == [x["digest"] for x in oci["layers"]]
    assert docker != oci


@pytest.mark.parametrize(
    "media_type", [MediaType.OCI_INDEX, MediaType.DOCKER_MANIFEST_LIST, MediaType.OCI_CONFIG]
)
def test_only_image_manifests_can_be_built(media_type: MediaType) -> None:
    with pytest.raises(KeyError):
        build_manifest(media_type, b"{}", LAYERS)


def test_blob_digest_and_size() -> None:
    blob = Blob("application/octet-stream", b"hello")
    assert blob.size == 5
    assert blob.digest == "sha256:" + hashlib.sha256(b"hello").hexdigest()


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        pytest.param({"b": 1, "a": [1, 2]}, b'{"a":[1,2],"b":1}', id="sorted-compact"),
        pytest.param({"k": "ü"}, '{"k":"ü"}'.encode(), id="utf8-not-escaped"),
    ],
)
def test_canonical_json(value: object, encoded: bytes) -> None:
    assert canonical_json(value) == encoded


def _store(hash_char: str, name: str) -> str:
    return f"/nix/store/{hash_char * 32}-{name}"


@pytest.mark.parametrize(
    ("paths", "comment"),
    [
        pytest.param([], "", id="empty"),
        pytest.param([_store("a", "hello-2.12")], "hello-2.12", id="one"),
        pytest.param(
            [_store("b", "bash-5.2"), _store("a", "glibc-2.39")],
            "glibc-2.39, bash-5.2",
            id="sorted-by-path",
        ),
        pytest.param(
            [_store(c, f"p{i}") for i, c in enumerate("abcde")],
            "p0, p1, p2, p3, p4",
            id="five-shown",
        ),
        pytest.param(
            [_store(c, f"p{i}") for i, c in enumerate("abcdefg")],
            "p0, p1, p2, p3, p4 (+2 more)",
            id="more-counted",
        ),
    ],
)
def test_layer_comment(paths: list[str], comment: str) -> None:
    assert layer_comment(paths) == comment
    assert layer_comment(paths[::-1]) == comment
