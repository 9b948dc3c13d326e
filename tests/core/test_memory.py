"""jat_core.memory: glibc keeps freed large blocks in the process; elsewhere nothing changes."""

import ctypes

import pytest
import torch
from jat_core import memory


def test_glibc_takes_the_thresholds_and_large_tensors_still_work():
    if memory._glibc() is None:
        pytest.skip("not glibc: keep_freed_memory changes nothing here")
    assert memory.keep_freed_memory() is True
    assert memory.keep_freed_memory(64 << 20) is True  # again, another limit: still accepted
    for _ in range(3):  # blocks above glibc's usual 32 MiB mmap threshold, freed and reused
        x = torch.ones(3000, 4000)
        assert float(x.sum()) == 12_000_000.0
        del x
    memory.keep_freed_memory()


@pytest.mark.parametrize("limit", [0, 1 << 19, 1 << 31])
def test_limit_out_of_range_is_refused(limit):
    with pytest.raises(ValueError, match="keep_freed_memory: expected limit between 1 MiB and 2 GiB"):
        memory.keep_freed_memory(limit)


def test_another_c_library_is_left_alone(monkeypatch):
    monkeypatch.setattr(memory, "_glibc", lambda: None)
    assert memory.keep_freed_memory() is False


def test_a_refused_setting_reports_false(monkeypatch):
    class Refusing:
        def mallopt(self, param, value):
            assert param in (memory.M_MMAP_THRESHOLD, memory.M_TRIM_THRESHOLD)
            assert isinstance(value, ctypes.c_int)
            return 0

    monkeypatch.setattr(memory, "_glibc", lambda: Refusing())
    assert memory.keep_freed_memory() is False
