"""Training data: reward shift, windows with nothing dropped, one-task batches, sampling by weight, rank shards,
exact data positions, bad episodes and the offline hub."""

import numpy as np
import pytest
import torch
from datasets import Dataset
from jat_train.data import (
    DataError,
    LocalEpisodes,
    MultiTaskBatches,
    StreamEpisodes,
    TaskWindows,
    Window,
    build_batches,
    check_episode,
    collate,
    open_episodes,
    open_sources,
)
from trainkit import ArrayProcessor, episode, toy_task, write_task

LENGTHS = [3, 7, 10, 4, 1]


@pytest.fixture
def data_dir(tmp_path):
    write_task(str(tmp_path), toy_task(), LENGTHS)
    return str(tmp_path)


def _windows_by_episode(spec, source, context, n_windows):
    """Read ``n_windows`` windows; group them by the episode they came from (rewards carry 100*i + t)."""
    stream = TaskWindows(spec, source, context)
    return [stream.next_window() for _ in range(n_windows)]


def test_rewards_are_shifted_so_each_observation_carries_the_previous_reward():
    spec = toy_task()
    ep = check_episode(spec, 0, episode(4, offset=10.0))
    np.testing.assert_array_equal(ep["rewards"], [0.0, 10.0, 11.0, 12.0])
    assert ep["continuous_observations"].shape == (4, 5)


def test_windows_keep_every_step_of_every_episode(data_dir):
    spec = toy_task()
    source = open_episodes(spec, data_dir, seed=3)
    n_windows = sum(-(-n // 4) for n in LENGTHS)  # ceil: 1 + 2 + 3 + 1 + 1
    windows = _windows_by_episode(spec, source, 4, n_windows)
    assert source.epoch == 0 and source.cursor == len(LENGTHS)  # exactly one epoch read
    assert all(1 <= len(w) <= 4 for w in windows)
    # glue the windows back: each episode's steps appear once, in order, none dropped
    steps = np.concatenate([w.steps["continuous_observations"] for w in windows])
    assert len(steps) == sum(LENGTHS)
    raw = Dataset.load_from_disk(f"{data_dir}/toy-reach/train")
    expected = np.concatenate(
        [np.asarray(raw[int(i)]["continuous_observations"], np.float32) for i in source._epoch_order()]
    )
    np.testing.assert_array_equal(steps, expected)


def test_collate_pads_to_the_longest_window_with_mask_and_loss_weight():
    spec = toy_task(loss_weight=50.0)
    windows = [Window(check_episode(spec, i, episode(n, seed=i))) for i, n in enumerate([2, 4])]
    batch = collate(spec, windows, ArrayProcessor())
    assert batch.task == "toy-reach" and batch.num_tokens == 2 * 6
    assert batch.inputs["continuous_observations"].shape == (2, 4, 5)
    assert batch.inputs["continuous_actions"].shape == (2, 4, 2)
    assert batch.inputs["attention_mask"].tolist() == [[True, True, False, False], [True] * 4]
    assert batch.inputs["loss_weight"].tolist() == [[50.0, 50.0, 0.0, 0.0], [50.0] * 4]
    assert batch.inputs["rewards"].dtype == torch.float32
    assert float(batch.inputs["continuous_observations"][0, 2:].abs().sum()) == 0.0


def test_every_batch_is_one_task_and_tasks_follow_sample_weights(tmp_path):
    a, b = toy_task("toy-a", sample_weight=1.0), toy_task("toy-b", sample_weight=3.0, obs=3)
    for t in (a, b):
        write_task(str(tmp_path), t, [5, 6, 7])
    batches = build_batches([a, b], open_sources([a, b], str(tmp_path)), processor=ArrayProcessor(), batch_size=3,
                            max_position_embeddings=8, seed=0)
    drawn = []
    for _ in range(400):
        batch = next(batches)
        width = batch.inputs["continuous_observations"].shape[-1]
        assert width == {"toy-a": 5, "toy-b": 3}[batch.task]  # all three windows from the drawn task
        assert batch.inputs["continuous_observations"].shape[1] <= 4  # context 8 tokens = 4 steps
        drawn.append(batch.task)
    share = drawn.count("toy-b") / len(drawn)
    assert abs(share - 0.75) < 4 * np.sqrt(0.75 * 0.25 / 400), share  # 4 sigma


def test_batch_tokens_cap_the_windows_of_tasks_with_long_windows(tmp_path):
    """``batch_tokens``: a task whose ``batch_size`` windows would exceed the budget gets fewer (long: 4-step windows,
    8 tokens each: 32 tokens hold 4); a task of short windows keeps ``batch_size`` (short: 2-step episodes)."""
    short, long = toy_task("toy-short"), toy_task("toy-long", obs=3)
    write_task(str(tmp_path), short, [2] * 20)
    write_task(str(tmp_path), long, [8] * 10)
    tasks = [short, long]
    batches = build_batches(tasks, open_sources(tasks, str(tmp_path)), processor=ArrayProcessor(), batch_size=6,
                            max_position_embeddings=8, seed=0, batch_tokens=32)
    assert batches.batch_sizes == {"toy-short": 6, "toy-long": 4}
    for _ in range(20):
        batch = next(batches)
        assert batch.num_tokens == {"toy-short": 24, "toy-long": 32}[batch.task]
        assert batch.inputs["attention_mask"].shape[0] == batches.batch_sizes[batch.task]
    fixed = build_batches(tasks, open_sources(tasks, str(tmp_path)), processor=ArrayProcessor(), batch_size=6,
                          max_position_embeddings=8, seed=0)
    assert fixed.batch_sizes == {"toy-short": 6, "toy-long": 6}


def test_task_batch_size_caps_a_task_or_its_domain(tmp_path):
    """``task_batch_size``: the most windows of one task (its name) or of every task of a domain; a task's own
    setting wins over its domain's, and the token budget still applies below it; a name that is neither refused."""
    from jat_train.training.train_config import TrainConfig, config_from_args

    short, long = toy_task("toy-short"), toy_task("toy-long", obs=3)
    write_task(str(tmp_path), short, [2] * 20)
    write_task(str(tmp_path), long, [8] * 10)
    tasks = [short, long]

    def sizes(caps, **kw):
        return build_batches(tasks, open_sources(tasks, str(tmp_path)), processor=ArrayProcessor(), batch_size=6,
                             max_position_embeddings=8, seed=0, task_batch_size=caps, **kw).batch_sizes

    assert sizes({"toy-short": 2}) == {"toy-short": 2, "toy-long": 6}
    assert sizes({short.domain: 3}) == {"toy-short": 3, "toy-long": 3}
    assert sizes({short.domain: 3, "toy-long": 5}) == {"toy-short": 3, "toy-long": 5}
    assert sizes({"toy-long": 5}, batch_tokens=32) == {"toy-short": 6, "toy-long": 4}
    with pytest.raises(ValueError, match=r"names no task or domain of this run: \['toy-nope'\]"):
        sizes({"toy-nope": 2})
    config = config_from_args(["--output-dir", "x", "--task-batch-size", "atari=16", "--task-batch-size", "a-b=2"])
    assert config.task_batch_size == {"atari": 16, "a-b": 2}
    from jat_core.cli import UserError

    with pytest.raises(UserError, match="--task-batch-size: expected NAME=N"):
        config_from_args(["--output-dir", "x", "--task-batch-size", "atari=0"])
    with pytest.raises(ValueError, match="task_batch_size of 'x'"):
        TrainConfig(task_batch_size={"x": 0})


def test_batch_tokens_must_be_positive():
    from jat_train.training.train_config import TrainConfig

    with pytest.raises(ValueError, match="batch_tokens"):
        TrainConfig(batch_tokens=0)


def test_ranks_read_disjoint_shards_covering_every_episode(data_dir):
    spec = toy_task()
    seen = []
    for rank in range(2):
        src = open_episodes(spec, data_dir, rank=rank, world_size=2, seed=7)
        idx = [src.next_episode()[0] for _ in range(len(src._order))]
        assert src.epoch == 0
        seen.append(idx)
    assert not set(seen[0]) & set(seen[1])
    assert sorted(seen[0] + seen[1]) == list(range(len(LENGTHS)))
    # with more ranks than episodes, every rank still gets one
    src = open_episodes(spec, data_dir, rank=6, world_size=8)
    assert src.next_episode()[0] in range(len(LENGTHS))


def _take(batches, n):
    return [(b.task, {k: v.clone() for k, v in b.inputs.items()}) for b in (next(batches) for _ in range(n))]


def _assert_same(xs, ys):
    assert [t for t, _ in xs] == [t for t, _ in ys]
    for (_, x), (_, y) in zip(xs, ys):
        assert x.keys() == y.keys()
        for k in x:
            assert torch.equal(x[k], y[k]), k


def test_data_position_restores_the_exact_batch_sequence(tmp_path):
    a, b = toy_task("toy-a", sample_weight=2.0), toy_task("toy-b", obs=3)
    for t in (a, b):
        write_task(str(tmp_path), t, [5, 9, 2, 13])

    def make():
        sources = open_sources([a, b], str(tmp_path), seed=1)
        return build_batches([a, b], sources, processor=ArrayProcessor(), batch_size=2, max_position_embeddings=8,
                             seed=1)

    first = make()
    _take(first, 7)  # mid-episode, mid-epoch
    state = first.state_dict()
    import json

    state = json.loads(json.dumps(state))  # what the checkpoint stores
    expected = _take(first, 25)  # crosses epochs
    second = make()
    second.load_state_dict(state)
    _assert_same(_take(second, 25), expected)


def test_stream_source_shards_and_resumes_exactly(tmp_path):
    spec = toy_task()
    rows = [episode(n, seed=i, offset=100.0 * i) for i, n in enumerate([5, 9, 2, 13, 6, 3])]
    ds = Dataset.from_dict({k: [r[k] for r in rows] for k in rows[0]})

    def stream(rank):
        return StreamEpisodes(ds.to_iterable_dataset(num_shards=2), task=spec.name, rank=rank, world_size=2)

    firsts = [int(stream(rank).next_episode()[1]["rewards"][0]) // 100 for rank in range(2)]
    assert firsts[0] != firsts[1]  # each rank reads its own part
    s = stream(1)
    windows = TaskWindows(spec, s, 4)
    for _ in range(3):
        windows.next_window()
    state = windows.state_dict()
    expected = [windows.next_window().steps["rewards"] for _ in range(12)]  # crosses an epoch
    again = TaskWindows(spec, stream(1), 4)
    again.load_state_dict(state)
    got = [again.next_window().steps["rewards"] for _ in range(12)]
    for x, y in zip(got, expected):
        np.testing.assert_array_equal(x, y)


def test_bad_episode_names_task_episode_and_field(tmp_path):
    spec = toy_task()
    rows = [episode(4, seed=0), episode(4, seed=1)]
    rows[1]["continuous_observations"] = np.zeros((4, 6), np.float32).tolist()  # 6 values, spec says 5
    ds = Dataset.from_dict({k: [r[k] for r in rows] for k in rows[0]})
    stream = TaskWindows(spec, LocalEpisodes(ds, task=spec.name, seed=0), 4)
    with pytest.raises(DataError) as err:
        for _ in range(2):
            stream.next_window()
    msg = str(err.value)
    assert "toy-reach" in msg and "episode 1" in msg and "continuous_observations" in msg
    assert "(4, 5)" in msg and "(4, 6)" in msg
    with pytest.raises(DataError, match="episode 3: no 'rewards' column"):
        check_episode(spec, 3, {"continuous_observations": np.zeros((2, 5), np.float32)})


def test_missing_local_data_and_unreachable_hub_point_to_jat_collect(tmp_path, monkeypatch):
    spec = toy_task()
    with pytest.raises(DataError, match="jat-collect --tasks toy-reach --out DIR"):
        open_episodes(spec, str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(DataError, match=r"could not stream 'nobody/toy-dataset'.*jat-collect .*--data DIR"):
        open_episodes(spec, "hub")


def test_empty_episodes_are_skipped(tmp_path):
    spec = toy_task()
    rows = [episode(0), episode(3, seed=1)]
    ds = Dataset.from_dict({k: [r[k] for r in rows] for k in rows[0]})
    batches = MultiTaskBatches([spec], {spec.name: TaskWindows(spec, LocalEpisodes(ds, task=spec.name), 8)},
                               batch_size=2, processor=ArrayProcessor())
    batch = next(batches)
    assert batch.inputs["attention_mask"].all() and batch.inputs["rewards"].shape == (2, 3)


def test_shuffled_windows_cover_every_window_once_per_epoch_in_a_new_order(data_dir):
    from jat_train.data.windows import ShuffledWindows

    spec = toy_task()
    windows = ShuffledWindows(spec, open_episodes(spec, data_dir, seed=3), 4)
    n = sum(-(-length // 4) for length in LENGTHS)
    assert windows.num_windows == n
    first = [windows.next_window() for _ in range(n)]
    second = [windows.next_window() for _ in range(n)]
    assert windows.epoch == 1 and windows.cursor == n
    for epoch in (first, second):  # nothing dropped: the steps of each epoch add up to the data
        assert sum(len(w) for w in epoch) == sum(LENGTHS)
        assert sorted(len(w) for w in epoch) == sorted(
            b - a for length in LENGTHS for a, b in [(s, min(s + 4, length)) for s in range(0, length, 4)])
    lengths = [len(w) for w in first], [len(w) for w in second]
    obs = [np.concatenate([w.steps["continuous_observations"] for w in e]) for e in (first, second)]
    assert lengths[0] != lengths[1] or not np.array_equal(*obs)  # another order


def test_shuffled_windows_are_drawn_across_episodes_not_in_sequence(tmp_path):
    """A batch holds windows of several episodes, not consecutive pieces of one (the reference's sampling)."""
    from jat_train.data.windows import ShuffledWindows

    spec = toy_task()
    write_task(str(tmp_path), spec, [40] * 10)
    windows = ShuffledWindows(spec, open_episodes(spec, str(tmp_path), seed=0), 4)
    raw = Dataset.load_from_disk(f"{tmp_path}/toy-reach/train")
    observations = [np.asarray(raw[i]["continuous_observations"], np.float32) for i in range(10)]

    def origin(window):  # the episode holding the window's first observation
        first = window.steps["continuous_observations"][0]
        return next(i for i, o in enumerate(observations) if (o == first).all(axis=1).any())

    episodes = {origin(windows.next_window()) for _ in range(8)}
    assert len(episodes) >= 4, episodes


def test_shuffled_windows_shard_across_ranks_and_resume(data_dir):
    import json

    from jat_train.data.windows import ShuffledWindows

    spec = toy_task()
    per_rank = []
    for rank in range(2):
        w = ShuffledWindows(spec, open_episodes(spec, data_dir, rank=rank, world_size=2, seed=5), 4)
        per_rank.append([w.next_window() for _ in range(len(w._order))])
    assert sum(len(x) for rank in per_rank for x in rank) == sum(LENGTHS)  # disjoint and complete
    w = ShuffledWindows(spec, open_episodes(spec, data_dir, seed=5), 4)
    for _ in range(11):
        w.next_window()
    state = json.loads(json.dumps(w.state_dict()))
    expected = [w.next_window().steps for _ in range(9)]
    again = ShuffledWindows(spec, open_episodes(spec, data_dir, seed=5), 4)
    again.load_state_dict(state)
    for a, b in zip([again.next_window().steps for _ in range(9)], expected):
        assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def test_grouped_by_length_batches_hold_alike_windows_each_read_once_per_epoch(tmp_path):
    """group_by_length: each run of ``group`` windows comes sorted by length (little padding per batch), every
    window is still read once per epoch, the runs differ from epoch to epoch, and a position resumes exactly."""
    import json

    from jat_train.data.windows import ShuffledWindows

    spec = toy_task()
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 30, size=60).tolist()
    write_task(str(tmp_path), spec, lengths)
    plain = ShuffledWindows(spec, open_episodes(spec, str(tmp_path), seed=2), 32)
    grouped = ShuffledWindows(spec, open_episodes(spec, str(tmp_path), seed=2), 32)
    grouped.group_by_length(16)
    epochs = [[len(grouped.next_window()) for _ in range(60)] for _ in range(2)]
    for epoch in epochs:
        assert sorted(epoch) == sorted(lengths)  # one window per episode, each once
        for start in range(0, 60, 16):
            assert epoch[start : start + 16] == sorted(epoch[start : start + 16])
    assert epochs[0] != epochs[1]
    padded = [sum(4 * max(run[i : i + 4]) for i in range(0, len(run), 4)) for run in
              ([len(plain.next_window()) for _ in range(60)], epochs[0])]
    assert padded[1] < 0.8 * padded[0]  # batches of 4 pad less
    for _ in range(7):
        grouped.next_window()
    state = json.loads(json.dumps(grouped.state_dict()))
    expected = [grouped.next_window().steps for _ in range(20)]
    again = ShuffledWindows(spec, open_episodes(spec, str(tmp_path), seed=2), 32)
    again.group_by_length(16)
    again.load_state_dict(state)
    for a, b in zip([again.next_window().steps for _ in range(20)], expected):
        assert all(np.array_equal(a[k], b[k]) for k in a)
    with pytest.raises(ValueError, match="toy-reach.*group must be at least 1"):
        grouped.group_by_length(0)
