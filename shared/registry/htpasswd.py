"""htpasswd files: ``user:hash`` lines, and checking a password against a hash.

The formats accepted are the ones worth trusting and the ones the usual tools
write:

==========================  ====================================  =========================
hash                        written by                            checked with
==========================  ====================================  =========================
``$2y$`` ``$2b$`` ``$2a$``  ``htpasswd -B``, Docker's registry    ``bcrypt`` (the ``auth``
(bcrypt)                    docs, ``python -c 'import bcrypt'``   extra)
``$5$`` (SHA-256-crypt)     ``openssl passwd -5``, ``mkpasswd``   :func:`sha_crypt`, here
``$6$`` (SHA-512-crypt)     ``openssl passwd -6``, ``mkpasswd``   :func:`sha_crypt`, here
==========================  ====================================  =========================

Unsalted SHA-1 (``{SHA}``), Apache's MD5 (``$apr1$``), DES crypt and plain
text are refused when the file is read: each is crackable in minutes.

:func:`sha_crypt` is Ulrich Drepper's "Unix crypt using SHA-256 and
SHA-512" (the algorithm of glibc's ``crypt``, which Python 3.13 no longer
ships), checked in the tests against the specification's vectors and
``openssl passwd``. Comparisons are constant-time (``hmac.compare_digest``;
bcrypt's own ``checkpw``).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

_B64 = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_SHA_CRYPT = re.compile(r"\$(?P<id>[56])\$(?:rounds=(?P<rounds>[0-9]{1,9})\$)?(?P<salt>[^$]{0,16})")
_BCRYPT = re.compile(r"\$2[aby]\$[0-9]{2}\$[./A-Za-z0-9]{53}")
ROUNDS_DEFAULT, ROUNDS_MIN, ROUNDS_MAX = 5000, 1000, 999_999_999
# The byte order of the final encoding, in groups of three (the spec's table).
_ORDER = {
    "5": (
        (0, 10, 20), (21, 1, 11), (12, 22, 2), (3, 13, 23), (24, 4, 14),
        (15, 25, 5), (6, 16, 26), (27, 7, 17), (18, 28, 8), (9, 19, 29),
    ),
    "6": (
        (0, 21, 42), (22, 43, 1), (44, 2, 23), (3, 24, 45), (25, 46, 4), (47, 5, 26),
        (6, 27, 48), (28, 49, 7), (50, 8, 29), (9, 30, 51), (31, 52, 10), (53, 11, 32),
        (12, 33, 54), (34, 55, 13), (56, 14, 35), (15, 36, 57), (37, 58, 16),
        (59, 17, 38), (18, 39, 60), (40, 61, 19), (62, 20, 41),
    ),
}  # fmt: skip


class HtpasswdError(ValueError):
    """The file cannot be used; the message says which line and why."""


def _b64(value: int, count: int) -> str:
    out = []
    for _ in range(count):
        out.append(_B64[value & 0x3F])
        value >>= 6
    return "".join(out)


def _repeat(block: bytes, length: int) -> bytes:
    return (block * (length // len(block) + 1))[:length]


def sha_crypt(password: bytes, setting: str) -> str:
    """The full ``$5$...`` / ``$6$...`` hash of ``password`` with the salt
    and rounds of ``setting`` (a hash or just its ``$id$[rounds=N$]salt``)."""
    match = _SHA_CRYPT.match(setting)
    if match is None:
        raise ValueError("not a SHA-crypt setting")
    ident, salt_text = match["id"], match["salt"]
    salt = salt_text.encode()
    new: Callable[..., hashlib._Hash] = hashlib.sha256 if ident == "5" else hashlib.sha512
    size = 32 if ident == "5" else 64
    rounds = ROUNDS_DEFAULT
    if match["rounds"] is not None:
        rounds = min(max(int(match["rounds"]), ROUNDS_MIN), ROUNDS_MAX)

    b = new(password + salt + password).digest()
    a = new(password + salt)
    a.update(_repeat(b, len(password)))
    length = len(password)
    while length:
        a.update(b if length & 1 else password)
        length >>= 1
    c = a.digest()
    p = _repeat(new(password * len(password)).digest(), len(password))
    s = _repeat(new(salt * (16 + c[0])).digest(), len(salt))
    for round_ in range(rounds):
        step = new(p if round_ & 1 else c)
        if round_ % 3:
            step.update(s)
        if round_ % 7:
            step.update(p)
        step.update(c if round_ & 1 else p)
        c = step.digest()

    encoded = "".join(_b64((c[x] << 16) | (c[y] << 8) | c[z], 4) for x, y, z in _ORDER[ident])
    encoded += _b64((c[31] << 8) | c[30], 3) if size == 32 else _b64(c[63], 2)
    prefix = f"${ident}$" + (f"rounds={rounds}$" if match["rounds"] is not None else "")
    return f"{prefix}{salt_text}${encoded}"


def kind_of(hashed: str) -> str | None:
    """``bcrypt``, ``sha-crypt`` or None (a format this module refuses)."""
    if _BCRYPT.fullmatch(hashed):
        return "bcrypt"
    if _SHA_CRYPT.match(hashed) and hashed.count("$") in (3, 4):
        return "sha-crypt"
    return None


def verify(password: str, hashed: str) -> bool:
    """Whether ``password`` matches ``hashed``, in constant time."""
    secret = password.encode()
    kind = kind_of(hashed)
    if kind == "bcrypt":
        import bcrypt

        return bcrypt.checkpw(secret, hashed.encode())
    if kind == "sha-crypt":
        return hmac.compare_digest(sha_crypt(secret, hashed).encode(), hashed.encode())
    return False


@dataclass(frozen=True)
class Htpasswd:
    """The users of one htpasswd file."""

    users: dict[str, str]

    @classmethod
    def parse(cls, text: str, source: str = "htpasswd") -> Htpasswd:
        users: dict[str, str] = {}
        for number, raw in enumerate(text.splitlines(), 1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            user, sep, hashed = line.partition(":")
            where = f"{source} line {number}"  # never the line itself: it holds a hash
            if not sep or not user:
                raise HtpasswdError(f"{where}: not user:hash")
            kind = kind_of(hashed)
            if kind is None:
                raise HtpasswdError(
                    f"{where}: user {user!r} has a hash this registry refuses; use bcrypt "
                    "(htpasswd -B) or SHA-crypt (openssl passwd -5)"
                )
            if kind == "bcrypt":
                try:
                    import bcrypt  # noqa: F401
                except ImportError:
                    raise HtpasswdError(
                        f"{where}: bcrypt hashes need the bcrypt package "
                        "(pip install 'nixery-serverless[auth]')"
                    ) from None
            users[user] = hashed
        if not users:
            raise HtpasswdError(f"{source} has no users")
        return cls(users)

    @classmethod
    def load(cls, path: Path) -> Htpasswd:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise HtpasswdError(f"cannot read {path}: {exc}") from exc
        return cls.parse(text, str(path))
