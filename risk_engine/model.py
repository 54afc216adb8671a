"""The online model: a River pipeline over the feature dict.

Default: numeric features standardised, string features one-hot encoded, a
logistic regression whose updates on the fraud class are up-weighted (fraud
is rare; without the weight the model learns to say "legitimate" to
everything). Any River binary classifier with predict_proba_one / learn_one
can replace it.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping

from river import compose, linear_model, optim, preprocessing

from risk_engine.errors import ModelUnsupported

__all__ = [
    "WeightedLogisticRegression",
    "clip_scaled",
    "default_model",
    "explain",
    "model_input",
    "score_and_explain",
]


class WeightedLogisticRegression(linear_model.LogisticRegression):
    """Logistic regression with a sample-weight multiplier for the positive (fraud) class."""

    def __init__(self, positive_weight: float = 20.0, optimizer: optim.base.Optimizer | None = None,
                 loss: optim.losses.BinaryLoss | None = None, l2: float = 0.0, l1: float = 0.0,
                 intercept_init: float = 0.0, intercept_lr: float = 0.01,
                 clip_gradient: float = 1e12,
                 initializer: optim.base.Initializer | None = None) -> None:
        super().__init__(optimizer=optimizer, loss=loss, l2=l2, l1=l1,
                         intercept_init=intercept_init, intercept_lr=intercept_lr,
                         clip_gradient=clip_gradient, initializer=initializer)
        self.positive_weight = positive_weight

    def learn_one(self, x: dict, y: bool, w: float = 1.0) -> None:
        super().learn_one(x, y, w * (self.positive_weight if y else 1.0))


CLIP = 5.0


def clip_scaled(x: dict) -> dict:
    """Bound standardised values: a feature that was near-constant so far (an account
    age that moved by seconds) must not turn into a 1000-sigma outlier."""
    return {k: -CLIP if v < -CLIP else CLIP if v > CLIP else v for k, v in x.items()}


def default_model(positive_weight: float = 20.0, learning_rate: float = 0.05,
                  l2: float = 1e-4) -> compose.Pipeline:
    """A fresh default pipeline: works on any dict of numeric (and string) features."""
    numeric = (compose.SelectType(numbers.Number) | preprocessing.StandardScaler()
               | compose.FuncTransformer(clip_scaled))
    categorical = compose.SelectType(str) | preprocessing.OneHotEncoder()
    return (numeric + categorical) | WeightedLogisticRegression(
        positive_weight=positive_weight, optimizer=optim.SGD(learning_rate), l2=l2)


def model_input(features: Mapping[str, object]) -> dict[str, float | str]:
    """Features as the model sees them: booleans become 0.0/1.0, strings stay categorical."""
    out: dict[str, float | str] = {}
    for k, v in features.items():
        if isinstance(v, bool):
            out[k] = 1.0 if v else 0.0
        elif isinstance(v, int | float):
            out[k] = float(v)
        elif isinstance(v, str):
            out[k] = v
    return out


def _linear_parts(model: object):
    steps = list(model.steps.values()) if isinstance(model, compose.Pipeline) else [model]
    final = steps[-1]
    if not isinstance(final, linear_model.LogisticRegression):
        return None
    return steps[:-1], final


def _contributions(final, z: Mapping[str, object], top: int) -> list[tuple[str, float]]:
    weights = final.weights
    contrib = [(name, weights.get(name, 0.0) * float(value)) for name, value in z.items()
               if isinstance(value, int | float) and not math.isnan(float(value))]
    contrib = [c for c in contrib if c[1] != 0.0]
    contrib.sort(key=lambda c: -abs(c[1]))
    return contrib[:top]


def explain(model: object, x: Mapping[str, float | str], top: int = 3) -> list[tuple[str, float]]:
    """The features that moved a linear model's score most: weight x transformed value.

    Returns ``(feature, contribution to the log-odds)`` pairs, largest magnitude
    first. Raises ModelUnsupported for non-linear final estimators.
    """
    return score_and_explain(model, x, top, require_linear=True)[1]


def score_and_explain(model: object, x: Mapping[str, float | str], top: int = 3, *,
                      require_linear: bool = False) -> tuple[float, list[tuple[str, float]]]:
    """Fraud probability and the top contributions, transforming ``x`` once.

    Non-linear models give their probability and no contributions (or raise
    ModelUnsupported when ``require_linear``).
    """
    parts = _linear_parts(model)
    if parts is None:
        if require_linear:
            raise ModelUnsupported("explanations need a linear final estimator")
        return float(model.predict_proba_one(dict(x)).get(True, 0.0)), []  # type: ignore[attr-defined]
    steps, final = parts
    z = dict(x)
    for step in steps:
        z = step.transform_one(z)
    p = float(final.predict_proba_one(z).get(True, 0.0))
    return p, _contributions(final, z, top)
