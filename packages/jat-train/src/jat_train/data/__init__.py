"""The data room: episodes from the hub or a local directory, cut into windows, batched one task at a time.

What it owns: where a task's episodes are and how they are read (the data-set column names ``REWARDS``,
``SPLIT``, ``HUB``, :class:`DataError`), checking an episode against its task's spec, windows, batches and the
DataLoader that builds them ahead.

What it may import: jat-core and the libraries only; no other room of jat-train and no top-level module (every
other room reads data, so this room is the floor).

Its interface is this package: the names in ``__all__`` below, those that the other rooms (the training loop,
input statistics, collection's schema and store, evaluation's text and data scores), the tests and bench/ use.
Another room imports them from here (``from jat_train.data import REWARDS``), never from a module inside
(tests/train/test_rooms.py checks). The code lives in one module per stage:

- :mod:`jat_train.data.sources`: where one task's episodes come from for one rank (:class:`LocalEpisodes`,
  :class:`StreamEpisodes`), the shared names (``REWARDS``, ``SPLIT``, ``HUB``, ``SHUFFLE_BUFFER``) and
  :class:`DataError`;
- :mod:`jat_train.data.episodes`: finding and opening them (:func:`open_episodes`, :func:`open_sources`,
  :func:`hub_repo`, :func:`local_path`, :func:`load_local`, :func:`find_damage`, :func:`sample_texts`);
- :mod:`jat_train.data.windows`: checking, tokenizing and cutting them into windows (:func:`check_episode`,
  :func:`tokenize_sample`, :class:`Window`, :class:`TaskWindows`, :class:`ShuffledWindows`);
- :mod:`jat_train.data.batches`: one-task batches (:class:`Batch`, :func:`collate`, :class:`MultiTaskBatches`,
  :func:`build_batches`);
- :mod:`jat_train.data.loader`: the batches built ahead in DataLoader workers (:class:`BatchLoader`).

The pipeline, top to bottom:

1. :func:`open_episodes` opens one task's episodes (one row = one episode) for this rank, from one of:

   - the hub, ``data="hub"``: ``datasets.load_dataset(repo, config, split=..., streaming=...)`` with the
     task's ``spec.dataset`` repo (``jat-project/jat-dataset``) and config (one per task);
   - a mirror or a local replica of that repository, ``data="hub:<repo id or directory>"``: the very same call
     with that repo id or directory in place of the task's repo. A replica is a directory laid out as the hub
     repo is: a ``README.md`` whose YAML front matter declares the configs (``configs: - config_name: X
     data_files: - split: train path: X/train-*``) and parquet shards ``X/train-0000N-of-0000M.parquet``. It
     may hold only the configs of the tasks trained on; e.g., on a machine with hub access,
     ``hf download jat-project/jat-dataset --repo-type dataset --include README.md --include 'CONFIG/*'
     --local-dir DIR``, then train anywhere with ``--data hub:DIR``;
   - a local directory written by ``jat-collect`` (``save_to_disk``), ``data=DIR``.

   Hub data stream by default (``streaming=True``): a :class:`StreamEpisodes` (the rows through a shuffle
   buffer of ``shuffle_buffer`` episodes, split across ranks with ``split_dataset_by_node``). Without streaming
   (``--no-hub-streaming``) the config's split is downloaded (or read from the replica) into the ``datasets``
   cache as a map-style data set and read like local data: a :class:`LocalEpisodes` (reshuffled each epoch,
   every ``world_size``-th episode for each rank; its RL windows then drawn by :class:`ShuffledWindows`).
2. :class:`TaskWindows` checks each episode against its task's spec (a mismatch names task, episode and field),
   shifts the rewards so that observation ``t`` carries the reward received before it (``[0] + r[:-1]``), and
   cuts it into windows of ``context`` timesteps with :func:`jat_core.sequence.window_bounds`, keeping every
   piece (the last one is shorter). Text tasks are
   tokenized with the processor's tokenizer and cut into pieces of ``context`` tokens the same way.
3. :class:`MultiTaskBatches` draws a task by sample weight (a seeded generator shared by every rank, so all
   ranks work on the same task at each step) and stacks ``batch_size`` windows of that task into a
   :class:`Batch`: padded to the longest window, with ``attention_mask`` and a per-step ``loss_weight``, turned
   into model tensors by the processor (which knows the columns; this module names none).

Every stage has a ``state_dict()``/``load_state_dict()``: the data position saved in checkpoints, so that a
resumed run sees exactly the batches an uninterrupted run would have seen, bit for bit: for local data, for hub
data read without streaming, and for streamed hub data with a shuffle buffer of 0 or 1 episode
(``--hub-shuffle-buffer 0|1``). With a larger streaming shuffle buffer (the default, ``SHUFFLE_BUFFER``) the rest
of the epoch interrupted by the checkpoint differs (``datasets`` does not save the buffer's episodes); every
later epoch is exact (see :class:`StreamEpisodes`).
"""

from __future__ import annotations

from jat_train.data.batches import Batch, MultiTaskBatches, build_batches, collate
from jat_train.data.episodes import (
    first_episodes,
    hub_repo,
    load_local,
    local_path,
    open_episodes,
    open_sources,
    sample_texts,
)
from jat_train.data.loader import BatchLoader
from jat_train.data.sources import (
    REWARDS,
    SHUFFLE_BUFFER,
    DataError,
    LocalEpisodes,
    StreamEpisodes,
)
from jat_train.data.windows import (
    TaskWindows,
    Window,
    check_episode,
    tokenize_sample,
)

__all__ = [
    "REWARDS",
    "SHUFFLE_BUFFER",
    "Batch",
    "BatchLoader",
    "DataError",
    "LocalEpisodes",
    "MultiTaskBatches",
    "StreamEpisodes",
    "TaskWindows",
    "Window",
    "build_batches",
    "check_episode",
    "collate",
    "first_episodes",
    "hub_repo",
    "load_local",
    "local_path",
    "open_episodes",
    "open_sources",
    "sample_texts",
    "tokenize_sample",
]

# modules of this room another room may import by name (none: it imports the names of __all__); the rooms whose
# interfaces this room's modules may import (none). tests/train/test_rooms.py reads both.
INTERFACE: tuple[str, ...] = ()
MAY_IMPORT: tuple[str, ...] = ()
