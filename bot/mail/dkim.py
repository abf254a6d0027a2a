"""DKIM signing (dkimpy) of the exact bytes a sender delivers.

The key is an RSA private key in PEM, read from a file or an environment variable; the
public half goes in DNS as a TXT record at `<selector>._domainkey.<domain>`.
"""

from __future__ import annotations

import os
from pathlib import Path

import dkim
from dkim.crypto import UnparsableKeyError, parse_pem_private_key

from bot.errors import ConfigError

#: headers covered by the signature; RFC 8058 wants both List-Unsubscribe headers signed.
#: A header listed but absent is signed as absent, so nobody can add it on the way.
SIGNED_HEADERS = (
    b"from",
    b"sender",
    b"reply-to",
    b"to",
    b"subject",
    b"date",
    b"message-id",
    b"list-id",
    b"list-unsubscribe",
    b"list-unsubscribe-post",
    b"auto-submitted",
    b"mime-version",
    b"content-type",
)


class DkimSigner:
    """Signs message bytes with one domain's DKIM key (rsa-sha256, relaxed/relaxed)."""

    def __init__(self, *, selector: str, domain: str, private_key: bytes) -> None:
        try:
            parse_pem_private_key(private_key)
        except (UnparsableKeyError, ValueError, IndexError) as exc:
            raise ValueError(f"not an RSA private key in PEM form: {exc}") from None
        self.selector = selector
        self.domain = domain
        self._key = private_key

    def sign(self, data: bytes) -> bytes:
        """The `DKIM-Signature:` header line (CRLF-folded) for exactly these bytes."""
        header: bytes = dkim.sign(
            data,
            self.selector.encode("ascii"),
            self.domain.encode("ascii"),
            self._key,
            canonicalize=(b"relaxed", b"relaxed"),
            include_headers=list(SIGNED_HEADERS),
        )
        return header

    @property
    def record_name(self) -> str:
        """Where the public key must be published: `<selector>._domainkey.<domain>`."""
        return f"{self.selector}._domainkey.{self.domain}"


def load_key(*, key_file: Path | None, key_env: str | None, where: str) -> bytes:
    """The PEM key from the file or the environment variable; ConfigError naming `where`."""
    if key_file is not None:
        try:
            return key_file.read_bytes()
        except OSError as exc:
            raise ConfigError(
                f"{where}.key_file", f"cannot read {key_file}: {exc.strerror}"
            ) from None
    if key_env is not None:
        value = os.environ.get(key_env)
        if not value:
            raise ConfigError(f"{where}.key_env", f"environment variable {key_env} is not set")
        return value.replace("\\n", "\n").encode("ascii", "replace")
    raise ConfigError(where, "needs key_file or key_env")
