"""Eventprop: exact event-based gradients of the recurrent LIF network (docs/float_model.md, docs/eventprop_adjoint.md).

compute_batch runs the forward pass recording hidden spike events only, then the adjoint backwards
in time from those events; memory does not grow with T beyond the spike events.
"""
from .api import compute_batch, loss_and_gradients, predict
from .options import BatchResult, LossOptions

__all__ = ["compute_batch", "loss_and_gradients", "predict", "LossOptions", "BatchResult"]
