"""Augmenting framed lines the way real paper and pens differ, a whole batch at a time.

Lines reach the reader as ink maps (bright ink on black, `framing.frame_line`), so each change
is made where it shows there: slant and elastic wobble of the hand, a thicker or thinner pen,
blur, faint or heavy ink, grain, and what preprocessing leaves of textured paper, ruled lines
and uneven light. Everything runs on the batch tensor with a seeded generator, so it costs
little next to the model and the same seed gives the same batch.
"""

import torch
import torch.nn.functional as F


def _chance(p, n, g):
    return torch.rand(n, generator=g) < p


def geometry(x, g, slant=0.35, wobble=1.5, scale=0.12):
    """Per-line slant (horizontal shear), vertical scale and shift, and a smooth elastic wobble (px)."""
    n, _, h, w = x.shape
    theta = torch.zeros(n, 2, 3)
    s = 1 + (torch.rand(n, generator=g) * 2 - 1) * scale
    theta[:, 0, 0] = 1.0
    theta[:, 0, 1] = (torch.rand(n, generator=g) * 2 - 1) * slant * h / w  # shear in normalised units
    theta[:, 1, 1] = 1 / s
    theta[:, 1, 2] = (torch.rand(n, generator=g) * 2 - 1) * 0.06
    grid = F.affine_grid(theta, (n, 1, h, w), align_corners=False)
    if wobble > 0:
        coarse = torch.randn(n, 2, 3, max(2, w // 24), generator=g) * wobble
        field = F.interpolate(coarse, size=(h, w), mode="bicubic", align_corners=False).permute(0, 2, 3, 1)
        grid = grid + field * torch.tensor([2.0 / w, 2.0 / h])
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def pen(x, g, p_thick=0.25, p_thin=0.2, p_blur=0.3):
    """A thicker pen (grey dilation), a thinner one (half-way erosion), and blur."""
    n = x.shape[0]
    thick = _chance(p_thick, n, g).view(n, 1, 1, 1)
    thin = _chance(p_thin, n, g).view(n, 1, 1, 1) & ~thick
    dilated = F.max_pool2d(x, 3, stride=1, padding=1)
    eroded = -F.max_pool2d(-x, (2, 2), stride=1, padding=0)
    eroded = F.pad(eroded, (0, 1, 0, 1))
    x = torch.where(thick, dilated, torch.where(thin, 0.5 * (x + eroded), x))
    blur = _chance(p_blur, n, g).view(n, 1, 1, 1)
    kernel = torch.tensor([0.25, 0.5, 0.25])
    kernel = (kernel[:, None] * kernel[None, :]).view(1, 1, 3, 3)
    return torch.where(blur, F.conv2d(x, kernel, padding=1), x)


def ink_level(x, g, spread=1.0):
    """Faint or heavy ink: a gamma and a gain per line (`spread` 1: gains from 0.55 to 1)."""
    n = x.shape[0]
    gamma = torch.exp((torch.rand(n, 1, 1, 1, generator=g) * 2 - 1) * 0.5 * spread)
    gain = 1 - 0.45 * spread * (1 - torch.rand(n, 1, 1, 1, generator=g))
    return x.clamp(0, 1) ** gamma * gain


def paper(x, g, p_texture=0.3, p_rule=0.15, p_light=0.3, p_noise=0.5):
    """What preprocessing leaves of the paper: grain, blotchy texture, a ruled line, uneven light."""
    n, _, h, w = x.shape
    out = x
    light = _chance(p_light, n, g).view(n, 1, 1, 1)
    ramp = torch.linspace(0, 1, w).view(1, 1, 1, w)
    slope = torch.rand(n, 1, 1, 1, generator=g) * 0.6
    ramp = torch.where(torch.rand(n, 1, 1, 1, generator=g) < 0.5, ramp, 1 - ramp)
    out = torch.where(light, out * (1 - slope * ramp), out)
    texture = _chance(p_texture, n, g).view(n, 1, 1, 1)
    blotches = F.interpolate(torch.rand(n, 1, max(2, h // 8), max(2, w // 8), generator=g), size=(h, w),
                             mode="bilinear", align_corners=False)
    out = torch.where(texture, out + 0.18 * torch.rand(n, 1, 1, 1, generator=g) * blotches, out)
    rule = _chance(p_rule, n, g)
    if rule.any():
        rows = torch.randint(0, h, (n,), generator=g)
        strength = 0.15 + 0.35 * torch.rand(n, generator=g)
        for i in torch.nonzero(rule).flatten().tolist():
            r = int(rows[i])
            out[i, :, r : r + 1 + int(torch.rand(1, generator=g) < 0.4), :] += strength[i]
    noise = _chance(p_noise, n, g).view(n, 1, 1, 1)
    sigma = 0.08 * torch.rand(n, 1, 1, 1, generator=g)
    out = torch.where(noise, out + sigma * torch.randn(out.shape, generator=g).abs(), out)
    return out.clamp(0, 1)


def _gaussian_blur(x, sigma):
    """Blur each line by its own sigma (N,) in pixels, with a separable kernel."""
    radius = max(1, int(3 * float(sigma.max()) + 0.5))
    taps = torch.arange(-radius, radius + 1, dtype=x.dtype)
    kernel = torch.exp(-0.5 * (taps[None, :] / sigma[:, None].clamp(min=1e-3)) ** 2)
    kernel = kernel / kernel.sum(1, keepdim=True)  # (N, taps)
    n, c, h, w = x.shape
    kernel = kernel.repeat_interleave(c, 0)  # one filter per line and channel
    rows = F.conv2d(x.reshape(1, n * c, h, w), kernel.view(n * c, 1, 1, -1), padding=(0, radius), groups=n * c)
    return F.conv2d(rows, kernel.view(n * c, 1, -1, 1), padding=(radius, 0), groups=n * c).view(n, c, h, w)


def degrade(x, g, p_binary=0.15, p_blur=0.15, p_low_res=0.15):
    """What a scanner or a phone does to a picture, as it reaches the reader: a binarised scan (ink
    all or nothing, at a random threshold), an out-of-focus photo (blur, then the ink brought back to
    full strength as preprocessing does), and a small picture enlarged (down, then up again)."""
    n, _, h, w = x.shape
    out = x
    low = _chance(p_low_res, n, g)
    if low.any():
        factor = float(0.4 + 0.35 * torch.rand(1, generator=g))
        small = F.interpolate(out, size=(max(4, int(h * factor)), max(4, int(w * factor))), mode="area")
        out = torch.where(low.view(n, 1, 1, 1), F.interpolate(small, size=(h, w), mode="bilinear",
                                                              align_corners=False), out)
    blur = _chance(p_blur, n, g)
    if blur.any():
        blurred = _gaussian_blur(out, 0.6 + 0.9 * torch.rand(n, generator=g))
        peak = blurred.flatten(1).amax(1).clamp(min=1e-3).view(n, 1, 1, 1)
        out = torch.where(blur.view(n, 1, 1, 1), (blurred / peak).clamp(0, 1), out)
    binary = _chance(p_binary, n, g).view(n, 1, 1, 1)
    threshold = 0.25 + 0.35 * torch.rand(n, 1, 1, 1, generator=g)
    return torch.where(binary, (out > threshold).to(out.dtype), out)


def augment_lines(x, g, strength=1.0, degraded=0.0):
    """The whole chain on a batch (N, 1, H, W) of framed lines in [0, 1].

    `strength` scales every change: the size of the geometric ones, and the chance of the pen
    and paper ones (1 was the earlier reader's; 0 returns the batch unchanged). `degraded` is the
    chance of each of `degrade`'s three (0: none, as every reader before it was trained), applied last.
    """
    if degraded > 0:
        x = augment_lines(x, g, strength)
        return degrade(x, g, p_binary=degraded, p_blur=degraded, p_low_res=degraded)
    if strength <= 0:
        return x
    k = min(strength, 1.0)  # a chance cannot pass 1: above 1 only the geometry and the ink grow
    x = geometry(x, g, slant=0.35 * strength, wobble=1.5 * strength, scale=0.12 * strength)
    x = pen(x, g, p_thick=0.25 * k, p_thin=0.2 * k, p_blur=0.3 * k)
    x = ink_level(x, g, spread=min(strength, 2.0))
    return paper(x, g, p_texture=0.3 * k, p_rule=0.15 * k, p_light=0.3 * k, p_noise=0.5 * k)
