"""Ready models: classifiers, regressors and forecasters (mirrors :mod:`sciml_seq.jax.models`)."""

from .fit import FitLog, evaluate_forecaster, fit_forecaster, masked_mse, predict, series_tensors
from .forecasting import Forecaster, index_positions
from .rnn import RNNSequenceModel
from .sequence import SequenceClassifier, SequenceRegressor, masked_mean
from .sizing import MODELS, build_model, build_sized, count_parameters
from .ssm_stack import SSMSequenceModel
from .transformer_baseline import TransformerSequenceModel

__all__ = [
    "MODELS",
    "FitLog",
    "Forecaster",
    "RNNSequenceModel",
    "SSMSequenceModel",
    "TransformerSequenceModel",
    "build_model",
    "build_sized",
    "count_parameters",
    "SequenceClassifier",
    "SequenceRegressor",
    "evaluate_forecaster",
    "fit_forecaster",
    "index_positions",
    "masked_mean",
    "masked_mse",
    "predict",
    "series_tensors",
]
