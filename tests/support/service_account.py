"""Service-account keys generated on the spot (RSA 2048, as Google issues
them), written as the key files the Cloud console downloads."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from google.oauth2 import service_account


@dataclass(frozen=True)
class ServiceAccountKey:
    email: str
    private_key: rsa.RSAPrivateKey

    def info(self, token_uri: str = "https://oauth2.googleapis.com/token") -> dict[str, str]:
        """The JSON of a key file, as the Cloud console downloads it."""
        pem = self.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        return {
            "type": "service_account",
            "project_id": "nixery-test",
            "private_key_id": "0123456789abcdef",
            "private_key": pem,
            "client_email": self.email,
            "client_id": "1",
            "token_uri": token_uri,
        }

    def write(self, path: Path, token_uri: str = "https://oauth2.googleapis.com/token") -> Path:
        path.write_text(json.dumps(self.info(token_uri)))
        return path

    def credentials(self) -> service_account.Credentials:
        credentials: service_account.Credentials = (
            service_account.Credentials.from_service_account_info(self.info())  # type: ignore[no-untyped-call]
        )
        return credentials


def make_key(name: str) -> ServiceAccountKey:
    return ServiceAccountKey(
        email=f"{name}@nixery-test.iam.gserviceaccount.com",
        private_key=rsa.generate_private_key(public_exponent=65537, key_size=2048),
    )
