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


def augment_lines(x, g, strength=1.0):
    """The whole chain on a batch (N, 1, H, W) of framed lines in [0, 1].

    `strength` scales every change: the size of the geometric ones, and the chance of the pen
    and paper ones (1 is the shipped reader's; 0 returns the batch unchanged).
    """
    if strength <= 0:
        return x
    k = min(strength, 1.0)  # a chance cannot pass 1: above 1 only the geometry and the ink grow
    x = geometry(x, g, slant=0.35 * strength, wobble=1.5 * strength, scale=0.12 * strength)
    x = pen(x, g, p_thick=0.25 * k, p_thin=0.2 * k, p_blur=0.3 * k)
    x = ink_level(x, g, spread=min(strength, 2.0))
    return paper(x, g, p_texture=0.3 * k, p_rule=0.15 * k, p_light=0.3 * k, p_noise=0.5 * k)
