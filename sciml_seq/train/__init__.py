"""Training utilities.

Submodules are imported explicitly (``from sciml_seq.train.param_groups import
param_groups``) so that this package stays light:

* ``param_groups``: optimizer parameter groups / optax labels from layer hints;
* time-dependent operators (Poseidon-style all-to-all training):
  ``pairs`` (pair index math, numpy batches), ``pair_dataset`` (torch dataset),
  ``losses`` and ``metrics`` (relative L1/L2 over channel groups, any framework),
  ``schedule`` (warm-up + cosine), ``trainer`` (PyTorch: AMP, clipping, NaN guard,
  DDP), ``checkpoint`` (safetensors, exact resume), ``distributed`` (torchrun),
  ``jax_loop`` (equinox + optax), ``evaluate`` and ``predict`` (one-shot, rollout),
  ``operator_models`` (scot-t/b/l, fno), ``operator_run`` and ``plots`` (the
  ``sciml-seq train operator`` / ``sciml-seq evaluate`` pipeline).
"""
