"""Google-style OIDC identity tokens, signed by a key made for the test.

:func:`start_certs_server` serves the public certificates in the format of
``https://www.googleapis.com/oauth2/v1/certs`` (``{"key id": "<x509 PEM>"}``,
with ``Cache-Control: max-age``) from a real local HTTP server;
:meth:`TokenIssuer.mint` signs tokens with the claims Cloud Scheduler's
``oidc_token`` carries (``iss``, ``aud``, ``email``, ``email_verified``,
``iat``, ``exp``, ``sub``). A second issuer whose certificate is not served
signs forgeries.
"""

from __future__ import annotations

import datetime
import json
import time
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from google.auth import crypt, jwt

from tests.support.static_http import Answer, StaticServer, start_static_server

CERTS_PATH = "/oauth2/v1/certs"
GOOGLE_ISSUER = "https://accounts.google.com"


@dataclass(frozen=True)
class TokenIssuer:
    key_id: str
    private_key: rsa.RSAPrivateKey

    def certificate_pem(self) -> str:
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, self.key_id)])
        now = datetime.datetime.now(datetime.UTC)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self.private_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=2))
            .sign(self.private_key, hashes.SHA256())
        )
        return certificate.public_bytes(serialization.Encoding.PEM).decode()

    def mint(
        self,
        *,
        audience: str,
        email: str,
        issuer: str = GOOGLE_ISSUER,
        lifetime_s: float = 3600,
        issued_ago_s: float = 0,
        email_verified: bool = True,
    ) -> str:
        pem = self.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        signer = crypt.RSASigner.from_string(pem, key_id=self.key_id)  # type: ignore[no-untyped-call]
        issued = int(time.time() - issued_ago_s)
        payload = {
            "iss": issuer,
            "aud": audience,
            "azp": "112233445566778899",
            "sub": "112233445566778899",
            "email": email,
            "email_verified": email_verified,
            "iat": issued,
            "exp": int(issued + lifetime_s),
        }
        token: bytes = jwt.encode(signer, payload)  # type: ignore[no-untyped-call]
        return token.decode()


def make_issuer(key_id: str) -> TokenIssuer:
    return TokenIssuer(key_id, rsa.generate_private_key(public_exponent=65537, key_size=2048))


def start_certs_server(*issuers: TokenIssuer, max_age_s: int = 3600) -> StaticServer:
    """Google's certificate endpoint for ``issuers``, at :data:`CERTS_PATH`."""
    body = json.dumps({i.key_id: i.certificate_pem() for i in issuers}).encode()
    headers = (
        ("Content-Type", "application/json; charset=UTF-8"),
        ("Cache-Control", f"public, max-age={max_age_s}, must-revalidate, no-transform"),
    )
    return start_static_server({CERTS_PATH: Answer(body, 200, headers)})
