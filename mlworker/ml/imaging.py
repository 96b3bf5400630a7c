"""Cutout preprocessing shared by the image models (morphology, GALFIT emulator; no Django):
robust normalisation, input statistics for out-of-distribution flags, the 8 exact views."""

import numpy as np
import torch


def background_and_noise(flat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per image: background (median of the border pixels) and noise (1.4826 MAD of them)."""
    background = np.median(flat, axis=1)
    sigma = 1.4826 * np.median(np.abs(flat - background[:, None]), axis=1)
    return background, np.where(sigma > 0, sigma, 1.0)


def border(images: np.ndarray, width: int = 6) -> np.ndarray:
    """Pixels within ``width`` of the edge: sky, away from the galaxy at the centre."""
    n, h, w = images.shape
    mask = np.zeros((h, w), dtype=bool)
    mask[:width], mask[-width:], mask[:, :width], mask[:, -width:] = True, True, True, True
    return images[:, mask]


def normalise(images: np.ndarray, subtract_background: bool = True) -> np.ndarray:
    """Robust per-image normalisation: subtract the sky (median of the border; not with
    ``subtract_background=False``, for sky-subtracted cutouts whose border holds a large
    galaxy's wings), divide by its noise (1.4826 MAD), then asinh(x / 3) to compress bright
    cores. NaNs become sky."""
    images = np.nan_to_num(np.asarray(images, dtype=np.float32))
    background, sigma = background_and_noise(border(images))
    if not subtract_background:
        background = np.zeros_like(background)
    scaled = (images - background[:, None, None].astype(np.float32)) / sigma[:, None, None].astype(np.float32)
    return np.arcsinh(scaled / 3.0).astype(np.float32)


def input_statistics(images: np.ndarray) -> np.ndarray:
    """(n, 3): log10 noise level, log10 total flux above the sky, peak S/N."""
    images = np.nan_to_num(np.asarray(images, dtype=np.float32))
    background, sigma = background_and_noise(border(images))
    flat = images.reshape(len(images), -1)
    sigma = np.maximum(sigma, 1e-12)
    flux = np.clip((flat - background[:, None]).sum(axis=1), 1e-12, None)
    peak = (flat.max(axis=1) - background) / sigma
    return np.stack([np.log10(sigma), np.log10(flux), peak], axis=1)


STAT_NAMES = ("log10_noise", "log10_flux", "peak_snr")


def input_ranges(images: np.ndarray) -> dict:
    stats = input_statistics(images)
    lo, hi = np.percentile(stats, 0.5, axis=0), np.percentile(stats, 99.5, axis=0)
    return {name: [float(a), float(b)] for name, a, b in zip(STAT_NAMES, lo, hi, strict=True)}


def out_of_distribution(images: np.ndarray, ranges: dict) -> np.ndarray:
    """True where an image's statistics fall outside the training range (with 10% slack)."""
    if not ranges:
        return np.zeros(len(images), dtype=bool)
    stats = input_statistics(images)
    outside = np.zeros(len(images), dtype=bool)
    for j, name in enumerate(STAT_NAMES):
        lo, hi = ranges[name]
        slack = 0.1 * (hi - lo)
        outside |= (stats[:, j] < lo - slack) | (stats[:, j] > hi + slack)
    return outside


def eight_views(x: torch.Tensor) -> list[torch.Tensor]:
    """The 4 rotations and their mirror images of a batch (B, C, H, W): exact, no resampling."""
    views = [torch.rot90(x, k, dims=(2, 3)) for k in range(4)]
    return views + [torch.flip(v, dims=(3,)) for v in views]


def random_views(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """A random one of the 8 rotations/flips per image of (B, C, H, W): exact, no resampling."""
    k = torch.randint(0, 8, (len(x),), generator=generator)
    views = eight_views(x)
    out = torch.empty_like(x)
    for v in range(8):
        sel = k == v
        if sel.any():
            out[sel] = views[v][sel]
    return out


def conv_trunk(channels: tuple[int, ...]) -> torch.nn.Sequential:
    """Conv-BN-ReLU blocks (5x5 first, then 3x3) with a 2x2 max pool between them; the last
    block's output has ``channels[-1]`` maps."""
    from torch import nn

    layers, c_in = [], 1
    for i, c in enumerate(channels):
        k = 5 if i == 0 else 3
        layers += [nn.Conv2d(c_in, c, k, padding=k // 2, bias=False), nn.BatchNorm2d(c), nn.ReLU(inplace=True)]
        if i < len(channels) - 1:
            layers.append(nn.MaxPool2d(2))
        c_in = c
    return nn.Sequential(*layers)


def pooled(z: torch.Tensor) -> torch.Tensor:
    """[global mean, global max] of (B, C, H, W) feature maps: (B, 2C)."""
    return torch.cat([z.mean(dim=(2, 3)), z.amax(dim=(2, 3))], dim=1)


def circular_apertures(radii, image_size: int) -> torch.Tensor:
    """(A, H*W) masks of the pixels within ``radii`` of the stamp centre (float 0/1)."""
    yy, xx = torch.meshgrid(torch.arange(image_size), torch.arange(image_size), indexing="ij")
    r = torch.sqrt((yy - (image_size - 1) / 2) ** 2 + (xx - (image_size - 1) / 2) ** 2).flatten()
    return torch.stack([(r <= radius).float() for radius in radii])


class ApertureSNR(torch.nn.Module):
    """Aperture photometry of a normalised stamp (asinh(image / 3 sigma)): the S/N within
    circles of ``radii`` pixels around the stamp centre, returned as asinh(S/N / 3), (B, A)."""

    def __init__(self, radii: tuple[float, ...], image_size: int):
        super().__init__()
        masks = circular_apertures(radii, image_size)
        self.register_buffer("apertures", masks / masks.sum(dim=1, keepdim=True).sqrt(), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        linear = torch.sinh(x.float()) * 3  # back to units of the sky noise
        return torch.asinh(linear.flatten(1) @ self.apertures.T / 3)
