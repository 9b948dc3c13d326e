"""Episodes into windows: stage 2 of the training-data pipeline (:mod:`jat_train.data` has the overview).

An RL episode is checked against its task's spec and its rewards shifted (:func:`check_episode`); a text sample
is tokenized (:func:`tokenize_sample`). Either is then cut into :class:`Window` s of at most ``context`` steps
(or tokens) by :func:`jat_core.sequence.window_bounds`, the one way episodes are cut: nothing dropped, the last
piece shorter. Two readers walk a task's windows, with the same interface (``next_window``, ``state_dict``,
``load_state_dict``):

- :class:`TaskWindows`: every window of one episode, then the next episode (streamed episodes and text
  samples, read in their source's order);
- :class:`ShuffledWindows`: every window of a task's local episodes in a fresh random order each epoch, as the
  reference drew them (the Hugging Face Trainer on the windows of every episode, shuffled). Reading them in
  order fills a batch with neighbouring, strongly correlated pieces of one episode; local data
  (``jat-collect`` output, or a hub split read without streaming) has random access by row, so:

  - the window table is built once from the episode lengths: episode ``e`` of ``n`` steps gives the windows
    ``window_bounds(n, context)``;
  - each epoch permutes the whole table with a generator seeded by (seed, task, epoch), so every rank computes
    the same permutation and reads its own positions ``rank, rank + world_size, ...`` of it (disjoint shards);
  - the position is ``(epoch, cursor)``: a resumed run reads exactly the windows an uninterrupted run would
    have.

  An episode is read and checked when one of its windows is drawn; the last episode read is kept, which is
  what sequential readers of long episodes hit most.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from jat_core.codec import SEQUENCE
from jat_core.sequence import shift_rewards, window_bounds
from jat_core.specs import FieldSpec, TaskSpec, check_field_value

from jat_train.data.sources import REWARDS, DataError, EpisodeSource, LocalEpisodes, task_seed

# -- one episode (or sample) ------------------------------------------------------------------------------------


def check_episode(spec: TaskSpec, index: int, row: dict[str, Any]) -> dict[str, np.ndarray]:
    """Check one RL episode against its spec and return its fields and shifted rewards as arrays.

    Args:
        spec: the task.
        index: the episode's index (for messages).
        row: the data-set row: one column per spec field plus ``rewards``, each with one value per step.

    Returns:
        ``{field name: (N, *shape) array, "rewards": (N,) float32}`` where ``rewards[t]`` is the reward
        received before step ``t`` (``[0] + rewards[:-1]``).

    Raises:
        DataError: a missing column, or a field whose shape, dtype or range does not match the spec (naming
            the task, the episode index and the field, the expected and the actual value).
    """
    where = f"task {spec.name!r} episode {index}"
    if REWARDS not in row:
        raise DataError(f"{where}: no {REWARDS!r} column (columns: {sorted(row)})")
    rewards = np.asarray(row[REWARDS], dtype=np.float32)
    if rewards.ndim != 1:
        raise DataError(f"{where} field {REWARDS!r}: expected shape (N,), got {rewards.shape}")
    n = len(rewards)
    if n == 0:
        return {}
    out = {REWARDS: shift_rewards(rewards)}
    for f in spec.fields:
        if f.name not in row:
            raise DataError(f"{where}: no column for field {f.name!r} (columns: {sorted(row)})")
        value = _as_array(f, row[f.name], where)
        try:
            check_field_value(f, value, task=spec.name, batch=(n,))
        except ValueError as exc:  # its message starts with the task; add the episode
            raise DataError(f"{where} {str(exc).replace(f'task {spec.name!r} ', '', 1)}") from None
        out[f.name] = value
    return out


def _as_array(spec_field: FieldSpec, value: Any, where: str) -> np.ndarray:
    """A field's per-step values as one ``(N, *shape)`` array.

    Raises:
        DataError: a step whose value does not have the shape of the others (a ragged episode), naming
            ``where`` (the task and episode), the field and the step.
    """
    if spec_field.dtype == "string":
        return np.asarray(value, dtype=object)
    if isinstance(value, np.ndarray) and value.dtype != object:
        return value
    steps = []
    for t, step in enumerate(value):  # ragged sequences come as object arrays of arrays, or nested lists
        try:
            steps.append(np.asarray(step))
        except ValueError:  # ragged inside one step: numpy cannot make an array of it
            raise DataError(
                f"{where} field {spec_field.name!r} step {t}: its values are ragged (nested sequences of "
                f"different lengths), expected shape {tuple(spec_field.shape)}"
            ) from None
        if steps[-1].shape != steps[0].shape:
            raise DataError(
                f"{where} field {spec_field.name!r} step {t}: shape {steps[-1].shape}, but step 0 has shape "
                f"{steps[0].shape} (every step must have the field's shape {tuple(spec_field.shape)})"
            )
    return np.stack(steps) if steps else np.asarray(value)


@dataclass
class Window:
    """A piece of an episode (or of a tokenized sample).

    Attributes:
        steps: per-step arrays, ``{field name: (t, ...)}`` (RL fields and ``rewards``; the token ids of a text
            field), all of the same length ``t``.
        extras: per-sample values that every piece of the sample carries (a caption's prepared image).
    """

    steps: dict[str, np.ndarray]
    extras: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(next(iter(self.steps.values()))) if self.steps else 0


def tokenize_sample(spec: TaskSpec, index: int, row: dict[str, Any], processor: Any) -> Window:
    """Turn one sample of a text task into a whole (uncut) :class:`Window`.

    The string field is tokenized in full with the processor's tokenizer and ends with the tokenizer's end token
    when it has one (its ids are the steps, cut later): the model learns where a text ends, so a generated caption
    or completion stops there; every other field (an image) is prepared once by its codec and rides along with each
    piece.

    Args:
        spec: a task without actions; its fields are token streams in sequence order.
        index: the sample's index (for messages).
        row: the data-set row.
        processor: a ``JatProcessor`` (its tokenizer and codecs).

    Returns:
        ``Window(steps={text field: (L,) int64 ids, the end token last}, extras={other field: prepared tensor
        (1, ...)})``.

    Raises:
        DataError: a missing field, a string field holding no string, not exactly one string field.
    """
    where = f"task {spec.name!r} episode {index}"
    steps, extras = {}, {}
    for f in spec.observation:
        if f.name not in row:
            raise DataError(f"{where}: no column for field {f.name!r} (columns: {sorted(row)})")
        value = row[f.name]
        if f.dtype == "string":
            if not isinstance(value, str):
                raise DataError(f"{where} field {f.name!r}: expected a str, got {type(value).__name__}")
            ids = list(processor.token_ids([value])[0])
            end = getattr(getattr(processor, "tokenizer", None), "eos_token_id", None)
            steps[f.name] = np.asarray(ids + ([end] if end is not None else []), dtype=np.int64).reshape(-1)
        else:
            extras[f.name] = processor.codec(f.codec).prepare([np.asarray(value)], role=SEQUENCE)
    if len(steps) != 1:
        raise DataError(f"task {spec.name!r}: a task without actions needs exactly one string field, got {list(steps)}")
    return Window(steps, extras)


# -- windows in order: one episode after the other -------------------------------------------------------------


class TaskWindows:
    """One task's windows, in order: each episode cut into pieces of at most ``context`` steps (or tokens).

    RL episodes are checked and reward-shifted by :func:`check_episode`; text samples are tokenized by
    :func:`tokenize_sample`, and their window shrinks by the tokens of the sample's other fields (image
    patches), so that a piece fills the model's context. Nothing is dropped: an episode of ``N`` steps gives
    ``ceil(N / context)`` windows. Empty episodes are skipped (as the reference does).

    Args:
        spec: the task.
        source: its episodes.
        context: window length (timesteps for RL tasks, tokens for text tasks).
        processor: tokenizes and prepares text samples (text tasks only).
    """

    def __init__(self, spec: TaskSpec, source: EpisodeSource, context: int, processor: Any = None):
        if context <= 0:
            raise ValueError(f"task {spec.name!r}: context must be positive, got {context}")
        self.spec, self.source, self.context, self.processor = spec, source, context, processor
        self._episode: Window | None = None
        self._bounds: list[tuple[int, int]] = []  # [start, end) of each window of the current episode
        self._source_state = source.state_dict()  # position before the current episode
        self._next = 0  # index of the next window of the current episode

    def _load_next_episode(self) -> None:
        for _ in range(100_000):
            self._source_state = self.source.state_dict()
            index, row = self.source.next_episode()
            episode = self._prepare(index, row)
            if len(episode):
                size = self.context - self._extra_tokens(episode)  # steps per piece of this episode
                if size <= 0:
                    raise DataError(f"task {self.spec.name!r}: episode {index} leaves no room for its tokens in "
                                    f"a context of {self.context}")
                self._episode, self._next = episode, 0
                self._bounds = window_bounds(len(episode), size)
                return
        raise DataError(f"task {self.spec.name!r}: 100000 empty episodes in a row")

    def _prepare(self, index: int, row: dict[str, Any]) -> Window:
        if self.spec.is_rl:
            return Window(check_episode(self.spec, index, row))
        if self.processor is None:
            raise ValueError(f"task {self.spec.name!r}: tasks without actions need a processor to tokenize them")
        return tokenize_sample(self.spec, index, row, self.processor)

    def _extra_tokens(self, episode: Window) -> int:
        """Tokens the per-sample fields take in the sequence (what their codecs encode them into)."""
        if not episode.extras:
            return 0
        fields = {f.name: f for f in self.spec.observation}
        with torch.no_grad():
            return sum(
                self.processor.codec(fields[name].codec).encode(value, role=SEQUENCE).shape[1]
                for name, value in episode.extras.items()
            )

    def next_window(self) -> Window:
        """The next window, with ``1 <= len(window) <= context``."""
        if self._episode is None or self._next >= len(self._bounds):
            self._load_next_episode()
        start, end = self._bounds[self._next]
        self._next += 1
        steps = {k: v[start:end] for k, v in self._episode.steps.items()}
        return Window(steps, self._episode.extras)

    def state_dict(self) -> dict:
        """``{"source": position before the current episode, "window": windows of it already given}``."""
        return {"source": self._source_state, "window": self._next}

    def load_state_dict(self, state: dict) -> None:
        """Restore a position: re-read the current episode and skip the windows already given."""
        self.source.load_state_dict(state["source"])
        self._episode, self._next = None, 0
        if state["window"]:
            self._load_next_episode()
            self._next = int(state["window"])


# -- windows of local episodes, shuffled ---------------------------------------------------------------------------


def episode_lengths(dataset: Any) -> np.ndarray:
    """Steps of every episode (one row each) of a map-style data set: the lengths of its ``rewards`` column."""
    if REWARDS not in dataset.column_names:
        raise DataError(f"no {REWARDS!r} column in the data set (columns: {dataset.column_names})")
    return np.array([len(r) for r in dataset[REWARDS]], dtype=np.int64)


#: memory one task's :class:`ShuffledWindows` may keep decoded episodes in (bytes): room for two of the longest
#: image episodes in the published data (27,000 steps of 4x84x84 frames, 0.76 GB each decoded), since with room for
#: one only, a task whose windows alternate between two such episodes decodes a whole episode for each window drawn
EPISODE_CACHE_BYTES = 2 << 30


def _nbytes(value: Any) -> int:
    """Bytes of an episode's array (object arrays of strings: their lengths)."""
    if isinstance(value, np.ndarray) and value.dtype == object:
        return int(sum(len(str(v)) for v in value.reshape(-1)))
    return int(getattr(value, "nbytes", 0))


class ShuffledWindows:
    """One RL task's windows from local episodes, reshuffled every epoch (see the module docstring).

    Same interface as :class:`TaskWindows` (``next_window``, ``state_dict``, ``load_state_dict``), plus
    :meth:`skip`.

    Args:
        spec: the task (an RL task).
        source: its local episodes (their data set, seed and rank/world size are used).
        context: window length in timesteps.
    """

    def __init__(self, spec: TaskSpec, source: LocalEpisodes, context: int) -> None:
        if context <= 0:
            raise ValueError(f"task {spec.name!r}: context must be positive, got {context}")
        self.spec, self.source, self.context = spec, source, context
        lengths = episode_lengths(source.dataset)  # (E,)
        table = [(e, start) for e, n in enumerate(lengths) for start, _ in window_bounds(int(n), context)]
        if not table:
            raise DataError(f"task {spec.name!r}: every one of its {len(lengths)} episodes is empty")
        self._table = np.array(table, dtype=np.int64)  # (W, 2): episode, first step
        ends = np.minimum(self._table[:, 1] + context, lengths[self._table[:, 0]])
        self._steps = ends - self._table[:, 1]  # (W,) steps of each window
        self.group = 1  # see group_by_length
        self.epoch, self.cursor = 0, 0
        self._order = self._epoch_order()
        self._cache: OrderedDict[int, dict[str, np.ndarray]] = OrderedDict()  # episode -> arrays, least recent first
        self._cache_size: dict[int, int] = {}  # episode -> its bytes

    @property
    def num_windows(self) -> int:
        """Windows in one epoch of the whole data set (all ranks)."""
        return len(self._table)

    def window_steps(self, quantile: float) -> float:
        """A quantile (0-1) of the steps per window over the whole data set (an episode's last window is shorter)."""
        return float(np.quantile(self._steps, quantile))

    def group_by_length(self, group: int) -> None:
        """Read windows of similar lengths one after the other, as Hugging Face's ``group_by_length`` does.

        A batch is padded to its longest window: episodes of 3 to 60 steps drawn at random pad a batch to
        about four times its steps. With ``group`` > 1, each epoch's shuffled order is cut into runs of ``group``
        windows and each run sorted by window length, so consecutive windows (a batch) are alike in length while
        every window is still read once per epoch, in an order that changes every epoch. Call it before reading.

        Args:
            group: windows per sorted run (e.g. 8 batches' worth); 1: plain shuffled order.
        """
        if group < 1:
            raise ValueError(f"task {self.spec.name!r}: group must be at least 1, got {group}")
        self.group = int(group)
        self._order = self._epoch_order()

    def _epoch_order(self) -> np.ndarray:
        """This rank's window indices for the current epoch (sorted by length within runs, see group_by_length)."""
        source, n = self.source, len(self._table)
        perm = np.random.default_rng([*task_seed(source.seed, self.spec.name), self.epoch, 1]).permutation(n)
        shard = perm[source.rank :: source.world_size]
        shard = shard if len(shard) else perm[[source.rank % n]]
        if self.group > 1:
            runs = [shard[i : i + self.group] for i in range(0, len(shard), self.group)]
            shard = np.concatenate([run[np.argsort(self._steps[run], kind="stable")] for run in runs])
        return shard

    def _episode(self, index: int) -> dict[str, np.ndarray]:
        """Episode ``index`` checked and reward-shifted.

        Episodes read are kept, the least recently used dropped first, while they hold at most
        :data:`EPISODE_CACHE_BYTES` (the last one read is always kept): a window is a small piece of its episode,
        and decoding a long episode of image frames (thousands of PNGs) for each window drawn would cost seconds per
        window. Only speed depends on it: the windows are the same.
        """
        if index in self._cache:
            self._cache.move_to_end(index)
            return self._cache[index]
        episode = check_episode(self.spec, index, self.source.dataset[index])
        self._cache[index] = episode
        self._cache_size[index] = sum(_nbytes(v) for v in episode.values())
        while len(self._cache) > 1 and sum(self._cache_size.values()) > EPISODE_CACHE_BYTES:
            dropped, _ = self._cache.popitem(last=False)
            del self._cache_size[dropped]
        return episode

    def next_window(self) -> Window:
        """The next window of this rank's shuffled order, ``1 <= len(window) <= context``."""
        if self.cursor >= len(self._order):
            self.epoch, self.cursor = self.epoch + 1, 0
            self._order = self._epoch_order()
        episode, start = (int(v) for v in self._table[self._order[self.cursor]])
        self.cursor += 1
        steps = self._episode(episode)
        return Window({k: v[start : start + self.context] for k, v in steps.items()})

    def skip(self, n: int) -> None:
        """Move past the next ``n`` windows without reading them (what :meth:`next_window` would have given)."""
        self.cursor += n
        while self.cursor > len(self._order):
            self.cursor -= len(self._order)
            self.epoch += 1
            self._order = self._epoch_order()

    def state_dict(self) -> dict:
        """``{"epoch", "cursor"}``: the position in this rank's shuffled order."""
        return {"epoch": self.epoch, "cursor": self.cursor}

    def load_state_dict(self, state: dict) -> None:
        """Go back to a position returned by :meth:`state_dict`."""
        self.epoch, self.cursor = int(state["epoch"]), int(state["cursor"])
        self._order = self._epoch_order()
