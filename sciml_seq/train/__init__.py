"""Training utilities: optimizer parameter groups from layer hints, ... .

Submodules are imported explicitly (``from sciml_seq.train.param_groups import
param_groups``) so that this package stays light.
"""
