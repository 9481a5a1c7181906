"""LSTM / GRU baseline: ``torch.nn.LSTM`` or ``GRU`` plus a linear decoder."""

from __future__ import annotations

from torch import Tensor, nn

from ...checks import check_choice
from ...models import check_backbone_options
from .common import check_sequence, pool

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
        opts = check_backbone_options(d_input, d_output, d_model, n_layers, pool, dropout)
        self.d_input, self.d_output, self.pool = opts.d_input, opts.d_output, opts.pool
        self.cell = check_choice("cell", cell, tuple(RNN_CELLS))
        self.rnn = RNN_CELLS[self.cell](
            self.d_input,
            opts.d_model,
            num_layers=opts.n_layers,
            batch_first=True,
            # acts between stacked layers only
            dropout=opts.dropout if opts.n_layers > 1 else 0.0,
        )
        self.decoder = nn.Linear(opts.d_model, self.d_output)

    def forward(self, x: Tensor) -> Tensor:
        """``x (batch, length, d_input)`` -> outputs (see the class docstring)."""
        h, _ = self.rnn(check_sequence(x, self.d_input))
        return self.decoder(pool(h, self.pool))
