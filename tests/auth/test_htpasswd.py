"""htpasswd parsing and password hashes: SHA-crypt against its
specification's vectors and ``openssl passwd``, bcrypt through the library."""

from __future__ import annotations

import random
import shutil
import string
import subprocess

import bcrypt
import pytest

from registry.htpasswd import Htpasswd, HtpasswdError, kind_of, sha_crypt, verify

# From Ulrich Drepper's "Unix crypt using SHA-256 and SHA-512", section "Test vectors".
VECTORS = [
    ("$5$saltstring", "Hello world!", "$5$saltstring$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5"),
    (
        "$5$rounds=10000$saltstringsaltstring",
        "Hello world!",
        "$5$rounds=10000$saltstringsaltst$3xv.VbSHBb41AL9AvLeujZkZRBAwqFMz2.opqey6IcA",
    ),
    (
        "$5$rounds=10$roundstoolow",
        "the minimum number is still observed",
        "$5$rounds=1000$roundstoolow$yfvwcWrQ8l/K0DAWyuPMDNHpIVlTQebY9l/gL972bIC",
    ),
    (
        "$6$saltstring",
        "Hello world!",
        "$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1",
    ),
    (
        "$6$rounds=10000$saltstringsaltstring",
        "Hello world!",
        "$6$rounds=10000$saltstringsaltst$OW1/O6BYHV6BcXZu8QVeXbDWra3Oeqh0sbHbbMCVNSnCM/UrjmM0Dp8vOuZeHBy/YTBmSK6H9qs/y3RnOaw5v.",
    ),
]


@pytest.mark.parametrize(("setting", "password", "expected"), VECTORS)
def test_specification_vectors(setting: str, password: str, expected: str) -> None:
    assert sha_crypt(password.encode(), setting) == expected
    assert verify(password, expected)
    assert not verify(password + "!", expected)


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl")
@pytest.mark.parametrize("algorithm", ["5", "6"])
def test_agrees_with_openssl(algorithm: str) -> None:
    rng = random.Random(algorithm)
    for _ in range(15):
        password = "".join(rng.choice(string.printable[:95]) for _ in range(rng.randint(1, 70)))
        salt = "".join(rng.choice(string.ascii_letters + "./") for _ in range(rng.randint(1, 16)))
        hashed = (
            subprocess.run(
                ["openssl", "passwd", f"-{algorithm}", "-salt", salt, "-stdin"],
                input=password.encode() + b"\n",
                capture_output=True,
                check=True,
            )
            .stdout.decode()
            .strip()
        )
        assert sha_crypt(password.encode(), hashed) == hashed
        assert verify(password, hashed) and not verify(password[:-1], hashed)


@pytest.mark.parametrize("prefix", [b"$2b$", b"$2a$", b"$2y$"])
def test_bcrypt(prefix: bytes) -> None:
    hashed = bcrypt.hashpw(b"s3cret", bcrypt.gensalt(rounds=4)).replace(b"$2b$", prefix).decode()
    assert kind_of(hashed) == "bcrypt"
    assert verify("s3cret", hashed)
    assert not verify("s3cret ", hashed)


def test_parse_skips_comments_and_blank_lines() -> None:
    text = "# users\n\nalice:$5$ab$0epTiMJnKKkGc3iWs8daBISjSu.AUoAqYYZpexN/ivD\n"
    assert list(Htpasswd.parse(text).users) == ["alice"]


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("alice:{SHA}qUqP5cyxm6YcTAhz05Hph5gvu9M=", "refuses"),
        ("alice:$apr1$abc$abcdefghijklmnopqrstuv", "refuses"),
        ("alice:plaintext", "refuses"),
        ("alice:abCDefGHijKLm", "refuses"),  # DES crypt
        ("no colon here", "not user:hash"),
        (":$5$ab$0epTiMJnKKkGc3iWs8daBISjSu.AUoAqYYZpexN/ivD", "not user:hash"),
        ("", "no users"),
    ],
)
def test_refused_files(line: str, problem: str) -> None:
    with pytest.raises(HtpasswdError) as error:
        Htpasswd.parse(line + "\n", "users.htpasswd")
    assert problem in str(error.value)
    hashed = line.partition(":")[2]
    assert not hashed or hashed not in str(error.value)  # never echo a hash
