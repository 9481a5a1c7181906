"""LSTM / GRU baseline: ``torch.nn.LSTM`` or ``GRU`` plus a linear decoder."""

from __future__ import annotations

from torch import Tensor, nn

from ...checks import check_choice, check_int, check_real
from .common import POOLS, check_sequence, pool

__all__ = ["RNN_CELLS", "RNNSequenceModel"]

#: The recurrent cells :class:`RNNSequenceModel` accepts.
RNN_CELLS: dict[str, type[nn.RNNBase]] = {"lstm": nn.LSTM, "gru": nn.GRU}


class RNNSequenceModel(nn.Module):
    """A stacked LSTM or GRU (``batch_first``) with a linear decoder.

    Parameters
    ----------
    d_input, d_output: input channels; outputs per prediction.
    d_model: hidden size.
    n_layers: stacked recurrent layers.
    cell: ``"lstm"`` (default) or ``"gru"``.
    pool: ``"last"`` (default), ``"mean"`` -> ``(batch, d_output)``; ``"none"`` ->
        ``(batch, length, d_output)``.
    dropout: between stacked layers (PyTorch's ``dropout`` argument).

    Shapes: ``forward(x (batch, length, d_input))`` -> ``(batch, d_output)`` or
    ``(batch, length, d_output)``.
    """

    def __init__(
        self,
        d_input: int,
        d_output: int,
        *,
        d_model: int = 64,
        n_layers: int = 1,
        cell: str = "lstm",
        pool: str = "last",
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.d_input = check_int("d_input", d_input)
        self.d_output = check_int("d_output", d_output)
        self.cell = check_choice("cell", cell, tuple(RNN_CELLS))
        self.pool = check_choice("pool", pool, POOLS)
        d_model = check_int("d_model", d_model)
        n_layers = check_int("n_layers", n_layers)
        dropout = check_real("dropout", dropout, ge=0.0, lt=1.0)
        self.rnn = RNN_CELLS[self.cell](
            self.d_input,
            d_model,
            num_layers=n_layers,
            batch_first=True,
            dropout=dropout if n_layers > 1 else 0.0,  # acts between stacked layers only
        )
        self.decoder = nn.Linear(d_model, self.d_output)

    def forward(self, x: Tensor) -> Tensor:
        """``x (batch, length, d_input)`` -> outputs (see the class docstring)."""
        h, _ = self.rnn(check_sequence(x, self.d_input))
        return self.decoder(pool(h, self.pool))
