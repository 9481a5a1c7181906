"""Ready models: classifiers, regressors and forecasters (mirrors :mod:`sciml_seq.torch.models`)."""

from .forecasting import Forecaster, index_positions
from .sequence import SequenceClassifier, SequenceRegressor, masked_mean
from .ssm_stack import SSM_LAYERS, SSMSequenceModel

__all__ = [
    "SSM_LAYERS",
    "Forecaster",
    "SSMSequenceModel",
    "SequenceClassifier",
    "SequenceRegressor",
    "index_positions",
    "masked_mean",
]
