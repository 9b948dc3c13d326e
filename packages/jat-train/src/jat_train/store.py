"""``jat_train.store``, the path the docs gave before jat-train's rooms; the code lives in
:mod:`jat_train.collection.store`."""

from jat_train.collection.store import collect_to_disk, write_data

__all__ = ["collect_to_disk", "write_data"]
