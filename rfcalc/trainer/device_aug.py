"""The spec's albumentations transforms as batched tensor ops on the GPU, where each has an equivalent.

On a GPU the albumentations path (per image, in worker processes) is bound by the CPU: an H200 trained at a
third of the speed of the device-side path with 2 workers. So on CUDA, when every transform of
``train.augmentations`` is one of these, the run draws the same distribution of augmentations on the device:

- ``HorizontalFlip(p)``: a mirror image with probability p;
- ``Affine(translate_percent, scale, rotate, border_mode, p)``: scale (x and y drawn apart unless ``keep_ratio``),
  rotation about the centre and translation, bilinear, as albumentations draws them; ``BORDER_REFLECT_101``
  (reflection about the edge pixels) or ``BORDER_CONSTANT`` (``fill``);
- ``CoarseDropout`` with one hole of a fixed size: a hole inside the image with probability p, filled with the
  data set's mean (``fill: mean``) or a value.

Randomness is drawn per batch from (run seed, epoch, batch), like the fast path. Anything else (another
transform, another argument) keeps the albumentations path, with worker processes sized to the machine.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

Draw = Callable[..., torch.Tensor]


@dataclass(frozen=True)
class Flip:
    p: float


@dataclass(frozen=True)
class Affine:
    translate: tuple[float, float]  # fraction of the side, drawn per axis
    scale: tuple[float, float]
    rotate: tuple[float, float]  # degrees
    keep_ratio: bool
    reflect: bool  # BORDER_REFLECT_101, else constant
    fill: tuple[float, ...] | None
    p: float


@dataclass(frozen=True)
class Hole:
    height: int
    width: int
    fill: tuple[float, ...] | None  # None = the data set's mean
    p: float


Step = Flip | Affine | Hole
NAMES = ("HorizontalFlip", "Affine", "CoarseDropout")


def _pair(value: Any, name: str, symmetric: bool = False) -> tuple[float, float]:
    if isinstance(value, (int, float)):
        return (-float(value), float(value)) if symmetric else (float(value), float(value))
    if isinstance(value, (list, tuple)) and len(value) == 2 and all(isinstance(v, (int, float)) for v in value):
        return float(value[0]), float(value[1])
    raise ValueError(f"{name} {value!r}")


def _fill(value: Any) -> tuple[float, ...] | None:
    if value == "mean":
        return None
    values = value if isinstance(value, (list, tuple)) else [value]
    return tuple(float(v) for v in values)


def translate(steps: list[tuple[str, dict[str, Any]]]) -> list[Step] | str:
    """The device steps of ``train.augmentations``, or the reason (a transform or argument with no equivalent)."""
    out: list[Step] = []
    for name, args in steps:
        args = dict(args)
        p = float(args.pop("p", 0.5))
        try:
            if name == "HorizontalFlip" and not args:
                out.append(Flip(p))
            elif name == "Affine" and set(args) <= {"translate_percent", "scale", "rotate", "border_mode", "fill",
                                                    "keep_ratio"}:
                border = str(args.get("border_mode", "BORDER_CONSTANT")).removeprefix("cv2.")
                if border not in ("BORDER_REFLECT_101", "BORDER_CONSTANT"):
                    return f"Affine border_mode {border}"
                out.append(Affine(_pair(args.get("translate_percent", 0.0), "translate_percent", symmetric=True),
                                  _pair(args.get("scale", 1.0), "scale"),
                                  _pair(args.get("rotate", 0.0), "rotate", symmetric=True),
                                  bool(args.get("keep_ratio", False)), border == "BORDER_REFLECT_101",
                                  _fill(args.get("fill", 0)), p))
            elif name == "CoarseDropout" and set(args) <= {"num_holes_range", "hole_height_range",
                                                           "hole_width_range", "fill"}:
                holes = _pair(args.get("num_holes_range", [1, 1]), "num_holes_range")
                h = _pair(args.get("hole_height_range", [8, 8]), "hole_height_range")
                w = _pair(args.get("hole_width_range", [8, 8]), "hole_width_range")
                if holes != (1, 1) or h[0] != h[1] or w[0] != w[1] or not all(float(v).is_integer() for v in h + w):
                    return "CoarseDropout with other than one hole of a fixed size in pixels"
                out.append(Hole(int(h[0]), int(w[0]), _fill(args.get("fill", 0)), p))
            else:
                return f"{name}{'(' + ', '.join(args) + ')' if args else ''}"
        except ValueError as exc:
            return f"{name} {exc}"
    return out


def describe(steps: list[Step]) -> str:
    names = {Flip: "HorizontalFlip", Affine: "Affine", Hole: "CoarseDropout"}
    return ", ".join(names[type(s)] for s in steps) or "none"


class DevicePipeline:
    """``pipeline(x, draw)``: uint8 [B, H, W, C] -> uint8 [B, H, W, C]; ``draw(*shape)`` gives uniform [0, 1)
    numbers of shape (B, *shape) from the batch's generator."""

    def __init__(self, steps: list[Step], mean_pixels: torch.Tensor) -> None:
        self.steps, self.mean = steps, mean_pixels.float()
        self.fills: dict[tuple[float, ...], torch.Tensor] = {}

    def __call__(self, x: torch.Tensor, draw: Draw) -> torch.Tensor:
        out = x
        for step in self.steps:
            if isinstance(step, Flip):
                flip = draw() < step.p
                out = torch.where(flip[:, None, None, None], out.flip(2), out)
            elif isinstance(step, Affine):
                out = self._affine(out, step, draw)
            else:
                out = self._hole(out, step, draw)
        return out

    def _fill(self, fill: tuple[float, ...] | None, device: torch.device) -> torch.Tensor:
        """The fill colour on the device (made once: a small host-to-device copy per batch would make the host
        wait for the device)."""
        if fill is None:
            return self.mean.to(device)
        if fill not in self.fills:
            self.fills[fill] = torch.tensor(fill, device=device).expand_as(self.mean).contiguous()
        return self.fills[fill]

    def _affine(self, x: torch.Tensor, step: Affine, draw: Draw) -> torch.Tensor:
        b, h, w, _ = x.shape
        dev = x.device

        def uniform(lo: float, hi: float, *shape: int) -> torch.Tensor:
            return lo + (hi - lo) * draw(*shape)

        active = draw() < step.p
        sx = uniform(*step.scale)
        sy = sx if step.keep_ratio else uniform(*step.scale)
        angle = uniform(*step.rotate) * (math.pi / 180)
        tx = uniform(*step.translate) * w
        ty = uniform(*step.translate) * h
        one, zero = torch.ones_like(sx), torch.zeros_like(sx)
        sx, sy, angle = torch.where(active, sx, one), torch.where(active, sy, one), torch.where(active, angle, zero)
        tx, ty = torch.where(active, tx, zero), torch.where(active, ty, zero)
        # Forward map (pixels, about the centre c): out = R S (src - c) + c + t. affine_grid wants, for every output
        # point in normalised coordinates (align_corners=True: -1 and 1 are the centres of the edge pixels), the
        # source point: src_n = D^-1 (R S)^-1 (D out_n - t), with D = diag((w - 1) / 2, (h - 1) / 2).
        cos, sin = torch.cos(angle), torch.sin(angle)
        inv = torch.stack([torch.stack([cos / sx, sin / sx], -1), torch.stack([-sin / sy, cos / sy], -1)], -2)
        d = torch.stack([torch.full((), (w - 1) / 2, device=dev), torch.full((), (h - 1) / 2, device=dev)])
        linear = inv * d[None, None, :] / d[None, :, None]
        shift = -(inv @ torch.stack([tx, ty], -1)[..., None])[..., 0] / d
        theta = torch.cat([linear, shift[..., None]], -1)
        image = x.permute(0, 3, 1, 2).float()
        grid = torch.nn.functional.affine_grid(theta, [b, x.shape[3], h, w], align_corners=True)
        padding = "reflection" if step.reflect else "zeros"
        if not step.reflect:  # constant border: sample (image - fill), pad 0, add fill back
            fill = self._fill(step.fill, dev)[None, :, None, None]
            out = torch.nn.functional.grid_sample(image - fill, grid, "bilinear", padding, align_corners=True) + fill
        else:
            out = torch.nn.functional.grid_sample(image, grid, "bilinear", padding, align_corners=True)
        return out.round_().clamp_(0, 255).to(torch.uint8).permute(0, 2, 3, 1)

    def _hole(self, x: torch.Tensor, step: Hole, draw: Draw) -> torch.Tensor:
        b, h, w, _ = x.shape
        dev = x.device
        hh, hw = min(step.height, h), min(step.width, w)
        active = draw() < step.p
        top = (draw() * (h - hh + 1)).long()
        left = (draw() * (w - hw + 1)).long()
        ys = torch.arange(h, device=dev)[None, :]
        xs = torch.arange(w, device=dev)[None, :]
        in_y = (ys >= top[:, None]) & (ys < top[:, None] + hh) & active[:, None]
        in_x = (xs >= left[:, None]) & (xs < left[:, None] + hw)
        hole = in_y[:, :, None] & in_x[:, None, :]
        fill = self._fill(step.fill, dev).round().clamp(0, 255).to(torch.uint8)
        return torch.where(hole[..., None], fill, x)
