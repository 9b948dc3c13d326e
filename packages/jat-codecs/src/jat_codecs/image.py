"""Image codec: stacks of 4 grayscale 84x84 frames (Atari), encoded by a small CNN, predicted by a transposed CNN.

Maths of the reference:

- input: ``(4, 84, 84)`` in ``[-1, 1]`` (``prepare`` turns the data set's ``(84, 84, 4)`` uint8 frames into this
  with ``(x / 255 - 0.5) / 0.5``, the reference processor's normalisation);
- encoder: three blocks ``[Conv2d stride 2 pad 1 -> InstanceNorm2d (no affine) -> LeakyReLU -> squeeze-excitation]``
  (84 -> 42 -> 21 -> 11, channels 32, 64, 128), flatten, ``Linear(128 * 11 * 11, H)``;
- decoder: ``Linear(H, 128 * 11 * 11)`` -> ``ConvTranspose2d`` (11 -> 22, resized to 21 by nearest interpolation)
  -> norm, LeakyReLU, squeeze-excitation -> ``ConvTranspose2d`` (21 -> 42) -> norm, LeakyReLU, squeeze-excitation
  -> ``ConvTranspose2d`` (42 -> 84) -> tanh;
- squeeze-excitation: global average pool, ``Linear(c, c/8)``, ReLU, ``Linear(c/8, c)``, sigmoid, multiply
  (no biases);
- loss: per-step MSE over the ``4 x 84 x 84`` values.

**Quirk kept** (it changes predictions, not only the loss, so fixing it would break the published weights): the
reward is ignored for image observations.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from jat_core.codec import OBSERVATION, Codec
from torch import nn

from jat_codecs import checks

#: Frames per observation, frame side: the Atari data set's (84, 84, 4).
CHANNELS, SIZE = 4, 84
#: Feature map after the encoder's three stride-2 convolutions: 84 -> 42 -> 21 -> 11.
FEATURES, FEATURE_SIZE = 128, 11


class SqueezeExcitation(nn.Module):
    """Channel attention: ``x * sigmoid(W2 relu(W1 avgpool(x)))``; ``fc.0`` and ``fc.2`` as in the reference."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.fc = nn.Sequential(
            nn.Linear(channels, channels // 8, bias=False),
            nn.ReLU(),
            nn.Linear(channels // 8, channels, bias=False),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weights = self.fc(x.mean(dim=(2, 3)))  # (N, C)
        return x * weights[:, :, None, None]


class ImageEncoder(nn.Module):
    """``(N, 4, 84, 84)`` -> ``(N, H)``."""

    def __init__(self, hidden_size: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(CHANNELS, 32, kernel_size=3, stride=2, padding=1)  # 42x42
        self.att1 = SqueezeExcitation(32)
        self.conv2 = nn.Conv2d(32, 64, kernel_size=3, stride=2, padding=1)  # 21x21
        self.att2 = SqueezeExcitation(64)
        self.conv3 = nn.Conv2d(64, FEATURES, kernel_size=3, stride=2, padding=1)  # 11x11
        self.att3 = SqueezeExcitation(FEATURES)
        self.fc = nn.Linear(FEATURES * FEATURE_SIZE * FEATURE_SIZE, hidden_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for conv, att in ((self.conv1, self.att1), (self.conv2, self.att2), (self.conv3, self.att3)):
            x = att(F.leaky_relu(F.instance_norm(conv(x))))
        return self.fc(x.flatten(start_dim=1))  # (N, H)


class ImageDecoder(nn.Module):
    """``(N, H)`` -> ``(N, 4, 84, 84)`` in ``[-1, 1]``."""

    def __init__(self, hidden_size: int) -> None:
        super().__init__()
        self.fc = nn.Linear(hidden_size, FEATURES * FEATURE_SIZE * FEATURE_SIZE)
        self.deconv1 = nn.ConvTranspose2d(FEATURES, 64, kernel_size=3, stride=2, padding=1, output_padding=1)
        self.att1 = SqueezeExcitation(64)
        self.deconv2 = nn.ConvTranspose2d(64, 32, kernel_size=3, stride=2, padding=1, output_padding=1)
        self.att2 = SqueezeExcitation(32)
        self.deconv3 = nn.ConvTranspose2d(32, CHANNELS, kernel_size=3, stride=2, padding=1, output_padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.fc(x).view(-1, FEATURES, FEATURE_SIZE, FEATURE_SIZE)  # (N, 128, 11, 11)
        x = F.leaky_relu(F.instance_norm(self.deconv1(x)))  # (N, 64, 22, 22)
        x = self.att1(F.interpolate(x, size=(21, 21)))  # (N, 64, 21, 21)
        x = self.att2(F.leaky_relu(F.instance_norm(self.deconv2(x))))  # (N, 32, 42, 42)
        return torch.tanh(self.deconv3(x))  # (N, 4, 84, 84)


class ImageCodec(Codec):
    """Encode and predict ``(4, 84, 84)`` frame stacks.

    Args:
        hidden_size: trunk width ``H``.
    """

    name = "image"
    roles = (OBSERVATION,)
    columns = {OBSERVATION: "image_observations"}
    predicts = (OBSERVATION,)
    reference_keys = {"image_encoder.module.": "codecs.image.encoder.", "image_decoder.module.": "codecs.image.decoder."}

    def __init__(self, hidden_size: int) -> None:
        super().__init__()
        self.encoder = ImageEncoder(hidden_size)
        self.decoder = ImageDecoder(hidden_size)

    def prepare(self, values, *, role: str) -> torch.Tensor:
        """Data-set frames ``(B, T, 84, 84, 4)`` uint8 (height, width, frames) -> ``(B, T, 4, 84, 84)`` float in
        ``[-1, 1]``, exactly the reference processor's ``(to_tensor(x) - 0.5) / 0.5``."""
        field = self.columns[role]
        x = checks.tensor(np.asarray(values) if not isinstance(values, torch.Tensor) else values, field=field)
        checks.shape(x, (None, None, SIZE, SIZE, CHANNELS), field=field, layout=f"(B, T, {SIZE}, {SIZE}, {CHANNELS}) uint8")
        if x.dtype != torch.uint8:
            raise ValueError(f"{field}: expected dtype uint8 frames, got {x.dtype}")
        x = x.permute(0, 1, 4, 2, 3).to(torch.float32).div(255)  # (B, T, 4, 84, 84) in [0, 1]
        return (x - 0.5) / 0.5

    def _frames(self, values) -> torch.Tensor:
        field = self.columns[OBSERVATION]
        x = checks.tensor(values, field=field)
        checks.shape(x, (None, None, CHANNELS, SIZE, SIZE), field=field, layout=f"(B, T, {CHANNELS}, {SIZE}, {SIZE})")
        checks.floating(x, field=field)
        return x

    def encode(self, values, rewards=None, *, role: str) -> torch.Tensor:
        """``(B, T, 4, 84, 84)`` floats in ``[-1, 1]`` -> ``(B, T, H)``; ``rewards`` is ignored (reference quirk)."""
        x = self._frames(values)
        B, T = x.shape[:2]
        weight = self.encoder.fc.weight
        return self.encoder(x.flatten(0, 1).to(weight.dtype)).view(B, T, -1)

    def decode(self, hidden: torch.Tensor, *, role: str, size: int | None = None) -> torch.Tensor:
        """``(B, T, H)`` -> predicted frames ``(B, T, 4, 84, 84)`` in ``[-1, 1]``."""
        B, T = hidden.shape[:2]
        return self.decoder(hidden.flatten(0, 1)).view(B, T, CHANNELS, SIZE, SIZE)

    def loss(self, predictions, targets, mask, *, role: str, rewards=None) -> torch.Tensor:
        """Per-step MSE over the 4 x 84 x 84 values."""
        y = self._frames(targets).to(predictions.dtype)
        err = F.mse_loss(predictions, y, reduction="none").mean(dim=(2, 3, 4))  # (B, T)
        m = checks.mask(mask, err.shape)
        return torch.where(m, err, torch.zeros_like(err))


def build(config, shared) -> ImageCodec:
    """Codec factory: the CNN encoder and transposed-CNN decoder for ``H = config.hidden_size``."""
    return ImageCodec(config.hidden_size)
