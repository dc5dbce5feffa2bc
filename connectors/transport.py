"""What a failed connection means, in words: a certificate nobody trusts is said so, and is not worth a retry."""

from __future__ import annotations

import ssl

import httpx


def untrusted_certificate(error: httpx.TransportError) -> str | None:
    """Why the server's TLS certificate was refused, or None when the failure was something else."""
    cause: BaseException | None = error
    while cause is not None:
        if isinstance(cause, ssl.SSLCertVerificationError):
            return (f"its TLS certificate is not trusted ({cause.verify_message}); if the hospital uses its own "
                    "certificate authority, give its CA certificate as `ca_bundle`")
        cause = cause.__cause__ or cause.__context__
    return None


def describe(error: httpx.TransportError) -> str:
    """A failed connection in a few words (never a request header)."""
    return untrusted_certificate(error) or type(error).__name__
