"""Progressive-validation metrics the learner keeps, updated a row or a mini-batch at a time.

River's ROCAUC updates ten confusion matrices per row in Python, which cost the
learner more than learning itself; these are numpy histograms of the scores
per class, so a 500-row batch is one ``np.histogram`` call per class. The ROC
AUC is exact up to ties within a bin (1/1000 of probability by default).
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["ProgressiveMetrics"]

_EPS = 1e-15


class ProgressiveMetrics:
    """ROC AUC and log loss of scores seen before their labels were learned."""

    def __init__(self, bins: int = 1000) -> None:
        self._edges = np.linspace(0.0, 1.0, bins + 1)
        self.positives = np.zeros(bins)
        self.negatives = np.zeros(bins)
        self._loss = 0.0
        self.n = 0

    def update(self, fraud: bool, p: float) -> None:
        self.update_many(np.array([fraud]), np.array([p]))

    def update_many(self, fraud: np.ndarray, p: np.ndarray) -> None:
        fraud = np.asarray(fraud, dtype=bool)
        p = np.clip(np.asarray(p, dtype=float), 0.0, 1.0)
        self.positives += np.histogram(p[fraud], self._edges)[0]
        self.negatives += np.histogram(p[~fraud], self._edges)[0]
        q = np.clip(p, _EPS, 1 - _EPS)
        self._loss += float(-(np.log(q[fraud]).sum() + np.log(1 - q[~fraud]).sum()))
        self.n += len(p)

    def roc_auc(self) -> float:
        """P(score of a fraud > score of a legitimate one), ties counted half; NaN until
        both classes have been seen."""
        pos, neg = self.positives.sum(), self.negatives.sum()
        if not pos or not neg:
            return math.nan
        below = np.cumsum(self.negatives) - self.negatives
        return float((self.positives * (below + 0.5 * self.negatives)).sum() / (pos * neg))

    def log_loss(self) -> float:
        return self._loss / self.n if self.n else math.nan
