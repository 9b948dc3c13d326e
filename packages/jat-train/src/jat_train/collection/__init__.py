"""The collection room: ``jat-collect``, local data sets in the jat-dataset schema, and the cache of them.

What it owns:

- :mod:`~jat_train.collection.collect`: ``jat-collect`` (``main``) and the names a collecting program uses;
- :mod:`~jat_train.collection.recording`: playing a policy in a task's env and keeping its checked episodes;
- :mod:`~jat_train.collection.noise`: the DART action noise of expert collection;
- :mod:`~jat_train.collection.samples`: local data sets of tasks without an env (text, captions);
- :mod:`~jat_train.collection.schema`: the data set's columns and types, and how values are encoded into them;
- :mod:`~jat_train.collection.store`: atomic writes of a task's data set to ``OUT/<task>/``;
- :mod:`~jat_train.collection.datacache`: collected data cached by what produced them (``jat-generalist``).

What it may import: the data room's interface (``jat_train.data``: the column names and where a task's local
data live) and the shared top-level modules :mod:`jat_train.files` and :mod:`jat_train.run_lock`.

Its interface, the modules of ``INTERFACE`` below: ``collect`` (``main``: :mod:`jat_train.cli`; it re-exports
what a program that collects needs), ``datacache`` (:mod:`jat_train.generalist`), and ``store`` and ``schema``
(documented API: ``collect_to_disk`` and the data-set schema, also at their paths from before the rooms,
``jat_train.store`` and ``jat_train.schema``). This package re-exports nothing.
"""

# modules of this room another room may import; the rooms whose interfaces this room's modules may import.
# tests/train/test_rooms.py reads both.
INTERFACE = ("collect", "datacache", "store", "schema")
MAY_IMPORT = ("data",)
