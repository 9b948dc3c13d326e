"""Train on the inline toy domain in a separate process (``python toy_train.py CONFIG.json`` or under
``accelerate launch``): the kill/resume and DDP tests run this.

CONFIG.json: ``{"train": {TrainConfig fields}, "tasks": [{toy_task kwargs}], "hang_after": step or null}``.
With ``hang_after``, the process sleeps after that step (so that a test can kill it at a known point).
"""

import json
import os
import sys
import time

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(HERE)]  # trainkit, and the tests' shared helpers (filekit)

from jat_train.training.trainer import TrainConfig, train  # noqa: E402
from trainkit import toy_registry, toy_task  # noqa: E402


def main(path: str) -> None:
    with open(path) as f:
        spec = json.load(f)
    torch.set_num_threads(1)
    tasks = [toy_task(**kw) for kw in spec["tasks"]]
    hang_after = spec.get("hang_after")

    def hang(step, record):
        if step == hang_after:
            print(f"hanging after step {step}", flush=True)
            time.sleep(3600)

    train(TrainConfig(**spec["train"]), registry=toy_registry(*tasks), callbacks=[hang])


if __name__ == "__main__":
    main(sys.argv[1])
