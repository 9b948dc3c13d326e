"""``captions-shapes``: a small synthetic captioning task, drawn on the fly.

Each sample is a 224x224 RGB image with one shape on a light background and its caption, in the schema of the
hub's ``conceptual-captions`` configuration (columns ``images`` and ``text``)::

    "a picture of a red circle on the left."

The shape (:data:`SHAPES`), its colour (:data:`COLOURS`) and where it sits (:data:`POSITIONS`) are drawn
uniformly: 3 x 4 x 4 = 48 captions, so a caption guessed at random is right 1 time in 48. Size, exact place
(jittered around the named position), background shade and colour shade vary too, so that no two images are
alike. ``jat-collect --tasks captions-shapes --episodes N --out DIR`` writes it; the same seed draws the same
images.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

SIZE = 224
SHAPES = ("circle", "square", "triangle")
#: colour name -> RGB
COLOURS = {"red": (215, 40, 40), "green": (40, 160, 50), "blue": (45, 70, 215), "yellow": (225, 195, 30)}
#: position name -> (phrase in the caption, centre as fractions of the width and height)
POSITIONS = {
    "left": ("on the left", (0.25, 0.5)),
    "right": ("on the right", (0.75, 0.5)),
    "top": ("at the top", (0.5, 0.25)),
    "bottom": ("at the bottom", (0.5, 0.75)),
}
#: caption template (every caption starts with the same words)
TEMPLATE = "a picture of a {colour} {shape} {where}."


def caption(shape: str, colour: str, position: str) -> str:
    """The caption of a shape: ``"a picture of a red circle on the left."``."""
    return TEMPLATE.format(colour=colour, shape=shape, where=POSITIONS[position][0])


def draw(shape: str, colour: str, position: str, rng: np.random.Generator) -> np.ndarray:
    """Draw one image: ``shape`` in ``colour`` around ``position`` (size, jitter and shades from ``rng``).

    Returns:
        ``(224, 224, 3)`` uint8.
    """
    from PIL import Image, ImageDraw

    background = tuple(int(v) for v in rng.integers(225, 256, size=3))
    image = Image.new("RGB", (SIZE, SIZE), background)
    fill = tuple(int(np.clip(c + rng.integers(-25, 26), 0, 255)) for c in COLOURS[colour])
    fx, fy = POSITIONS[position][1]
    radius = int(rng.integers(24, 38))
    cx = int(fx * SIZE + rng.integers(-14, 15))
    cy = int(fy * SIZE + rng.integers(-14, 15))
    box = (cx - radius, cy - radius, cx + radius, cy + radius)
    pen = ImageDraw.Draw(image)
    if shape == "circle":
        pen.ellipse(box, fill=fill)
    elif shape == "square":
        pen.rectangle(box, fill=fill)
    elif shape == "triangle":
        pen.polygon([(cx, cy - radius), (cx - radius, cy + radius), (cx + radius, cy + radius)], fill=fill)
    else:
        raise ValueError(f"shape: expected one of {SHAPES}, got {shape!r}")
    return np.asarray(image, dtype=np.uint8)


def shape_samples(seed: int = 0, input_dir: str | None = None) -> Iterator[dict]:
    """The ``samples`` source of ``captions-shapes``: endless rows ``{"images": (224, 224, 3) uint8, "text":
    caption}``, the same for the same seed. ``input_dir`` is ignored (nothing is read from files)."""
    rng = np.random.default_rng(seed)
    positions = list(POSITIONS)
    colours = list(COLOURS)
    while True:
        shape = SHAPES[int(rng.integers(len(SHAPES)))]
        colour = colours[int(rng.integers(len(colours)))]
        position = positions[int(rng.integers(len(positions)))]
        yield {"images": draw(shape, colour, position, rng), "text": caption(shape, colour, position)}
