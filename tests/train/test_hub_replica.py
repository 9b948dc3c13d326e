"""The hub path without the hub: a local replica of the ``jat-project/jat-dataset`` repo layout (one config per
task, parquet shards, train/test splits, the published column types) read and trained from through the same
``datasets.load_dataset`` call a hub run makes (``--data hub:DIR``), streaming and not; the stream's shuffle
buffer, what its resume restores, and the errors of a replica that lacks something."""

import io
import os
import time

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
from hubkit import write_config, write_readme, write_replica
from jat_core.plugins import load_plugins
from jat_train.data import (
    DataError,
    LocalEpisodes,
    StreamEpisodes,
    check_episode,
    hub_repo,
    open_episodes,
)
from jat_train.training.trainer import TrainConfig, config_from_args, read_log, train
from PIL import Image
from test_collect import REFERENCE_SCHEMA

#: real tasks of the installed plugins, one per kind of published data
TASKS = ["atari-pong", "babyai-go-to", "metaworld-reach", "oscar", "conceptual-captions"]
TRAIN, TEST = (3, 5, 2, 4), (2,)
#: a very small model (1 layer, 16 tokens of context), small caption images (4 patches)
MODEL = {"hidden_size": 64, "num_layers": 1, "num_heads": 2, "max_position_embeddings": 16, "window_size": 8,
         "vocab_size": 300, "image_size": 32, "patch_size": 16}


@pytest.fixture(scope="module")
def registry():
    return load_plugins()


@pytest.fixture(autouse=True)
def datasets_cache(tmp_path_factory, monkeypatch):
    """Non-streaming loads write arrow files to the datasets cache: keep them out of ~/.cache."""
    import datasets

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path_factory.getbasetemp() / "hf-cache"))


@pytest.fixture(scope="module")
def replica(tmp_path_factory, registry):
    """``(directory, {task: {split: expected rows}})``: the five configs, README declaring one more (absent)."""
    root = str(tmp_path_factory.mktemp("jat-dataset"))
    specs = [registry.task(name) for name in TASKS]
    expected = write_replica(root, specs, REFERENCE_SCHEMA, train=TRAIN, test=TEST, extra_configs=["mujoco-ant"])
    return root, expected


def _key(spec, row) -> object:
    """Which written row a read row is: the episode index carried by its rewards, or a text sample's text."""
    return int(row["rewards"][0]) // 1000 if spec.is_rl else str(row["text"])


def _assert_row(spec, row, expected):
    for name, want in expected.items():
        got = row[name]
        if isinstance(want, np.ndarray):
            assert isinstance(got, np.ndarray) and got.dtype == want.dtype and got.shape == want.shape, name
            np.testing.assert_array_equal(got, want, err_msg=f"{spec.name} {name}")
        elif isinstance(want, list):  # a string per step
            assert [str(s) for s in got] == want and all(isinstance(s, str) for s in got), name
        else:
            assert isinstance(got, str) and got == want, name


@pytest.mark.parametrize("streaming", [True, False], ids=["streaming", "downloaded"])
def test_replica_rows_decode_to_the_published_types(replica, registry, streaming):
    root, expected = replica
    for name in TASKS:
        spec = registry.task(name)
        for split in ("train", "test"):
            want = expected[name][split]
            source = open_episodes(spec, f"hub:{root}", split=split, streaming=streaming, seed=1)
            assert isinstance(source, StreamEpisodes if streaming else LocalEpisodes)
            rows = [source.next_episode()[1] for _ in want]  # one epoch
            by_key = {_key(spec, w): w for w in want}
            got_keys = [_key(spec, row) for row in rows]
            assert sorted(map(str, got_keys)) == sorted(map(str, by_key)), (name, split)
            for row in rows:
                _assert_row(spec, row, by_key[_key(spec, row)])
                if spec.is_rl:  # what the trainer does with each episode: checked against the task's spec
                    steps = check_episode(spec, 0, row)
                    assert len(steps["rewards"]) == len(row["rewards"])
    # the shards hold what the hub's do: Atari frames as RGBA PNG, the features in the parquet metadata
    table = pq.read_table(f"{root}/atari-pong/train-00000-of-00002.parquet")
    frame = table.column("image_observations")[0].as_py()[0]["bytes"]
    assert Image.open(io.BytesIO(frame)).mode == "RGBA"
    assert b"huggingface" in table.schema.metadata


def _covering_seed(specs, draws: int) -> int:
    """A seed whose first ``draws`` task draws (MultiTaskBatches: one per batch, by sample weight) reach every
    task, so that each kind of data goes through the model."""
    weights = np.array([s.sample_weight for s in specs], dtype=np.float64)
    for seed in range(500):
        rng = np.random.default_rng(seed)
        if len({int(rng.choice(len(specs), p=weights / weights.sum())) for _ in range(draws)}) == len(specs):
            return seed
    raise AssertionError("no seed draws every task")


@pytest.mark.parametrize("streaming", [True, False], ids=["streaming", "downloaded"])
def test_training_runs_from_the_replica(replica, registry, tmp_path, streaming):
    root, _ = replica
    specs = [registry.task(name) for name in TASKS]
    steps, accum = 2, 5
    config = TrainConfig(
        tasks=",".join(TASKS), data=f"hub:{root}", streaming=streaming, output_dir=str(tmp_path / "run"),
        preset="tiny", model_overrides=MODEL, tokenizer="bpe:300", max_steps=steps, grad_accum=accum,
        save_every=steps, batch_size=2, learning_rate=1e-3, num_threads=1, progress=False, mixed_precision="no",
        seed=_covering_seed(specs, steps * accum), cpu=True,
    )
    result = train(config, registry=registry)
    assert result.step == steps and result.checkpoint is not None
    records = read_log(config.output_dir)
    assert [r["step"] for r in records] == [1, 2]
    assert all(np.isfinite(r["loss"]) and r["loss"] > 0 for r in records)
    trained = {task for r in records for task in r["task"].split(",")}
    assert trained == set(TASKS)  # Atari frames, BabyAI strings + ints, floats, text and captions all trained


# -- the stream's shuffle buffer and its resume -----------------------------------------------------------------

EPISODES = 24


@pytest.fixture(scope="module")
def long_replica(tmp_path_factory, registry):
    """One Meta-World config of 24 one- or two-step episodes in 3 shards (rewards carry the episode index)."""
    root = str(tmp_path_factory.mktemp("jat-dataset-long"))
    spec = registry.task("metaworld-reach")
    lengths = [1 + i % 2 for i in range(EPISODES)]
    write_replica(root, [spec], REFERENCE_SCHEMA, train=lengths, test=(1,), shards=3)
    return f"hub:{root}", spec


def _ids(source, n):
    return [int(source.next_episode()[1]["rewards"][0]) // 1000 for _ in range(n)]


def _resume(data, spec, buffer, k):
    """Read ``k`` episodes, checkpoint, resume in a fresh source: ``(read, rest of the epoch, next epoch)``."""
    source = open_episodes(spec, data, shuffle_buffer=buffer, seed=3)
    seen = _ids(source, k)
    state = source.state_dict()
    again = open_episodes(spec, data, shuffle_buffer=buffer, seed=3)
    again.load_state_dict(state)
    rest = []
    while True:
        (episode,) = _ids(again, 1)
        if again.epoch == 1:
            break
        rest.append(episode)
    return seen, rest, [episode] + _ids(again, EPISODES - 1)


@pytest.mark.parametrize("buffer", [0, 1, 4, 8])
def test_stream_resume_with_a_shuffle_buffer(long_replica, buffer):
    """What the data set's own state_dict restores (datasets docs: 'examples from shuffle buffers are lost when
    resuming and the buffers are refilled with new data'): without a buffer (or with one of 1), exactly the
    uninterrupted stream; with one, the resumed epoch skips at most ``buffer`` episodes and repeats at most
    ``buffer`` (datasets 5.2), and the next epoch is exactly the uninterrupted run's."""
    data, spec = long_replica
    source = open_episodes(spec, data, shuffle_buffer=buffer, seed=3)
    full = [_ids(source, EPISODES), _ids(source, EPISODES)]
    assert sorted(full[0]) == sorted(full[1]) == list(range(EPISODES))  # every episode once per epoch
    if buffer == 0:
        assert full[0] == list(range(EPISODES))  # the first epoch in file order
    elif buffer > 1:
        assert full[0] != full[1]  # new buffer draws each epoch
        descents = sum(a > b for a, b in zip(full[0], full[0][1:]))
        assert descents > 3  # rows mixed within shards, not only the shard order
    for k in (0, 3, 10, 17):
        seen, rest, following = _resume(data, spec, buffer, k)
        assert seen == full[0][:k]
        assert following == full[1], (buffer, k)  # the epochs after the resumed one: exact
        if buffer <= 1:
            assert rest == full[0][k:], (buffer, k)  # exact
        else:
            assert set(rest) <= set(range(EPISODES))
            twice = len(rest) - len(set(rest)) + len(set(rest) & set(seen))
            lost = set(range(EPISODES)) - set(seen) - set(rest)
            assert twice <= buffer and len(lost) <= buffer, (buffer, k, twice, lost)


class _Episodes(torch.utils.data.IterableDataset):
    def __init__(self, source, n):
        self.source, self.n = source, n

    def __iter__(self):
        yield from _ids(self.source, self.n)


def test_stream_in_a_dataloader_worker_reads_the_whole_sequence(long_replica):
    """A DataLoader worker (jat-train --num-workers) reads the same episodes in the same order as the training
    process would, not a per-worker share of the shards."""
    data, spec = long_replica
    in_process = _ids(open_episodes(spec, data, shuffle_buffer=4, seed=3), 30)
    for workers in (1, 2):
        loader = torch.utils.data.DataLoader(_Episodes(open_episodes(spec, data, shuffle_buffer=4, seed=3), 30),
                                             batch_size=None, num_workers=workers)
        got = list(loader)  # each worker yields its own (full) copy of the sequence, round robin
        assert got[::workers] == in_process and got[workers - 1 :: workers] == in_process


class _OneWorkerAhead(torch.utils.data.IterableDataset):
    """Worker 0 reads two epochs and a bit, then worker 1 (waiting for a marker file) reads one epoch."""

    def __init__(self, source, marker):
        self.source, self.marker = source, marker

    def __iter__(self):
        if torch.utils.data.get_worker_info().id == 0:
            yield _ids(self.source, 2 * EPISODES + 1)
            open(self.marker, "w").close()
        else:
            while not os.path.exists(self.marker):
                time.sleep(0.01)
            yield _ids(self.source, EPISODES)


def test_stream_workers_do_not_share_the_epoch(long_replica, tmp_path):
    """``datasets`` keeps an IterableDataset's epoch in torch shared memory, which forked DataLoader workers share:
    a worker starting its next epoch must not move where its siblings are (seen in CI: two workers reaching the end
    of an epoch together skipped one)."""
    data, spec = long_replica
    in_process = _ids(open_episodes(spec, data, shuffle_buffer=4, seed=3), EPISODES)
    loader = torch.utils.data.DataLoader(
        _OneWorkerAhead(open_episodes(spec, data, shuffle_buffer=4, seed=3), tmp_path / "done"),
        batch_size=None, num_workers=2,
    )
    ahead, behind = list(loader)
    assert ahead[:EPISODES] == in_process and behind == in_process


def test_ranks_stream_disjoint_parts(long_replica):
    data, spec = long_replica
    parts = [_ids(open_episodes(spec, data, rank=r, world_size=2, seed=3), EPISODES // 2) for r in range(2)]
    assert sorted(parts[0] + parts[1]) == list(range(EPISODES))


# -- what a replica or a mirror may lack ------------------------------------------------------------------------


def _offline(err):
    """The ways to get the data without the hub: jat-collect, or a copy of the repo given as hub:DIR."""
    msg = str(err.value)
    assert "jat-collect --tasks" in msg and "--data DIR" in msg and "--data hub:DIR" in msg, msg
    return msg


@pytest.mark.parametrize("streaming", [True, False], ids=["streaming", "downloaded"])
def test_replica_errors_name_the_task_and_the_way_offline(replica, registry, tmp_path, streaming):
    root, _ = replica
    pong = registry.task("atari-pong")
    with pytest.raises(DataError) as err:  # no such directory
        open_episodes(pong, f"hub:{tmp_path}/nowhere", streaming=streaming)
    assert "'atari-pong'" in _offline(err) and "nowhere" in str(err.value) and "no such directory" in str(err.value)
    with pytest.raises(DataError) as err:  # declared in README.md, never downloaded
        open_episodes(registry.task("mujoco-ant"), f"hub:{root}", streaming=streaming)
    msg = _offline(err)
    assert "'mujoco-ant'" in msg and "from the local copy" in msg and "config 'mujoco-ant'" in msg
    with pytest.raises(DataError) as err:  # not declared at all
        open_episodes(registry.task("babyai-pickup"), f"hub:{root}", streaming=streaming)
    msg = _offline(err)
    assert "'babyai-pickup'" in msg and "not found" in msg and "atari-pong" in msg  # the configs it has
    with pytest.raises(DataError) as err:  # no such split
        open_episodes(pong, f"hub:{root}", split="validation", streaming=streaming)
    assert "'atari-pong'" in _offline(err) and "validation" in str(err.value)
    with pytest.raises(DataError) as err:  # a mirror repo id, offline
        open_episodes(pong, "hub:someone/jat-dataset-mirror", streaming=streaming)
    msg = _offline(err)
    assert "'someone/jat-dataset-mirror'" in msg and "from the hub" in msg
    assert ("could not stream" if streaming else "could not load") in msg


def test_a_damaged_streamed_shard_names_the_repository_file_and_shard(long_replica, tmp_path):
    """A shard that cannot be read (here cut in half; on the hub, a connection lost for longer than ``datasets``'
    own retries) stops the stream naming the repository, the shard and its file."""
    import glob
    import shutil

    data, spec = long_replica
    root = str(tmp_path / "copy")
    shutil.copytree(data[len("hub:"):], root)
    shard = sorted(glob.glob(os.path.join(root, spec.dataset.config, "train-*.parquet")))[1]
    content = open(shard, "rb").read()
    open(shard, "wb").write(content[: len(content) // 2])
    source = open_episodes(spec, f"hub:{root}", shuffle_buffer=0)
    with pytest.raises(DataError) as err:
        for _ in range(EPISODES):
            source.next_episode()
    message = str(err.value)
    assert f"from {root!r} (config {spec.dataset.config!r}, split 'train')" in message, message
    assert "shard 1 of 3" in message and f"(file {shard!r})" in message, message


def test_an_empty_split_names_the_task(tmp_path, registry):
    import datasets

    spec = registry.task("metaworld-reach")
    write_config(str(tmp_path), spec, datasets.Features(REFERENCE_SCHEMA[spec.name]), {"train": [2], "test": []})
    write_readme(str(tmp_path), {"metaworld-reach": ["train", "test"]})
    with pytest.raises(DataError) as err:
        open_episodes(spec, f"hub:{tmp_path}", split="test", streaming=False)
    assert "'metaworld-reach'" in _offline(err) and "split 'test'" in str(err.value)  # datasets: "no data"
    source = open_episodes(spec, f"hub:{tmp_path}", split="test")
    with pytest.raises(DataError) as err:
        source.next_episode()
    assert "'metaworld-reach'" in _offline(err) and "no episode" in str(err.value)


def test_data_and_cli_options(tmp_path):
    assert hub_repo("hub") == (True, None)
    assert hub_repo("hub:org/mirror") == (True, "org/mirror")
    assert hub_repo("data/collected") == (False, None)
    with pytest.raises(DataError, match="hub:<repo id or local directory>"):
        hub_repo("hub:")
    config = config_from_args(["--data", "hub:/mnt/jat-dataset", "--no-hub-streaming", "--hub-shuffle-buffer", "0",
                               "--output-dir", str(tmp_path)])
    assert (config.data, config.streaming, config.shuffle_buffer) == ("hub:/mnt/jat-dataset", False, 0)
    config = config_from_args(["--output-dir", str(tmp_path)])
    assert (config.data, config.streaming, config.shuffle_buffer) == ("hub", True, 16)
    assert config_from_args(["--hub-streaming", "--output-dir", str(tmp_path)]).streaming
    with pytest.raises(ValueError, match="shuffle_buffer"):
        TrainConfig(shuffle_buffer=-1)
