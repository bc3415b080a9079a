"""Adaptive discriminator augmentation (Karras et al. 2020, "Training Generative Adversarial Networks with Limited
Data"), as NVlabs/stylegan2-ada-pytorch's ``training/augment.py`` defines it.

:class:`AugmentPipe` augments every image the discriminator sees, reals and fakes alike, with differentiable ops on
the images' device. Each op is applied to each image with probability ``p`` (times its multiplier), ``p`` being a
buffer that :class:`AdaptiveAugment` moves every few steps from ``r_t = E[sign(D(reals))]`` toward a target. The
``bgc`` pipe (the reference's default) is the blit ops (x-flip, rotation by 90 degrees, integer translation), the
general geometric ops (isotropic scaling, rotation, anisotropic scaling, fractional translation) and the colour ops
(brightness, contrast, luma flip, hue rotation, saturation).

The ops draw their random numbers in the reference's order and compose as it does: the geometric ones into one
inverse affine matrix executed once (reflection padding, 2x upsampling with the orthogonal ``sym6`` low-pass, a
bilinear resampling, 2x downsampling), the colour ones into one 4x4 matrix in RGB space. Kornia's warps cannot be
used for the first (they have no filtered 2x oversampling around the resampling, and their reflection is of the
sampling grid, not a padding of the image), nor its colour adjustments for the second (hue and saturation work in
HSV, outputs are clipped); both are therefore written here with torch's ``affine_grid``/``grid_sample`` and matrix
products, which keep the pipe differentiable (R1 differentiates through it twice).
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["AugmentPipe", "AdaptiveAugment", "PIPES", "AUGMENT_MODES", "create_augment"]

#: Augmentation sets by the reference's names (``--augpipe``): probability multipliers of the ops.
_BLIT = {"xflip": 1, "rotate90": 1, "xint": 1}
_GEOM = {"scale": 1, "rotate": 1, "aniso": 1, "xfrac": 1}
_COLOR = {"brightness": 1, "contrast": 1, "lumaflip": 1, "hue": 1, "saturation": 1}
PIPES: dict[str, dict[str, float]] = {"blit": _BLIT, "geom": _GEOM, "color": _COLOR, "bg": {**_BLIT, **_GEOM},
                                      "bgc": {**_BLIT, **_GEOM, **_COLOR}}
AUGMENT_MODES = ("ada", "fixed", "none")

# The low-pass of the sym6 wavelet (orthogonal: upsampling and downsampling with it is the identity on the image).
_SYM6 = (0.015404109327027373, 0.0034907120842174702, -0.11799011114819057, -0.048311742585633, 0.4910559419267466,
         0.787641141030194, 0.3379294217276218, -0.07263752278646252, -0.021060292512300564, 0.04472490177066578,
         0.0017677118642428036, -0.007800708325034148)


# ------------------------------------------------------------------------------------------ matrices
def _matrix(rows: list[list[Any]], batch: int, device: torch.device) -> torch.Tensor:
    """A (batch, n, n) stack of matrices whose entries are numbers or (batch,) tensors."""
    entries = [e.to(device=device, dtype=torch.float32) if isinstance(e, torch.Tensor)
               else torch.full((batch,), float(e), device=device) for row in rows for e in row]
    return torch.stack(entries, dim=-1).reshape(batch, len(rows), len(rows[0]))


def _translate2d(tx, ty, batch: int, device) -> torch.Tensor:
    return _matrix([[1, 0, tx], [0, 1, ty], [0, 0, 1]], batch, device)


def _scale2d(sx, sy, batch: int, device) -> torch.Tensor:
    return _matrix([[sx, 0, 0], [0, sy, 0], [0, 0, 1]], batch, device)


def _rotate2d(theta: torch.Tensor, batch: int, device) -> torch.Tensor:
    c, s = torch.cos(theta), torch.sin(theta)
    return _matrix([[c, -s, 0], [s, c, 0], [0, 0, 1]], batch, device)


def _translate3d(t: torch.Tensor, batch: int, device) -> torch.Tensor:
    return _matrix([[1, 0, 0, t], [0, 1, 0, t], [0, 0, 1, t], [0, 0, 0, 1]], batch, device)


def _scale3d(s: torch.Tensor, batch: int, device) -> torch.Tensor:
    return _matrix([[s, 0, 0, 0], [0, s, 0, 0], [0, 0, s, 0], [0, 0, 0, 1]], batch, device)


def _rotate3d(v: torch.Tensor, theta: torch.Tensor, batch: int, device) -> torch.Tensor:
    """Rotation by ``theta`` about the unit axis ``v`` (Rodrigues), homogeneous."""
    x, y, z = (float(a) for a in v[:3])
    s, c = torch.sin(theta), torch.cos(theta)
    cc = 1 - c
    return _matrix([[x * x * cc + c, x * y * cc - z * s, x * z * cc + y * s, 0],
                    [y * x * cc + z * s, y * y * cc + c, y * z * cc - x * s, 0],
                    [z * x * cc - y * s, z * y * cc + x * s, z * z * cc + c, 0],
                    [0, 0, 0, 1]], batch, device)


# ------------------------------------------------------------------------------- FIR resampling
def _fir(x: torch.Tensor, f: torch.Tensor, up: int, down: int, pad: tuple[int, int], gain: float,
         flip: bool) -> torch.Tensor:
    """Upsample by zero insertion, pad (negative: crop), filter with the separable 1-D ``f``, keep every
    ``down``-th sample: the reference's ``upfirdn2d`` for one symmetric pad on every side."""
    b, c, h, w = x.shape
    if up > 1:
        x = x.reshape(b, c, h, 1, w, 1)
        x = F.pad(x, [0, up - 1, 0, 0, 0, up - 1]).reshape(b, c, h * up, w * up)
    lo, hi = pad
    x = F.pad(x, [max(lo, 0), max(hi, 0), max(lo, 0), max(hi, 0)])
    x = x[:, :, max(-lo, 0):x.shape[2] - max(-hi, 0), max(-lo, 0):x.shape[3] - max(-hi, 0)]
    f = (f * math.sqrt(gain)).to(x.dtype)
    if not flip:  # a true convolution (conv2d correlates)
        f = f.flip(0)
    k = f.numel()
    x = F.conv2d(x, f.view(1, 1, 1, k).expand(c, 1, 1, k), groups=c)
    x = F.conv2d(x, f.view(1, 1, k, 1).expand(c, 1, k, 1), groups=c)
    return x[:, :, ::down, ::down]


def _upsample2x(x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    k = f.numel()
    return _fir(x, f, up=2, down=1, pad=((k + 1) // 2, (k - 2) // 2), gain=4.0, flip=False)


def _downsample2x(x: torch.Tensor, f: torch.Tensor, crop: int) -> torch.Tensor:
    k = f.numel()
    return _fir(x, f, up=1, down=2, pad=(-crop + (k - 1) // 2, -crop + (k - 2) // 2), gain=1.0, flip=True)


# ------------------------------------------------------------------------------------------ the pipe
class AugmentPipe(nn.Module):
    """The reference's augmentation pipeline (the blit, geometric and colour ops), each op applied per image with
    probability ``multiplier * p``.

    Args:
        xflip, rotate90, xint: multipliers of x-flip, rotation by a multiple of 90 degrees, integer translation.
        scale, rotate, aniso, xfrac: multipliers of isotropic scaling, rotation, anisotropic scaling, fractional
            translation (rotation is drawn before and after the anisotropic scaling, each with a probability such
            that either happens with probability ``rotate * p``).
        brightness, contrast, lumaflip, hue, saturation: multipliers of the colour ops (hue and saturation act on
            colour images only).
        xint_max, scale_std, rotate_max, aniso_std, xfrac_std, brightness_std, contrast_std, hue_max,
            saturation_std: the ops' strengths, the reference's defaults (standard deviations of the log2 scale
            factors, ranges as fractions of the image side or of a full turn).
        p: the initial probability (the ``p`` buffer; :class:`AdaptiveAugment` adjusts it).
    """

    def __init__(self, xflip: float = 0, rotate90: float = 0, xint: float = 0, scale: float = 0, rotate: float = 0,
                 aniso: float = 0, xfrac: float = 0, brightness: float = 0, contrast: float = 0,
                 lumaflip: float = 0, hue: float = 0, saturation: float = 0, xint_max: float = 0.125,
                 scale_std: float = 0.2, rotate_max: float = 1.0, aniso_std: float = 0.2, xfrac_std: float = 0.125,
                 brightness_std: float = 0.2, contrast_std: float = 0.5, hue_max: float = 1.0,
                 saturation_std: float = 1.0, p: float = 0.0) -> None:
        super().__init__()
        self.xflip, self.rotate90, self.xint, self.xint_max = float(xflip), float(rotate90), float(xint), xint_max
        self.scale, self.rotate, self.aniso, self.xfrac = float(scale), float(rotate), float(aniso), float(xfrac)
        self.scale_std, self.rotate_max, self.aniso_std, self.xfrac_std = scale_std, rotate_max, aniso_std, xfrac_std
        self.brightness, self.contrast, self.lumaflip = float(brightness), float(contrast), float(lumaflip)
        self.hue, self.saturation = float(hue), float(saturation)
        self.brightness_std, self.contrast_std = brightness_std, contrast_std
        self.hue_max, self.saturation_std = hue_max, saturation_std
        self.register_buffer("p", torch.tensor(float(p)))
        self.register_buffer("filter", torch.tensor(_SYM6) / sum(_SYM6), persistent=False)

    @classmethod
    def from_name(cls, name: str, **kwargs: Any) -> AugmentPipe:
        """The pipe of a reference ``--augpipe`` name (``bgc``, ``bg``, ``blit``, ``geom``, ``color``)."""
        if name not in PIPES:
            raise ValueError(f"augpipe={name!r}: expected one of {', '.join(PIPES)} (the reference's sets; bgc is "
                             "its default).")
        return cls(**PIPES[name], **kwargs)

    def _chosen(self, value: torch.Tensor, identity: float, multiplier: float, shape: tuple[int, ...]) -> torch.Tensor:
        """``value`` where a fresh uniform draw falls below ``multiplier * p``, else ``identity``."""
        keep = torch.rand(shape, device=value.device) < multiplier * self.p
        return torch.where(keep, value, torch.full_like(value, identity))

    def geometry(self, b: int, h: int, w: int, device: torch.device) -> torch.Tensor | None:
        """The inverse transform (output pixel -> input pixel, centred coordinates) of each image, or None."""
        g = None

        def then(m: torch.Tensor) -> None:
            nonlocal g
            g = m if g is None else g @ m

        if self.xflip > 0:
            i = self._chosen(torch.floor(torch.rand(b, device=device) * 2), 0.0, self.xflip, (b,))
            then(_scale2d(1 / (1 - 2 * i), 1, b, device))
        if self.rotate90 > 0:
            i = self._chosen(torch.floor(torch.rand(b, device=device) * 4), 0.0, self.rotate90, (b,))
            then(_rotate2d(math.pi / 2 * i, b, device))
        if self.xint > 0:
            t = (torch.rand(b, 2, device=device) * 2 - 1) * self.xint_max
            t = self._chosen(t, 0.0, self.xint, (b, 1))
            then(_translate2d(-torch.round(t[:, 0] * w), -torch.round(t[:, 1] * h), b, device))
        if self.scale > 0:
            s = self._chosen(torch.exp2(torch.randn(b, device=device) * self.scale_std), 1.0, self.scale, (b,))
            then(_scale2d(1 / s, 1 / s, b, device))
        p_rot = 1 - torch.sqrt((1 - self.rotate * self.p).clamp(0, 1))  # P(pre or post rotation) = rotate * p
        if self.rotate > 0:
            theta = (torch.rand(b, device=device) * 2 - 1) * math.pi * self.rotate_max
            theta = torch.where(torch.rand(b, device=device) < p_rot, theta, torch.zeros_like(theta))
            then(_rotate2d(theta, b, device))
        if self.aniso > 0:
            s = self._chosen(torch.exp2(torch.randn(b, device=device) * self.aniso_std), 1.0, self.aniso, (b,))
            then(_scale2d(1 / s, s, b, device))
        if self.rotate > 0:
            theta = (torch.rand(b, device=device) * 2 - 1) * math.pi * self.rotate_max
            theta = torch.where(torch.rand(b, device=device) < p_rot, theta, torch.zeros_like(theta))
            then(_rotate2d(theta, b, device))
        if self.xfrac > 0:
            t = self._chosen(torch.randn(b, 2, device=device) * self.xfrac_std, 0.0, self.xfrac, (b, 1))
            then(_translate2d(-t[:, 0] * w, -t[:, 1] * h, b, device))
        return g

    def warp(self, images: torch.Tensor, g_inv: torch.Tensor) -> torch.Tensor:
        """Resample ``images`` through the inverse transforms ``g_inv``: reflect-pad as far as the transformed
        corners reach, upsample 2x, sample bilinearly, downsample 2x (the reference's execution, exactly)."""
        b, c, h, w = images.shape
        device = images.device
        cx, cy = (w - 1) / 2, (h - 1) / 2
        corners = torch.tensor([[-cx, -cy, 1], [cx, -cy, 1], [cx, cy, 1], [-cx, cy, 1]], device=device).t()
        reach = (g_inv @ corners)[:, :2, :].permute(1, 0, 2).flatten(1)  # [xy, batch * corner]
        margin = torch.cat([-reach, reach]).max(dim=1).values  # x0, y0, x1, y1
        tap_pad = self.filter.numel() // 4
        margin = margin + torch.tensor([tap_pad * 2 - cx, tap_pad * 2 - cy] * 2, device=device)
        margin = margin.clamp(min=0).minimum(torch.tensor([w - 1, h - 1] * 2, device=device, dtype=margin.dtype))
        mx0, my0, mx1, my1 = (int(v) for v in margin.ceil().tolist())
        images = F.pad(images, [mx0, mx1, my0, my1], mode="reflect")
        g_inv = _translate2d((mx0 - mx1) / 2, (my0 - my1) / 2, b, device) @ g_inv
        images = _upsample2x(images, self.filter)
        g_inv = _scale2d(2, 2, b, device) @ g_inv @ _scale2d(0.5, 0.5, b, device)
        g_inv = _translate2d(-0.5, -0.5, b, device) @ g_inv @ _translate2d(0.5, 0.5, b, device)
        out_h, out_w = (h + tap_pad * 2) * 2, (w + tap_pad * 2) * 2
        to_unit = _scale2d(2 / images.shape[3], 2 / images.shape[2], b, device)
        g_inv = to_unit @ g_inv @ _scale2d(out_w / 2, out_h / 2, b, device)
        grid = F.affine_grid(g_inv[:, :2, :].to(images.dtype), [b, c, out_h, out_w], align_corners=False)
        images = F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        return _downsample2x(images, self.filter, crop=tap_pad * 2)

    def colour(self, b: int, channels: int, device: torch.device) -> torch.Tensor | None:
        """The colour transform of each image, a (b, 4, 4) matrix acting on homogeneous RGB, or None."""
        eye = torch.eye(4, device=device)
        m = None

        def then(t: torch.Tensor) -> None:
            nonlocal m
            m = t if m is None else t @ m

        v = torch.tensor([1.0, 1.0, 1.0, 0.0], device=device) / math.sqrt(3)  # the luma axis
        vv = torch.outer(v, v)
        if self.brightness > 0:
            t = self._chosen(torch.randn(b, device=device) * self.brightness_std, 0.0, self.brightness, (b,))
            then(_translate3d(t, b, device))
        if self.contrast > 0:
            s = self._chosen(torch.exp2(torch.randn(b, device=device) * self.contrast_std), 1.0, self.contrast, (b,))
            then(_scale3d(s, b, device))
        if self.lumaflip > 0:
            i = self._chosen(torch.floor(torch.rand(b, 1, 1, device=device) * 2), 0.0, self.lumaflip, (b, 1, 1))
            then(eye - 2 * vv * i)  # a Householder reflection through the plane normal to the luma axis
        if self.hue > 0 and channels > 1:
            theta = (torch.rand(b, device=device) * 2 - 1) * math.pi * self.hue_max
            theta = self._chosen(theta, 0.0, self.hue, (b,))
            then(_rotate3d(v, theta, b, device))
        if self.saturation > 0 and channels > 1:
            s = torch.exp2(torch.randn(b, 1, 1, device=device) * self.saturation_std)
            s = self._chosen(s, 1.0, self.saturation, (b, 1, 1))
            then(vv + (eye - vv) * s)
        return m

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.dim() != 4:
            raise ValueError(f"AugmentPipe takes a batch (B, C, H, W), got shape {tuple(images.shape)}.")
        b, c, h, w = images.shape
        g_inv = self.geometry(b, h, w, images.device)
        if g_inv is not None:
            images = self.warp(images, g_inv)
        m = self.colour(b, c, images.device)
        if m is not None:
            m = m.to(images.dtype)
            flat = images.reshape(b, c, h * w)
            if c == 3:
                flat = m[:, :3, :3] @ flat + m[:, :3, 3:]
            elif c == 1:  # a grey image: the mean of the RGB rows applied to (g, g, g)
                grey = m[:, :3, :].mean(dim=1, keepdim=True)
                flat = flat * grey[:, :, :3].sum(dim=2, keepdim=True) + grey[:, :, 3:]
            else:
                raise ValueError(f"AugmentPipe's colour ops take RGB (3 channels) or grey (1) images, got {c} "
                                 "channels; use augpipe=bg (geometry only).")
            images = flat.reshape(b, c, h, w)
        return images


# ------------------------------------------------------------------------------------ adapting p
class AdaptiveAugment:
    """ADA's heuristic: every ``interval`` steps, ``p += sign(r_t - target) * images / (kimg * 1000)``, floored
    at 0, where ``r_t`` is the mean sign of the discriminator's logits on (augmented) reals since the last
    adjustment and ``images`` the images seen in those steps (``interval`` times the global batch). So ``p`` can
    move by one unit every ``kimg`` thousand images. Everything stays on the device: no host wait per step.

    Args:
        pipe: the pipe whose ``p`` is adjusted.
        target: the ``r_t`` to steer toward (0.6, the reference's).
        interval: steps between adjustments (4).
        kimg: thousands of images for ``p`` to move by 1 (500; 100 for transfer learning).
        batch_size: images per step over all processes.
    """

    def __init__(self, pipe: AugmentPipe, target: float = 0.6, interval: int = 4, kimg: float = 500,
                 batch_size: int = 64) -> None:
        if not 0 <= target <= 1:
            raise ValueError(f"ada_target={target}: expected a value in [0, 1] (0.6 is the reference's).")
        if interval < 1 or kimg <= 0:
            raise ValueError(f"ada_interval={interval}, ada_kimg={kimg}: expected an interval >= 1 and kimg > 0.")
        self.pipe, self.target, self.interval, self.kimg = pipe, float(target), int(interval), float(kimg)
        self.batch_size = int(batch_size)
        device = pipe.p.device
        self.sign_sum = torch.zeros((), dtype=torch.float64, device=device)
        self.sign_count = torch.zeros((), dtype=torch.float64, device=device)
        self.rt = torch.full((), float("nan"), dtype=torch.float64, device=device)  # the r_t of the last adjustment

    @property
    def step_size(self) -> float:
        return self.batch_size * self.interval / (self.kimg * 1000)

    def observe(self, real_logits: torch.Tensor) -> None:
        """Record the signs of the discriminator's logits on reals (every D pass on reals, regularised or not)."""
        signs = real_logits.detach().sign()
        self.sign_sum += signs.sum(dtype=torch.float64)
        self.sign_count += signs.numel()

    def update(self, steps_done: int, reduce=None) -> None:
        """After training step ``steps_done`` (1-based): adjust ``p`` when it is a multiple of ``interval``.

        ``reduce`` sums a tensor over the processes of a distributed run (in place), so every process takes the
        same ``r_t`` from every process's reals.
        """
        if steps_done % self.interval:
            return
        stats = torch.stack([self.sign_sum, self.sign_count])
        if reduce is not None:
            reduce(stats)
        self.rt = stats[0] / stats[1]
        adjust = torch.sign(self.rt - self.target) * self.step_size
        self.pipe.p.copy_((self.pipe.p + adjust).clamp(min=0))
        self.sign_sum.zero_()
        self.sign_count.zero_()

    def state_tensors(self) -> dict[str, torch.Tensor]:
        return {"p": self.pipe.p, "sign_sum": self.sign_sum, "sign_count": self.sign_count, "rt": self.rt}

    def load_state_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        self.pipe.p.copy_(tensors["p"])
        self.sign_sum.copy_(tensors["sign_sum"])
        self.sign_count.copy_(tensors["sign_count"])
        self.rt.copy_(tensors["rt"])


def create_augment(mode: str, *, pipe: str = "bgc", p: float = 0.0, target: float = 0.6, interval: int = 4,
                   kimg: float = 500, batch_size: int = 64,
                   device: torch.device | str = "cpu") -> tuple[AugmentPipe | None, AdaptiveAugment | None]:
    """The pipe and its controller for a mode of the reference's ``--aug``: ``ada`` (p from 0, adapted), ``fixed``
    (p as given) or ``none``."""
    if mode not in AUGMENT_MODES:
        raise ValueError(f"augment={mode!r}: expected one of {', '.join(AUGMENT_MODES)} (e.g. -o augment=ada).")
    if not 0 <= p <= 1:
        raise ValueError(f"augment_p={p}: expected a probability in [0, 1].")
    if mode == "none":
        return None, None
    augment = AugmentPipe.from_name(pipe, p=p if mode == "fixed" else 0.0).to(device)
    if mode == "fixed":
        return augment, None
    return augment, AdaptiveAugment(augment, target=target, interval=interval, kimg=kimg, batch_size=batch_size)
