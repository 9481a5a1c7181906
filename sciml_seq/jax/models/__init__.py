"""Ready models: classifiers, regressors and forecasters (mirrors :mod:`sciml_seq.torch.models`)."""

from .forecasting import Forecaster, index_positions
from .sequence import SequenceClassifier, SequenceRegressor, masked_mean

__all__ = [
    "Forecaster",
    "SequenceClassifier",
    "SequenceRegressor",
    "index_positions",
    "masked_mean",
]
