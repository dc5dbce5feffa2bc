"""Deterministic resource ids: the same seed, centre, patient and slot always give the same id."""

from __future__ import annotations

import uuid

_NAMESPACE = uuid.UUID("6f1d3c1e-3b2a-4f53-9a57-1c0de5a1c0de")


def resource_id(seed: int, centre_id: str, index: int, slot: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, f"{seed}/{centre_id}/{index}/{slot}"))
