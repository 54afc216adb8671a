"""How the model arrived at a recorded decision's score: each feature's contribution.

The decision keeps its features and the label of the model that scored it
("champion:v12"); the snapshot of that version is loaded (and its signature
checked) from the model store, and the features are run through it again.
Snapshots older than the store keeps (risk_engine.snapshots.KEEP_VERSIONS) are gone:
then, and for a decision scored without a model, the answer says why.
"""

from __future__ import annotations

import re
from typing import Any

from risk_engine import (
    DecisionEvent,
    ModelUnsupported,
    RiskEngineError,
    SnapshotNotFound,
    explain,
    model_input,
)

__all__ = ["model_contributions"]

_LABEL_RE = re.compile(r"\A(champion|challenger):v([0-9]{1,9})\Z")
TOP = 10


async def model_contributions(model_store: Any, event: DecisionEvent, *, top: int = TOP) -> dict[str, Any]:
    """``{"model": label, "contributions": [{"feature", "log_odds"}...]}`` largest first, or
    ``{"model": label or None, "unavailable": why}``."""
    label = event.model_version
    matched = _LABEL_RE.match(label or "")
    if matched is None:
        return {"model": label, "unavailable": "no model took part in this decision"}
    try:
        snapshot = await model_store.load(matched[1], int(matched[2]))
        pairs = explain(snapshot.model, model_input(event.features), top=top)
    except SnapshotNotFound:
        return {"model": label, "unavailable": "that model version is no longer stored"}
    except ModelUnsupported:
        return {"model": label, "unavailable": "the model is not linear: no per-feature contributions"}
    except RiskEngineError as exc:
        return {"model": label, "unavailable": f"the model could not be read: {exc}"}
    return {"model": label,
            "contributions": [{"feature": f, "log_odds": round(v, 4)} for f, v in pairs]}
