"""Ready models: classifiers, regressors and forecasters (mirrors :mod:`sciml_seq.jax.models`)."""

from .fit import MOVED as _MOVED
from .fit import moved as _moved
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


def __getattr__(name: str):
    """The forecaster's training helpers, moved to :mod:`sciml_seq.train.forecasting` (they
    warn here; see :mod:`sciml_seq.torch.models.fit`)."""
    if name in _MOVED:
        return _moved(name, __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
