"""``jat_train.trainer``, the path the docs gave before jat-train's rooms: ``python -m jat_train.trainer`` (what
``accelerate launch`` and ``torchrun`` scripts start) and ``jat_train.trainer.train`` keep working. The code lives
in :mod:`jat_train.training.trainer`."""

from jat_train.training.trainer import TrainConfig, main, train

__all__ = ["TrainConfig", "main", "train"]

if __name__ == "__main__":  # `accelerate launch -m jat_train.trainer ...`
    raise SystemExit(main())
