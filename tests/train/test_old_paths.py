"""The import paths the docs gave before jat-train's rooms keep working: the same objects as in the rooms, and
``python -m jat_train.trainer`` (what ``accelerate launch`` and ``torchrun`` scripts start) runs ``jat-train``."""

import subprocess
import sys

import pytest

OLD = {
    "jat_train.trainer": ("jat_train.training.trainer", ["train", "main", "TrainConfig"]),
    "jat_train.train_config": ("jat_train.training.train_config", ["TrainConfig", "config_from_args"]),
    "jat_train.evaluate": ("jat_train.evaluation.evaluate", ["evaluate", "load_model"]),
    "jat_train.store": ("jat_train.collection.store", ["collect_to_disk", "write_data"]),
    "jat_train.schema": ("jat_train.collection.schema", ["features_for", "split_sizes"]),
}


@pytest.mark.parametrize("old", sorted(OLD))
def test_an_old_path_gives_the_rooms_objects(old):
    import importlib

    new, names = OLD[old]
    before, after = importlib.import_module(old), importlib.import_module(new)
    for name in names:
        assert getattr(before, name) is getattr(after, name), f"{old}.{name}"


def test_python_m_the_old_trainer_path_runs_jat_train():
    proc = subprocess.run([sys.executable, "-m", "jat_train.trainer", "--help"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "--max-steps" in proc.stdout and "--data" in proc.stdout
