"""Pseudonyms: HMAC-SHA256 of a source identity under the consortium secret.

The same source identity gives the same key at every centre and in every run, so a patient treated at two
centres is recognisable as one without either centre revealing who it is. Patients are identified by the
consortium's chosen identifier system (a national number) when they carry one, else by their centre and
resource id; every other row by its centre and source reference. There is no default key: a missing secret is a
configuration error.

The Spark expression computes the HMAC inside the JVM (RFC 2104 with SHA-256), so pseudonymisation scales with
the cluster; `pseudonym()` is the same function in Python, and a test keeps the two equal.
"""

from __future__ import annotations

import hashlib
import hmac

from pyspark.sql import Column
from pyspark.sql import functions as F

from foundation.errors import ConfigError
from foundation.secrets import Secret

BLOCK = 64  # SHA-256 block size in bytes


def _key(secret: Secret) -> bytes:
    key = secret.reveal().encode("utf-8")
    if len(key) < 16:
        raise ConfigError("the consortium secret is shorter than 16 characters: too weak for pseudonymisation")
    return key


def check_secret(secret: Secret) -> None:
    """Refuse a weak consortium secret before any work is done (there is no default key)."""
    _key(secret)


def pseudonym(secret: Secret, identity: str) -> str:
    """Hex HMAC-SHA256 of an identity."""
    return hmac.new(_key(secret), identity.encode("utf-8"), hashlib.sha256).hexdigest()


def pseudonym_column(secret: Secret, identity: Column) -> Column:
    """The same HMAC as a Spark expression (inner and outer SHA-256 over the padded key)."""
    key = _key(secret)
    if len(key) > BLOCK:
        key = hashlib.sha256(key).digest()
    key = key.ljust(BLOCK, b"\0")
    inner_pad = bytes(b ^ 0x36 for b in key)
    outer_pad = bytes(b ^ 0x5C for b in key)
    inner = F.unhex(F.sha2(F.concat(F.lit(inner_pad), F.encode(identity, "UTF-8")), 256))
    return F.sha2(F.concat(F.lit(outer_pad), inner), 256)


SHIFT_DAYS = 365


def date_shift_days(secret: Secret, patient_id: Column) -> Column:
    """A patient's keyed date offset in days, in [-365, 365]: the same for all their dates, so intervals hold."""
    digest = pseudonym_column(secret, F.concat(F.lit("date-shift|"), patient_id))
    return (F.conv(F.substring(digest, 1, 8), 16, 10).cast("long") % (2 * SHIFT_DAYS + 1) - SHIFT_DAYS).cast("int")
