"""``jat_train.schema``, the path the docs gave before jat-train's rooms; the code lives in
:mod:`jat_train.collection.schema`."""

from jat_train.collection.schema import (
    encode_column,
    encode_episode,
    features_for,
    split_dataset,
    split_sizes,
    to_dataset,
    value_feature,
)

__all__ = ["encode_column", "encode_episode", "features_for", "split_dataset", "split_sizes", "to_dataset",
           "value_feature"]
