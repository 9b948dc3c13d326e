"""``jat_train.train_config``, the path the docs gave before jat-train's rooms; the code lives in
:mod:`jat_train.training.train_config`."""

from jat_train.training.train_config import TrainConfig, build_parser, config_from_args

__all__ = ["TrainConfig", "build_parser", "config_from_args"]
