"""BatchLoader: DataLoader workers give exactly the in-process batch sequence, and resume exactly."""

import json

import pytest
import torch
from jat_train.data import build_batches, open_sources
from jat_train.data.loader import BatchLoader
from trainkit import ArrayProcessor, toy_task, write_task


@pytest.fixture
def make(tmp_path):
    a, b = toy_task("toy-a", sample_weight=2.0), toy_task("toy-b", obs=3)
    for t in (a, b):
        write_task(str(tmp_path), t, [5, 9, 2, 13])

    def build(num_workers):
        sources = open_sources([a, b], str(tmp_path), seed=1)
        batches = build_batches([a, b], sources, processor=ArrayProcessor(), batch_size=2, max_position_embeddings=8,
                                seed=1)
        return BatchLoader(batches, num_workers=num_workers)

    return build


def take(loader, n):
    return [(b.task, {k: v.clone() for k, v in b.inputs.items()}) for b in (next(loader) for _ in range(n))]


def assert_same(xs, ys):
    assert [t for t, _ in xs] == [t for t, _ in ys]
    for (_, x), (_, y) in zip(xs, ys):
        assert x.keys() == y.keys() and all(torch.equal(x[k], y[k]) for k in x)


def test_workers_give_the_in_process_sequence_and_positions(make):
    reference = make(0)
    expected = take(reference, 17)  # crosses epochs of both tasks
    for workers in (1, 3):
        loader = make(workers)
        assert_same(take(loader, 17), expected)
        assert loader.state_dict() == reference.state_dict()
        loader.close()


def test_resume_with_workers_continues_exactly(make):
    first = make(2)
    take(first, 7)
    state = json.loads(json.dumps(first.state_dict()))  # what a checkpoint stores
    expected = take(first, 12)
    first.close()
    resumed = make(2)
    resumed.load_state_dict(state)
    assert_same(take(resumed, 12), expected)
    resumed.close()
    # and the in-process path from the same position
    again = make(0)
    again.load_state_dict(state)
    assert_same(take(again, 12), expected)


def test_training_process_rng_is_untouched(make):
    torch.manual_seed(0)
    before = torch.get_rng_state()
    loader = make(1)
    take(loader, 2)
    loader.close()
    assert torch.equal(torch.get_rng_state(), before)


def test_a_data_error_in_a_worker_is_raised_as_it_is(tmp_path):
    from datasets import Dataset, DatasetDict
    from jat_train.data import DataError
    from trainkit import episode

    task = toy_task()
    rows = [episode(8, seed=i) for i in range(4)]
    rows[2]["continuous_actions"][3] = [0.0]  # wrong action size
    DatasetDict({"train": Dataset.from_dict({k: [r[k] for r in rows] for k in rows[0]})}).save_to_disk(
        str(tmp_path / "toy-reach"))
    batches = build_batches([task], open_sources([task], str(tmp_path)), processor=ArrayProcessor(), batch_size=4,
                            max_position_embeddings=8)
    loader = BatchLoader(batches, num_workers=1)
    with pytest.raises(DataError) as err:
        take(loader, 8)
    message = str(err.value)
    assert "toy-reach" in message and "episode 2" in message and "DataLoader" not in message
