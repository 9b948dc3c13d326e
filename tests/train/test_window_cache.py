"""ShuffledWindows keeps decoded episodes (least recently used dropped first, within a byte budget): the windows
are the same whatever the budget, and each episode is read from the data set once while it fits."""

import numpy as np
from jat_train.data import windows
from jat_train.data.episodes import open_episodes
from trainkit import toy_task, write_task


def _walk(tmp_path, budget, monkeypatch, n=400):
    monkeypatch.setattr(windows, "EPISODE_CACHE_BYTES", budget)
    task = toy_task()
    write_task(str(tmp_path), task, [40, 25, 70, 9, 33], seed=1)
    source = open_episodes(task, str(tmp_path))
    reader = windows.ShuffledWindows(task, source, context=8)
    reads = []
    dataset = source.dataset
    source.dataset = _Counting(dataset, reads)
    out = [reader.next_window().steps for _ in range(n)]
    return out, reads, reader


class _Counting:
    """The data set, counting the rows read."""

    def __init__(self, dataset, reads):
        self.dataset, self.reads = dataset, reads

    def __getitem__(self, index):
        self.reads.append(index)
        return self.dataset[index]

    def __len__(self):
        return len(self.dataset)


def test_same_windows_whatever_the_budget(tmp_path, monkeypatch):
    big, big_reads, reader = _walk(tmp_path / "a", 1 << 30, monkeypatch)
    small, small_reads, tiny = _walk(tmp_path / "b", 1, monkeypatch)
    assert len(big) == len(small) == 400
    for a, b in zip(big, small):
        assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
    assert sorted(big_reads) == [0, 1, 2, 3, 4]  # every episode read once: all fit
    assert len(small_reads) > 100 and len(tiny._cache) == 1  # a budget of one byte keeps only the last one
    assert set(reader._cache) == {0, 1, 2, 3, 4}
