"""Pseudonyms: HMAC-SHA256 of a source identity under the centre's own secret, or an opted-in linkage secret.

By default every key is the centre's alone: a patient is identified by their centre and resource id, every other
row by its centre and source reference, all under the secret of the centre's deployment, which it shares with
nobody. Another centre, even one holding a patient's national number, cannot compute the pseudonym. A consortium
that must recognise the same person at two centres opts in to `Linkage`: patients carrying its identifier system
(a national number) are then keyed by that number under a linkage secret every centre holds, and whoever holds it
can compute the pseudonym of any number (docs/guarantees.md says so). Keys are the same in every run, so reruns
and increments keep them. There is no default key: a missing secret is a configuration error.

The Spark expression computes the HMAC inside the JVM (RFC 2104 with SHA-256), so pseudonymisation scales with
the cluster; `pseudonym()` is the same function in Python, and a test keeps the two equal.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from pyspark.sql import Column
from pyspark.sql import functions as F

from foundation.errors import ConfigError
from foundation.secrets import Secret

BLOCK = 64  # SHA-256 block size in bytes


@dataclass(frozen=True)
class Linkage:
    """Opt-in linkage across centres: a patient with an identifier of `identifier_system` is keyed by it under
    `secret`, shared by the consortium's centres, so the same person has one pseudonym at every centre."""

    identifier_system: str
    secret: Secret


def _key(secret: Secret, what: str = "secret") -> bytes:
    key = secret.reveal().encode("utf-8")
    if len(key) < 16:
        raise ConfigError(f"the {what} is shorter than 16 characters: too weak for pseudonymisation")
    return key


def check_secrets(secret: Secret, linkage: Linkage | None) -> None:
    """Refuse a weak secret before any work is done (there is no default key), and a linkage secret that is the
    centre's own: sharing it for linkage would let every centre compute every key of this one."""
    _key(secret)
    if linkage is not None and _key(linkage.secret, "linkage secret") == _key(secret):
        raise ConfigError("the linkage secret must differ from the centre's own secret: the linkage secret is "
                          "shared with the consortium, the centre's is not")


def pseudonym(secret: Secret, identity: str) -> str:
    """Hex HMAC-SHA256 of an identity."""
    return hmac.new(_key(secret), identity.encode("utf-8"), hashlib.sha256).hexdigest()


def patient_pseudonym(secret: Secret, linkage: Linkage | None, centre_id: Column, identity: Column) -> Column:
    """A patient's key: under the linkage secret where `identity` is a linked identifier, else under the
    centre's own secret. An unlinked identity is `<centre>|Patient/<id>`; a centre id has no `:`, which every
    identifier system (a URI) has, so the two cannot be confused."""
    own = pseudonym_column(secret, identity)
    if linkage is None:
        return own
    unlinked = identity.startswith(F.concat(centre_id, F.lit("|Patient/")))
    return F.when(unlinked, own).otherwise(pseudonym_column(linkage.secret, identity))


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
