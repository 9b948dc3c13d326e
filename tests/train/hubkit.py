"""A local replica of the ``jat-project/jat-dataset`` hub repository, for the hub path without the hub.

The layout is the hub repo's (a repo without a loading script): ``README.md`` whose YAML front matter declares
one config per task with its train/test data files, and parquet shards ``<config>/<split>-0000N-of-0000M.parquet``
written with the published column types (``REFERENCE_SCHEMA`` of ``test_collect.py``: Atari frames as a sequence
of RGBA PNG images, BabyAI strings and integer sequences, Meta-World/MuJoCo float sequences, text, captions as an
image and a string). ``datasets.load_dataset(<dir>, <config>, split=..., streaming=...)`` reads it as it reads
the hub repo.
"""

from __future__ import annotations

import io
import os

import numpy as np
from jat_core.specs import TaskSpec
from trainkit import sentence

#: caption images of the replica (the published ones vary in size; the vit codec resizes them)
CAPTION_IMAGE = (40, 48, 3)


def png(array: np.ndarray) -> dict:
    """An ``Image`` feature value as the hub stores it: PNG bytes (``(H, W, 4)`` uint8 gives an RGBA PNG)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return {"bytes": buf.getvalue(), "path": None}


def make_row(spec: TaskSpec, index: int, length: int, rng: np.random.Generator) -> tuple[dict, dict]:
    """One episode (RL task) or sample (text task) of ``spec``: ``(row to write, expected decoded values)``.

    RL episodes have ``length`` steps, step ``t`` rewarded ``1000 * index + t`` (so each row is recognisable
    after a shuffle); values follow the spec (images uint8, integers within ``n``, floats, strings). A text
    sample is ``length`` words (and a caption image where the spec has an image field).
    """
    row, expected = {}, {}
    for f in spec.fields:
        per_step = (length,) if spec.is_rl else ()
        if f.dtype == "string":
            values = [sentence(rng, 4) for _ in range(length)] if spec.is_rl else sentence(rng, max(length, 1))
            row[f.name] = expected[f.name] = values
        elif f.dtype == "uint8":
            shape = per_step + (tuple(f.shape) if spec.is_rl else CAPTION_IMAGE)
            images = rng.integers(0, 256, size=shape, dtype=np.uint8)
            row[f.name] = [png(image) for image in images] if spec.is_rl else png(images)
            expected[f.name] = images
        elif f.dtype == "int64":
            values = rng.integers(0, f.n or 100, size=per_step + tuple(f.shape), dtype=np.int64)
            row[f.name], expected[f.name] = values.tolist(), values
        else:
            values = rng.uniform(-1, 1, size=per_step + tuple(f.shape)).astype(np.float32)
            row[f.name], expected[f.name] = values.tolist(), values
    if spec.is_rl:
        rewards = (1000.0 * index + np.arange(length)).astype(np.float32)
        row["rewards"], expected["rewards"] = rewards.tolist(), rewards
    return row, expected


def write_config(root: str, spec: TaskSpec, features, splits: dict[str, list[int]], *, shards: int = 2,
                 seed: int = 0) -> dict[str, list[dict]]:
    """Write one task's config: for each split, rows of the given lengths in ``shards`` parquet shards (fewer
    when there are fewer rows; an empty split gets one empty shard).

    Returns:
        ``{split: [expected decoded values of each row, in written order]}``.
    """
    from datasets import Dataset

    rng = np.random.default_rng([seed, len(spec.name)])
    config = spec.dataset.config
    os.makedirs(os.path.join(root, config), exist_ok=True)
    out, index = {}, 0
    for split, lengths in splits.items():
        rows, expected = [], []
        for n in lengths:
            row, values = make_row(spec, index, n, rng)
            rows.append(row)
            expected.append(values)
            index += 1
        count = max(1, min(shards, len(rows)))
        parts = np.array_split(np.arange(len(rows)), count)
        for i, part in enumerate(parts):
            columns = {name: [rows[j][name] for j in part] for name in features}
            path = os.path.join(root, config, f"{split}-{i:05d}-of-{count:05d}.parquet")
            Dataset.from_dict(columns, features=features).to_parquet(path)
        out[split] = expected
    return out


def write_readme(root: str, configs: dict[str, list[str]]) -> str:
    """``README.md`` declaring ``{config: [splits]}`` the way a hub repo without a loading script does."""
    lines = ["---", "configs:"]
    for config, splits in configs.items():
        lines += [f"- config_name: {config}", "  data_files:"]
        for split in splits:
            lines += [f"  - split: {split}", f"    path: {config}/{split}-*"]
    lines += ["---", "", "A local replica of jat-project/jat-dataset (tests).", ""]
    path = os.path.join(root, "README.md")
    with open(path, "w") as f:
        f.write("\n".join(lines))
    return path


def write_replica(root: str, tasks: list[TaskSpec], schema: dict, *, train=(3, 5, 2, 4), test=(2,),
                  shards: int = 2, extra_configs=()) -> dict[str, dict[str, list[dict]]]:
    """A replica holding ``tasks`` (each with ``train``/``test`` rows of those lengths) under ``root``.

    Args:
        root: the replica's directory (created).
        tasks: task specs; their ``dataset.config`` names the configs.
        schema: ``{task name: {column: datasets feature}}``, the published column types.
        train, test: row lengths (steps, or words of a text sample) of each split.
        shards: parquet shards per split.
        extra_configs: configs declared in ``README.md`` without any data (a partial download).

    Returns:
        ``{task name: {split: [expected decoded values of each row]}}``.
    """
    from datasets import Features

    os.makedirs(root, exist_ok=True)
    expected = {
        spec.name: write_config(root, spec, Features(schema[spec.name]), {"train": list(train), "test": list(test)},
                                shards=shards)
        for spec in tasks
    }
    configs = {spec.dataset.config: ["train", "test"] for spec in tasks}
    configs.update({name: ["train", "test"] for name in extra_configs})
    write_readme(root, configs)
    return expected
