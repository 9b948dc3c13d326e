"""ViT-patch codec: an RGB image becomes a stream of patch tokens placed before the text (captioning, VQA).

Maths of the reference (transformers' ``ViTPatchEmbeddings``): ``Conv2d(3, H, kernel=16, stride=16)`` over a
``(3, 224, 224)`` image, flattened to ``(224/16)^2 = 196`` tokens of width ``H``. No position embedding, no CLS
token: the trunk's learned positions are the only ones. Patches are inputs only (never predicted).

``prepare`` turns raw images into ``pixel_values`` with the reference processor's CLIP image processing (resize
the shortest edge to 224, centre-crop 224x224, CLIP mean/std normalisation), in our own few lines of PIL and
NumPy (:func:`clip_pixel_values`): transformers' image-processor classes were renamed and split by backend in 5.x.
"""

from __future__ import annotations

import numpy as np
import torch
from jat_core.codec import SEQUENCE, Codec
from torch import nn

from jat_codecs import checks

#: CLIP's normalisation (transformers' ``OPENAI_CLIP_MEAN`` / ``OPENAI_CLIP_STD``), per RGB channel.
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def clip_pixel_values(image, image_size: int) -> np.ndarray:
    """The reference processor's (transformers' ``CLIPImageProcessor``) steps for one image, in our own code:
    convert to RGB, resize the shortest edge to ``image_size`` (bicubic, the long edge ``int(size * long /
    short)``), centre-crop ``image_size`` x ``image_size``, scale to [0, 1], normalise with CLIP's mean and std.

    Args:
        image: a PIL image or an ``(H, W, 3)`` uint8 array.
        image_size: the output side.

    Returns:
        ``(3, image_size, image_size)`` float32.
    """
    from PIL import Image

    if isinstance(image, np.ndarray):
        if image.ndim != 3 or image.shape[-1] != 3 or image.dtype != np.uint8:
            raise ValueError(f"image: expected an (H, W, 3) uint8 array, got shape {image.shape} dtype {image.dtype}")
        image = Image.fromarray(image)
    if not isinstance(image, Image.Image):
        raise ValueError(f"image: expected a PIL image or an (H, W, 3) uint8 array, got {type(image).__name__}")
    image = image.convert("RGB")
    w, h = image.size
    short, long = (w, h) if w <= h else (h, w)
    new_long = int(image_size * long / short)
    size = (image_size, new_long) if w <= h else (new_long, image_size)  # (width, height)
    image = image.resize(size, Image.Resampling.BICUBIC)
    w, h = image.size
    top, left = (h - image_size) // 2, (w - image_size) // 2
    x = np.asarray(image, dtype=np.float32)[top : top + image_size, left : left + image_size] / 255.0  # (S, S, 3)
    x = (x - np.asarray(CLIP_MEAN, np.float32)) / np.asarray(CLIP_STD, np.float32)
    return np.ascontiguousarray(x.transpose(2, 0, 1))  # (3, S, S)


class VitCodec(Codec):
    """Patch embedding of images for sequence batches.

    Args:
        hidden_size: trunk width ``H``.
        image_size: image side (224).
        patch_size: patch side (16).
        num_channels: image channels (3).
    """

    name = "vit"
    roles = (SEQUENCE,)
    columns = {SEQUENCE: "pixel_values"}
    sequence_order = 0  # patches first, then text
    predicts = ()
    reference_keys = {"vit_encoder.projection.": "codecs.vit.projection."}

    def __init__(self, hidden_size: int, image_size: int, patch_size: int, num_channels: int) -> None:
        super().__init__()
        if image_size % patch_size:
            raise ValueError(f"vit codec: expected image_size a multiple of patch_size={patch_size}, got {image_size}")
        self.image_size, self.patch_size, self.num_channels = image_size, patch_size, num_channels
        self.projection = nn.Conv2d(num_channels, hidden_size, kernel_size=patch_size, stride=patch_size)

    @property
    def num_patches(self) -> int:
        """Tokens per image: ``(image_size / patch_size) ** 2``."""
        return (self.image_size // self.patch_size) ** 2

    def prepare(self, values, *, role: str) -> torch.Tensor:
        """Raw images (a list of PIL images or ``(H, W, 3)`` uint8 arrays, or a ``(B, H, W, 3)`` array) ->
        ``pixel_values`` ``(B, 3, image_size, image_size)`` float32, CLIP-normalised."""
        images = list(values) if isinstance(values, (list, tuple, np.ndarray)) else [values]
        if not images:
            raise ValueError(f"{self.columns[role]}: expected at least one image, got none")
        return torch.from_numpy(np.stack([clip_pixel_values(image, self.image_size) for image in images]))

    def encode(self, values, rewards=None, *, role: str) -> torch.Tensor:
        """``(B, 3, 224, 224)`` -> ``(B, 196, H)``."""
        field = self.columns[SEQUENCE]
        x = checks.tensor(values, field=field)
        side, c = self.image_size, self.num_channels
        checks.shape(x, (None, c, side, side), field=field, layout=f"(B, {c}, {side}, {side})")
        checks.floating(x, field=field)
        x = self.projection(x.to(self.projection.weight.dtype))  # (B, H, 14, 14)
        return x.flatten(start_dim=2).transpose(1, 2)  # (B, 196, H)

    def decode(self, hidden: torch.Tensor, *, role: str, size: int | None = None) -> torch.Tensor:
        """Not available: image patches are never predicted."""
        raise ValueError("vit codec does not predict image patches (predicts=())")

    def loss(self, predictions, targets, mask, *, role: str, rewards=None) -> torch.Tensor:
        """Not available: image patches are never predicted."""
        raise ValueError("vit codec does not predict image patches (predicts=())")


def build(config, shared) -> VitCodec:
    """Codec factory: patch embedding for ``config.image_size`` images in ``config.patch_size`` patches."""
    size, patch, channels = (checks.config_int(config, "vit", name) for name in ("image_size", "patch_size", "num_channels"))
    return VitCodec(config.hidden_size, size, patch, channels)
