"""The online model: a River pipeline over the feature dict.

Default: numeric features standardised, string features one-hot encoded, a
logistic regression whose updates on the fraud class are up-weighted (fraud
is rare; without the weight the model learns to say "legitimate" to
everything). Any River binary classifier with predict_proba_one / learn_one
can replace it.

Every step also has River's mini-batch interface (``learn_many`` /
``predict_proba_many`` over a pandas DataFrame), which the learner uses to
reach its throughput; River's own ``SelectType`` lacks ``learn_many`` and its
``StandardScaler.learn_many`` can produce a tiny negative variance for a
constant column, hence the small classes below.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
from river import base, compose, linear_model, optim, preprocessing

from risk_engine.errors import ModelUnsupported

__all__ = [
    "ClipScaled",
    "DenseOneHotEncoder",
    "SelectCategorical",
    "SelectNumeric",
    "VarianceSafeScaler",
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

    def learn_many(self, X, y, w=1.0) -> None:  # noqa: N803 - River's signature
        """One mean-gradient step over the mini-batch, fraud rows up-weighted."""
        import pandas as pd  # only the learner's mini-batch path needs pandas

        yv = np.asarray(y, dtype=bool)
        wv = np.where(yv, self.positive_weight, 1.0) * np.asarray(w, dtype=float)
        super().learn_many(X, pd.Series(yv, index=X.index), pd.Series(wv, index=X.index))


class SelectNumeric(base.MiniBatchTransformer):
    """The numeric features (exact type test: ``isinstance(v, numbers.Number)`` goes through
    the ABC machinery and was 40% of a learn step)."""

    def transform_one(self, x: dict) -> dict:
        return {k: v for k, v in x.items() if type(v) is float or type(v) is int}

    def transform_many(self, X):  # noqa: N803
        return X.select_dtypes(include="number")


class SelectCategorical(base.MiniBatchTransformer):
    """The string (categorical) features."""

    def transform_one(self, x: dict) -> dict:
        return {k: v for k, v in x.items() if type(v) is str}

    def transform_many(self, X):  # noqa: N803
        return X.select_dtypes(exclude="number")


class VarianceSafeScaler(preprocessing.StandardScaler):
    """River's StandardScaler; its batch update computes E[x^2] - mean^2, which rounds to a
    tiny negative number for a constant column and then scales to a complex value."""

    def learn_many(self, X) -> None:  # noqa: N803
        super().learn_many(X)
        for k, v in self.vars.items():
            if v < 0.0:
                self.vars[k] = 0.0


CLIP = 5.0


def clip_scaled(x: dict) -> dict:
    """Bound standardised values: a feature that was near-constant so far (an account
    age that moved by seconds) must not turn into a 1000-sigma outlier."""
    return {k: -CLIP if v < -CLIP else CLIP if v > CLIP else v for k, v in x.items()}


class ClipScaled(base.MiniBatchTransformer):
    """``clip_scaled`` as a transformer, for dicts and mini-batches."""

    def transform_one(self, x: dict) -> dict:
        return clip_scaled(x)

    def transform_many(self, X):  # noqa: N803
        import pandas as pd

        # numpy, not DataFrame.clip: the latter cost ~7 ms per 500-row batch
        return pd.DataFrame(np.clip(X.to_numpy(dtype=float), -CLIP, CLIP), columns=X.columns,
                            index=X.index)


class DenseOneHotEncoder(preprocessing.OneHotEncoder):
    """River's OneHotEncoder; mini-batches are encoded densely with numpy (River's pandas
    path builds sparse columns with get_dummies, the slowest step of a learner batch)."""

    def transform_many(self, X):  # noqa: N803
        import pandas as pd

        out = {}
        for col in X.columns:
            arr = X[col].to_numpy(dtype=object)
            for v in sorted(set(self.values.get(col, ())) | set(arr.tolist()), key=str):
                out[f"{col}_{v}"] = (arr == v).astype(np.float64)
        return pd.DataFrame(out, index=X.index)


def default_model(positive_weight: float = 5.0, learning_rate: float = 0.05,
                  l2: float = 1e-3) -> compose.Pipeline:
    """A fresh default pipeline: works on any dict of numeric (and string) features.

    StandardScaler (clipped at +-5 sigma) on numbers, OneHotEncoder on strings, and a
    logistic regression with fraud updates weighted ``positive_weight`` times.
    ``learning_rate`` is the SGD step; a mini-batch takes one mean-gradient step,
    so learners using ``learn_many`` want a larger one (see ``Learner``).
    """
    numeric = SelectNumeric() | VarianceSafeScaler() | ClipScaled()
    categorical = SelectCategorical() | DenseOneHotEncoder()
    return (numeric + categorical) | WeightedLogisticRegression(
        positive_weight=positive_weight, optimizer=optim.SGD(learning_rate), l2=l2)


def model_input(features: Mapping[str, object]) -> dict[str, float | str]:
    """Features as the model sees them: booleans become 0.0/1.0, strings stay categorical."""
    out: dict[str, float | str] = {}
    for k, v in features.items():
        t = type(v)  # exact types first: this runs for every decision and every label
        if t is float or t is str:
            out[k] = v  # type: ignore[assignment]
        elif t is bool:
            out[k] = 1.0 if v else 0.0
        elif isinstance(v, bool):
            out[k] = 1.0 if v else 0.0
        elif isinstance(v, int | float):
            out[k] = float(v)
        elif isinstance(v, str):
            out[k] = str(v)
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
