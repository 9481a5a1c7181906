"""Ready models: classifiers, regressors and forecasters (mirrors :mod:`sciml_seq.jax.models`)."""

from .forecasting import Forecaster, index_positions
from .rnn import RNNSequenceModel
from .sequence import SequenceClassifier, SequenceRegressor, masked_mean
from .sizing import MODELS, build_model, build_sized, count_parameters
from .ssm_stack import SSMSequenceModel
from .transformer_baseline import TransformerSequenceModel

__all__ = [
    "MODELS",
    "Forecaster",
    "RNNSequenceModel",
    "SSMSequenceModel",
    "TransformerSequenceModel",
    "build_model",
    "build_sized",
    "count_parameters",
    "SequenceClassifier",
    "SequenceRegressor",
    "index_positions",
    "masked_mean",
]
