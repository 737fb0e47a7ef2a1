"""The strong view: a second, strongly augmented view of every training sample, for methods that declare
``needs_strong_view`` (MLKD). It is made beside the weak view (the pad-crop-flip of ``kdbench.train.batches``)
of the same rows, on the same uint8 tensors on the device, with no per-sample Python.

The policy is the one MLKD's reference code draws for its strong view (FixMatch's RandAugment, applied there with
PIL on one image at a time): its own pad-4 crop and flip, drawn apart from the weak view's; then ``OPS_PER_IMAGE``
operations chosen uniformly, with replacement, from the fourteen of :data:`OPS`, each at a magnitude drawn
uniformly from its range; then a Cutout square of side ``v · width``, ``v`` uniform in [0, 0.5), filled with grey
(125, 123, 114). Each operation gives PIL's pixels to the last bit (tests/test_method_mlkd.py checks all fourteen
and the Cutout against PIL): blends truncated to uint8, PIL's greyscale weights, its fixed-point affine maps with
black fill; only the random draws are torch's, not Python's and numpy's.

Every random number is drawn up front for every position of an epoch from one CPU generator seeded by the run
seed and the epoch, apart from the weak view's generator (so a run without a strong view draws exactly what it
drew before), and the rows of a batch choose their operations on the CPU: no host sync on a GPU.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from kdbench.contracts.datasets import batched_crop

#: The operations, in the reference's order, and the range each one's magnitude is drawn from.
OPS: tuple[tuple[str, float, float], ...] = (
    ("auto_contrast", 0.0, 1.0),
    ("brightness", 0.05, 0.95),
    ("color", 0.05, 0.95),
    ("contrast", 0.05, 0.95),
    ("equalize", 0.0, 1.0),
    ("identity", 0.0, 1.0),
    ("posterize", 4.0, 8.0),
    ("rotate", -30.0, 30.0),
    ("sharpness", 0.05, 0.95),
    ("shear_x", -0.3, 0.3),
    ("shear_y", -0.3, 0.3),
    ("solarize", 0.0, 256.0),
    ("translate_x", -0.3, 0.3),
    ("translate_y", -0.3, 0.3),
)
OP_INDEX = {name: i for i, (name, _, _) in enumerate(OPS)}
GEOMETRIC = ("rotate", "shear_x", "shear_y", "translate_x", "translate_y")
OPS_PER_IMAGE = 2
CUTOUT_MAX = 0.5  # the square's side, as a fraction of the width, is uniform in [0, CUTOUT_MAX)
CUTOUT_FILL = (125, 123, 114)
PADDING = 4
#: Added to the epoch's seed for the strong view's generator: a stream of its own, for any seed a suite uses.
SEED_OFFSET = 1 << 40


def strong_view_seed(epoch_seed: int) -> int:
    """The seed of one epoch's strong-view draws, from the seed of its order and weak augmentation."""
    return epoch_seed + SEED_OFFSET


@dataclass(frozen=True)
class StrongParams:
    """Every random choice of the strong view for a set of positions (kept on the CPU)."""

    dx: Tensor  # int64 crop offsets into the zero-padded image, in [0, 2·PADDING]
    dy: Tensor
    flip: Tensor  # bool: mirrored left-right after the crop
    ops: Tensor  # int64 N×OPS_PER_IMAGE indices into OPS, applied left to right
    magnitudes: Tensor  # float64 N×OPS_PER_IMAGE, each in its operation's range
    cutout: Tensor  # float64 side of the Cutout square as a fraction of the width, in [0, CUTOUT_MAX)
    cutout_x: Tensor  # float64 in [0, 1): where the square's centre falls (see StrongAugment.cutout)
    cutout_y: Tensor

    def __len__(self) -> int:
        return int(self.dx.shape[0])

    def __getitem__(self, index: slice | Tensor) -> StrongParams:
        return StrongParams(self.dx[index], self.dy[index], self.flip[index], self.ops[index],
                            self.magnitudes[index], self.cutout[index], self.cutout_x[index], self.cutout_y[index])


class StrongAugment:
    """The strong view's policy (module docstring): ``sample`` the parameters, then apply them to uint8 images."""

    def __repr__(self) -> str:
        return f"StrongAugment(crop+flip, {OPS_PER_IMAGE} of {len(OPS)} ops, cutout<{CUTOUT_MAX})"

    def sample(self, n: int, generator: torch.Generator | None) -> StrongParams:
        """Parameters for ``n`` positions, on the CPU. Draw order: dx, dy, flip, ops, magnitudes, cutout side,
        cutout x, cutout y."""
        hi = 2 * PADDING + 1
        dx = torch.randint(0, hi, (n,), generator=generator)
        dy = torch.randint(0, hi, (n,), generator=generator)
        flip = torch.randint(0, 2, (n,), generator=generator).bool()
        ops = torch.randint(0, len(OPS), (n, OPS_PER_IMAGE), generator=generator)
        u = torch.rand(n, OPS_PER_IMAGE, generator=generator, dtype=torch.float64)
        low = torch.tensor([lo for _, lo, _ in OPS], dtype=torch.float64)[ops]
        high = torch.tensor([hi_ for _, _, hi_ in OPS], dtype=torch.float64)[ops]
        cutout = torch.rand(n, generator=generator, dtype=torch.float64) * CUTOUT_MAX
        cx = torch.rand(n, generator=generator, dtype=torch.float64)
        cy = torch.rand(n, generator=generator, dtype=torch.float64)
        return StrongParams(dx, dy, flip, ops, low + (high - low) * u, cutout, cx, cy)

    def __call__(self, images_uint8: Tensor, params: StrongParams) -> Tensor:
        """The strong view of N×C×H×W uint8 images under ``params`` (one row each); uint8 out, same shape."""
        if images_uint8.ndim != 4:
            raise ValueError(f"expected N×C×H×W images, got shape {tuple(images_uint8.shape)}")
        n, _, h, w = images_uint8.shape
        if len(params) != n:
            raise ValueError(f"{len(params)} strong-view parameters for {n} images")
        device = images_uint8.device
        padded = F.pad(images_uint8, (PADDING, PADDING, PADDING, PADDING))
        x = batched_crop(padded, _to(params.dy, device), _to(params.dx, device), h, w, _to(params.flip, device))
        for k in range(OPS_PER_IMAGE):
            x = self._apply(x, params.ops[:, k], params.magnitudes[:, k])
        return cutout(x, params.cutout, params.cutout_x, params.cutout_y)

    def _apply(self, x: Tensor, ops: Tensor, magnitudes: Tensor) -> Tensor:
        """Each row's operation ``ops[i]`` at ``magnitudes[i]``: rows grouped by operation on the CPU."""
        out = x
        geometric = torch.zeros_like(ops, dtype=torch.bool)
        for name in GEOMETRIC:
            geometric |= ops == OP_INDEX[name]
        groups: list[tuple[str, Tensor]] = [("geometric", geometric.nonzero().squeeze(1))]
        for name, _, _ in OPS:
            if name not in GEOMETRIC and name != "identity":
                groups.append((name, (ops == OP_INDEX[name]).nonzero().squeeze(1)))
        for name, rows in groups:
            if rows.numel() == 0:
                continue
            index = _to(rows, x.device)
            if name == "geometric":
                changed = affine(x.index_select(0, index), affine_coefficients(ops[rows], magnitudes[rows], x.shape))
            else:
                changed = PIXEL_OPS[name](x.index_select(0, index), _to(magnitudes[rows], x.device))
            out = out.index_copy(0, index, changed)
        return out


def _to(t: Tensor, device: torch.device) -> Tensor:
    """A small CPU tensor onto the images' device without a stream sync (from pageable memory CUDA copies it to a
    staging buffer before returning, so the source may go at once)."""
    return t.to(device, non_blocking=True)


def _per_row(v: Tensor) -> Tensor:
    return v.view(-1, 1, 1, 1)


def _to_uint8(x: Tensor) -> Tensor:
    """PIL's store of a float result: clipped to [0, 255] and truncated."""
    return x.clamp(0, 255).to(torch.uint8)


def blend(degenerate: Tensor, image: Tensor, factor: Tensor) -> Tensor:
    """PIL's ``Image.blend(degenerate, image, factor)`` (what ImageEnhance does): ``d + f·(x − d)``, truncated."""
    d = degenerate.to(torch.float32)
    return _to_uint8(d + _per_row(factor.to(torch.float32)) * (image.to(torch.float32) - d))


def grayscale(x: Tensor) -> Tensor:
    """PIL's ``convert("L")``: ``(19595·R + 38470·G + 7471·B + 2¹⁵) >> 16`` per pixel, N×1×H×W (C=3), or the
    image itself when it has one channel (other channel counts: their mean)."""
    if x.shape[1] == 3:
        r, g, b = (x[:, i : i + 1].to(torch.int64) for i in range(3))
        return ((19595 * r + 38470 * g + 7471 * b + 0x8000) >> 16).to(torch.uint8)
    if x.shape[1] == 1:
        return x
    return x.to(torch.float32).mean(dim=1, keepdim=True).round().to(torch.uint8)


def auto_contrast(x: Tensor, _: Tensor) -> Tensor:
    """PIL's ``ImageOps.autocontrast``: each channel's value ``i`` to ``int(i·s − lo·s)``, ``s = 255 / (hi − lo)``
    from the channel's own min and max (in float64, as PIL's lookup table), clipped; a flat channel unchanged."""
    xf = x.to(torch.float64)
    lo = xf.amin(dim=(2, 3), keepdim=True)
    hi = xf.amax(dim=(2, 3), keepdim=True)
    scale = torch.full_like(hi, 255.0) / (hi - lo).clamp_min(1.0)  # not 255.0 / t: torch takes a reciprocal
    stretched = (xf * scale + -lo * scale).clamp(0, 255).to(torch.uint8)
    return torch.where(hi > lo, stretched, x)


def brightness(x: Tensor, v: Tensor) -> Tensor:
    return blend(torch.zeros_like(x), x, v)


def color(x: Tensor, v: Tensor) -> Tensor:
    return blend(grayscale(x).expand_as(x), x, v)


def contrast(x: Tensor, v: Tensor) -> Tensor:
    """Blend with a flat image of the greyscale mean, rounded (PIL's ``int(mean + 0.5)``)."""
    mean = grayscale(x).to(torch.float64).mean(dim=(1, 2, 3), keepdim=True)
    return blend(torch.floor(mean + 0.5).expand_as(x), x, v)


def equalize(x: Tensor, _: Tensor) -> Tensor:
    """PIL's ``ImageOps.equalize`` per channel: ``step = (pixels − count of the top value) // 255`` and
    ``lut[i] = (step // 2 + #pixels below i) // step`` (clipped to 255); unchanged where ``step`` is 0."""
    n, c, h, w = x.shape
    flat = x.reshape(n * c, h * w).to(torch.int64)
    levels = torch.arange(256, device=x.device)
    ordered = flat.sort(dim=1).values
    below = torch.searchsorted(ordered, levels.expand(n * c, 256).contiguous())  # pixels below each level
    top = h * w - torch.searchsorted(ordered, ordered[:, -1:].contiguous())  # pixels at the top value
    step = (h * w - top) // 255
    lut = ((step // 2 + below) // step.clamp_min(1)).clamp(max=255)
    lut = torch.where(step > 0, lut, levels.expand_as(lut))
    return lut.gather(1, flat).to(torch.uint8).view(n, c, h, w)


def posterize(x: Tensor, v: Tensor) -> Tensor:
    """Keep the top ``max(1, int(v))`` bits of every value."""
    bits = v.to(torch.int64).clamp_min(1)
    mask = (255 - ((1 << (8 - bits)) - 1)).to(torch.uint8)
    return x & _per_row(mask)


def sharpness(x: Tensor, v: Tensor) -> Tensor:
    """Blend with PIL's SMOOTH filter (3×3 kernel [[1,1,1],[1,5,1],[1,1,1]] / 13, rounded; the border rows and
    columns kept). The sums are integers and rounded in integer arithmetic: the same on every device."""
    _, _, h, w = x.shape
    xi = x.to(torch.int32)
    total = 4 * xi[:, :, 1 : h - 1, 1 : w - 1]
    for dy in range(3):
        for dx in range(3):
            total = total + xi[:, :, dy : h - 2 + dy, dx : w - 2 + dx]
    degenerate = xi.clone()
    degenerate[:, :, 1 : h - 1, 1 : w - 1] = (2 * total + 13) // 26  # round(total / 13); never a tie (13 is odd)
    return blend(degenerate, x, v)


def solarize(x: Tensor, v: Tensor) -> Tensor:
    """Values at or above the threshold ``v`` inverted (PIL: ``i if i < v else 255 − i``)."""
    return torch.where(x.to(torch.float32) < _per_row(v.to(torch.float32)), x, 255 - x)


PIXEL_OPS = {
    "auto_contrast": auto_contrast, "brightness": brightness, "color": color, "contrast": contrast,
    "equalize": equalize, "posterize": posterize, "sharpness": sharpness, "solarize": solarize,
}


def affine_coefficients(ops: Tensor, v: Tensor, shape: torch.Size) -> Tensor:
    """PIL's affine data ``(a, b, c, d, e, f)`` per row (float64, CPU): the output pixel at ``(x, y)`` reads the
    input near ``(a·x' + b·y' + c, d·x' + e·y' + f)``, ``x' = x + 0.5``, ``y' = y + 0.5`` (see :func:`affine`).

    rotate(v): ``Image.rotate(v)``, counter-clockwise by v degrees about the centre, its cosines and sines rounded
    to 15 decimals as PIL does; shear_x(v): ``(1, v, 0, 0, 1, 0)``; shear_y(v): ``(1, 0, 0, v, 1, 0)``;
    translate_x(v): ``(1, 0, v·width, 0, 1, 0)``; translate_y(v): ``(1, 0, 0, 0, 1, v·height)``."""
    h, w = int(shape[2]), int(shape[3])
    one, zero = torch.ones_like(v), torch.zeros_like(v)
    a, b, c, d, e, f = one.clone(), zero.clone(), zero.clone(), zero.clone(), one.clone(), zero.clone()
    rot = ops == OP_INDEX["rotate"]
    theta = -torch.remainder(v, 360.0) * (math.pi / 180.0)
    cos, sin = torch.round(torch.cos(theta), decimals=15), torch.round(torch.sin(theta), decimals=15)
    cx, cy = w / 2.0, h / 2.0
    a = torch.where(rot, cos, a)
    b = torch.where(rot, sin, b)
    d = torch.where(rot, -sin, d)
    e = torch.where(rot, cos, e)
    c = torch.where(rot, cos * -cx + sin * -cy + cx, c)
    f = torch.where(rot, -sin * -cx + cos * -cy + cy, f)
    b = torch.where(ops == OP_INDEX["shear_x"], v, b)
    d = torch.where(ops == OP_INDEX["shear_y"], v, d)
    c = torch.where(ops == OP_INDEX["translate_x"], v * w, c)
    f = torch.where(ops == OP_INDEX["translate_y"], v * h, f)
    return torch.stack([a, b, c, d, e, f], dim=1)


def _fix(v: Tensor) -> Tensor:
    """PIL's 16.16 fixed point: ``floor(v·65536 + 0.5)``."""
    return torch.floor(v * 65536.0 + 0.5).to(torch.int64)


def affine(x: Tensor, coefficients: Tensor) -> Tensor:
    """Nearest-neighbour affine resampling exactly as PIL's ``ImagingTransformAffine`` does it, with black fill.

    A map with ``b = d = 0`` (a translation) reads the source pixel ``floor(a·x' + c)``, ``floor(e·y' + f)``;
    any other map runs in 16.16 fixed point: ``xx = FIX(c + a/2 + b/2) + x·FIX(a) + y·FIX(b)`` and the source
    column is ``xx >> 16`` (likewise the row). A source outside the image gives 0."""
    n, ch, h, w = x.shape
    m = coefficients.to(torch.float64)
    ys = torch.arange(h, dtype=torch.float64).view(1, h, 1)
    xs = torch.arange(w, dtype=torch.float64).view(1, 1, w)
    a, b, c, d, e, f = (m[:, i].view(n, 1, 1) for i in range(6))
    scaled = ((b == 0) & (d == 0)).view(n, 1, 1)
    # the translation (scale) path, in floating point
    sx = torch.floor(c + a * 0.5 + xs * a + 0 * ys).to(torch.int64)
    sy = torch.floor(f + e * 0.5 + ys * e + 0 * xs).to(torch.int64)
    # the fixed-point path
    a0, a1, a3, a4 = _fix(a), _fix(b), _fix(d), _fix(e)
    a2, a5 = _fix(c + a * 0.5 + b * 0.5), _fix(f + d * 0.5 + e * 0.5)
    xi, yi = xs.to(torch.int64), ys.to(torch.int64)
    fx = torch.div(a2 + xi * a0 + yi * a1, 65536, rounding_mode="floor")
    fy = torch.div(a5 + xi * a3 + yi * a4, 65536, rounding_mode="floor")
    src_x = _to(torch.where(scaled, sx, fx), x.device)
    src_y = _to(torch.where(scaled, sy, fy), x.device)
    inside = (src_x >= 0) & (src_x < w) & (src_y >= 0) & (src_y < h)
    index = (src_y.clamp(0, h - 1) * w + src_x.clamp(0, w - 1)).view(n, 1, h * w).expand(n, ch, h * w)
    out = x.reshape(n, ch, h * w).gather(2, index).view(n, ch, h, w)
    return torch.where(inside.view(n, 1, h, w), out, torch.zeros_like(out))


def cutout(x: Tensor, side: Tensor, at_x: Tensor, at_y: Tensor) -> Tensor:
    """The reference's Cutout: side ``s = v·width``; the centre ``x_c = width + (1 − width)·u`` (numpy's
    ``uniform(width)``, i.e. between 1 and width), likewise ``y_c`` with the height; ``x0 = int(max(0, x_c −
    s/2))``, ``x1 = min(width, x0 + s)``; PIL fills the rectangle's pixels ``x0..int(x1)`` and ``y0..int(y1)``,
    both ends included (clipped to the image), with grey. ``v = 0`` leaves the image as it is."""
    n, c, h, w = x.shape
    s = side * w
    x0 = torch.floor(torch.clamp(w + (1 - w) * at_x - s / 2, min=0))
    y0 = torch.floor(torch.clamp(h + (1 - h) * at_y - s / 2, min=0))
    x1 = torch.floor(torch.minimum(x0 + s, torch.full_like(s, float(w))))
    y1 = torch.floor(torch.minimum(y0 + s, torch.full_like(s, float(h))))
    x0 = torch.where(side > 0, x0, torch.full_like(x0, float(w)))  # v = 0: no pixel at all
    bounds = _to(torch.stack([x0, x1, y0, y1], dim=1).to(torch.int64), x.device).view(n, 4, 1, 1)
    cols = torch.arange(w, device=x.device).view(1, 1, w)
    rows = torch.arange(h, device=x.device).view(1, h, 1)
    inside = (cols >= bounds[:, 0]) & (cols <= bounds[:, 1]) & (rows >= bounds[:, 2]) & (rows <= bounds[:, 3])
    fill = CUTOUT_FILL if c == 3 else (CUTOUT_FILL[0],) * c
    grey = _to(torch.tensor(fill, dtype=torch.uint8), x.device).view(1, c, 1, 1)
    return torch.where(inside.view(n, 1, h, w), grey, x)
