"""Synchronised BatchNorm on any device (torch's ``nn.SyncBatchNorm`` trains on CUDA only; this one runs on the
CPU with gloo, which is how it is tested).

In training mode with more than one rank, the per-channel mean and variance are those of the global batch
(the sums are all-reduced in float64), and the backward pass all-reduces the two sums the input gradient needs,
so N ranks x batch B compute what one process computes on batch N x B. Weight and bias gradients stay local:
``DistributedDataParallel`` averages them like any other. Evaluation, and a single process, use plain
``F.batch_norm``. The state_dict keys are BatchNorm's: checkpoints load into the plain module.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm


def _reduce_dims(x: torch.Tensor) -> list[int]:
    return [d for d in range(x.dim()) if d != 1]


def _per_channel(v: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return v.reshape([1, -1] + [1] * (x.dim() - 2))


class _SyncBatchNormFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, weight: torch.Tensor | None, bias: torch.Tensor | None,
                running_mean: torch.Tensor | None, running_var: torch.Tensor | None, eps: float,
                momentum: float) -> torch.Tensor:
        dims = _reduce_dims(x)
        wide = x.detach().double()
        count = torch.tensor([x.numel() / x.shape[1]], dtype=torch.float64, device=x.device)
        stats = torch.cat([wide.sum(dims), (wide * wide).sum(dims), count])
        torch.distributed.all_reduce(stats)
        c = x.shape[1]
        total = stats[2 * c]
        mean = stats[:c] / total
        var = (stats[c:2 * c] / total - mean * mean).clamp(min=0)
        invstd = torch.rsqrt(var + eps)
        if running_mean is not None and running_var is not None:
            unbiased = var * total / max(float(total) - 1, 1.0)
            running_mean.mul_(1 - momentum).add_(mean.to(running_mean.dtype), alpha=momentum)
            running_var.mul_(1 - momentum).add_(unbiased.to(running_var.dtype), alpha=momentum)
        xhat = (x - _per_channel(mean.to(x.dtype), x)) * _per_channel(invstd.to(x.dtype), x)
        out = xhat
        if weight is not None:
            out = out * _per_channel(weight, x)
        if bias is not None:
            out = out + _per_channel(bias, x)
        ctx.save_for_backward(xhat, invstd.to(x.dtype), weight)
        ctx.total = float(total)
        ctx.has_bias = bias is not None
        return out

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[Any, ...]:
        xhat, invstd, weight = ctx.saved_tensors
        dims = _reduce_dims(grad)
        c = grad.shape[1]
        local_dy = grad.sum(dims)
        local_dy_xhat = (grad * xhat).sum(dims)
        sums = torch.cat([local_dy, local_dy_xhat]).double()
        torch.distributed.all_reduce(sums)
        mean_dy = (sums[:c] / ctx.total).to(grad.dtype)
        mean_dy_xhat = (sums[c:] / ctx.total).to(grad.dtype)
        scale = invstd if weight is None else invstd * weight
        grad_x = (grad - _per_channel(mean_dy, grad) - xhat * _per_channel(mean_dy_xhat, grad)) \
            * _per_channel(scale, grad)
        grad_weight = local_dy_xhat if weight is not None else None
        grad_bias = local_dy if ctx.has_bias else None
        return grad_x, grad_weight, grad_bias, None, None, None, None


class SyncBatchNorm(_BatchNorm):
    """BatchNorm over the global batch of all ranks; for inputs [N, C, ...] (BatchNorm1d and 2d alike)."""

    def _check_input_dim(self, x: torch.Tensor) -> None:
        if x.dim() < 2:
            raise ValueError(f"expected at least 2D input (got {x.dim()}D input)")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input_dim(x)
        synced = (self.training and torch.distributed.is_available() and torch.distributed.is_initialized()
                  and torch.distributed.get_world_size() > 1)
        if not synced:
            return super().forward(x)
        momentum = 0.0 if self.momentum is None else self.momentum
        if self.track_running_stats and self.num_batches_tracked is not None:
            self.num_batches_tracked.add_(1)
            if self.momentum is None:
                momentum = 1.0 / float(self.num_batches_tracked)
        track = self.track_running_stats
        # torch declares Function.apply without types: the result is forward's
        out: torch.Tensor = _SyncBatchNormFunction.apply(  # type: ignore[no-untyped-call]
            x, self.weight, self.bias, self.running_mean if track else None, self.running_var if track else None,
            self.eps, momentum)
        return out


def convert(module: nn.Module) -> nn.Module:
    """Every BatchNorm1d/2d in ``module`` replaced by :class:`SyncBatchNorm` with the same parameters and
    buffers (like ``nn.SyncBatchNorm.convert_sync_batchnorm``)."""
    if isinstance(module, _BatchNorm) and not isinstance(module, SyncBatchNorm):
        out = SyncBatchNorm(module.num_features, module.eps, module.momentum, module.affine,
                            module.track_running_stats)
        if module.affine:
            with torch.no_grad():
                out.weight = module.weight
                out.bias = module.bias
        out.running_mean = module.running_mean
        out.running_var = module.running_var
        out.num_batches_tracked = module.num_batches_tracked
        out.training = module.training
        return out
    for name, child in module.named_children():
        module.add_module(name, convert(child))
    return module
