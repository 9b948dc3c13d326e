"""jat-generalist's pieces: the recipe, which tasks it picks, the data cache, the data judge, the phase clock."""

import json
import os

import pytest
from jat_core.cli import UserError
from jat_core.plugins import load_plugins
from jat_train.collection.datacache import RECIPE_FILE, cache_entry, link_data
from jat_train.generalist import judge_data, local_candidates, read_recipe, select_tasks, spread
from jat_train.phases import PhaseClock

RECIPE = {"select": {"babyai": 3}, "collect": {"default": {"episodes": 5}}, "train": [], "eval": {}}


@pytest.fixture(scope="module")
def registry():
    return load_plugins()


def test_spread_takes_evenly_spaced_names_from_first_to_last():
    names = [f"t{i:02d}" for i in range(10)]
    assert spread(names, 3) == ["t00", "t04", "t09"] or spread(names, 3) == ["t00", "t05", "t09"]
    assert spread(names, 1) == ["t00"]
    assert spread(names, 20) == names
    assert spread(list(reversed(names)), 2) == ["t00", "t09"]


def test_select_counts_lists_includes_and_all(registry):
    babyai = sorted(t.name for t in local_candidates(registry.select("babyai")))
    picked = select_tasks(registry, {"babyai": 4}, everything=False, local=True)
    assert [t.name for t in picked] == spread(babyai, 4)
    picked = select_tasks(registry, {"babyai": {"count": 3, "include": ["babyai-go-to-obj"]},
                                     "text": ["captions-shapes"]}, everything=False, local=True)
    names = [t.name for t in picked]
    assert names[0] == "babyai-go-to-obj" and len(names) == 4 and names[-1] == "captions-shapes"
    assert len(set(names)) == 4
    everything = select_tasks(registry, {"babyai": 2, "text": ["text-local"]}, everything=True, local=True)
    assert {t.name for t in everything} >= set(babyai) | {"text-local", "captions-shapes"}
    assert "oscar" not in {t.name for t in everything}  # hub-only: no local sample source
    hub = select_tasks(registry, {"text": "all"}, everything=False, local=False)
    assert "oscar" in {t.name for t in hub}


def test_select_refuses_bad_entries_naming_them(registry):
    with pytest.raises(UserError, match=r"select.babyai: \['babyai-nope'\]"):
        select_tasks(registry, {"babyai": ["babyai-nope"]}, everything=False, local=True)
    with pytest.raises(UserError, match="select.babyai: expected a positive number"):
        select_tasks(registry, {"babyai": 0}, everything=False, local=True)


def test_read_recipe_names_the_file_and_field(tmp_path):
    path = tmp_path / "r.json"
    path.write_text(json.dumps(RECIPE))
    assert read_recipe(path) == RECIPE
    path.write_text(json.dumps({**RECIPE, "train": "--preset tiny"}))
    with pytest.raises(UserError, match="field 'train': expected a JSON list"):
        read_recipe(path)
    path.write_text(json.dumps({**RECIPE, "collect": {"babyai": {"episode": 3}}}))
    with pytest.raises(UserError, match=r"collect.babyai: unknown options \['episode'\]"):
        read_recipe(path)
    path.write_text("{not json")
    with pytest.raises(UserError, match="cannot read .* as JSON"):
        read_recipe(path)


def test_cache_key_follows_what_produced_the_data(tmp_path):
    a = cache_entry(tmp_path, "babyai-go-to", {"episodes": 10, "seed": 0})
    assert a.key == cache_entry(tmp_path, "babyai-go-to", {"seed": 0, "episodes": 10}).key
    assert a.key != cache_entry(tmp_path, "babyai-go-to", {"episodes": 11, "seed": 0}).key
    assert a.key != cache_entry(tmp_path, "babyai-go-to", {"episodes": 10, "seed": 1}).key
    assert a.key != cache_entry(tmp_path, "babyai-go-to", {"episodes": 10, "seed": 0, "action_noise": 0.1}).key
    assert a.key != cache_entry(tmp_path, "babyai-obj", {"episodes": 10, "seed": 0}).key
    assert "jat-train" in a.options["versions"]


def test_cache_entry_is_published_only_when_complete(tmp_path):
    entry = cache_entry(tmp_path, "toy", {"episodes": 1})
    with pytest.raises(RuntimeError), entry.writing() as out:
        (out / "toy").mkdir(parents=True)
        raise RuntimeError("collection died")
    assert not entry.ready() and os.listdir(tmp_path / "toy") == []  # nothing half-written is left
    with entry.writing() as out:
        (out / "toy").mkdir(parents=True)
        (out / "toy" / "rows").write_text("data")
    assert entry.ready() and json.loads((entry.folder / RECIPE_FILE).read_text())["episodes"] == 1
    assert os.listdir(tmp_path / "toy") == [entry.key]
    with entry.writing() as out:  # a second writer of a published entry keeps the first
        (out / "toy").mkdir(parents=True)
        (out / "toy" / "rows").write_text("other")
    assert (entry.data_dir / "rows").read_text() == "data"


def _tree(root) -> dict[str, bytes]:
    return {os.path.relpath(os.path.join(d, n), root): open(os.path.join(d, n), "rb").read()
            for d, _, files in os.walk(root) for n in files}


def test_a_full_disk_while_caching_leaves_the_cache_as_it_was(tmp_path, monkeypatch):
    """A collection that runs out of room (the child ``jat-collect`` fails), or ``recipe.json`` that does not fit:
    no entry is published, nothing half-written is left, the entries already there are unchanged; the second names
    the file and the cause."""
    import errno

    import jat_train.files

    kept = cache_entry(tmp_path, "toy", {"episodes": 1})
    with kept.writing() as out:
        (out / "toy").mkdir(parents=True)
        (out / "toy" / "rows").write_text("data")
    before = _tree(tmp_path)
    for fails in ("collect", "recipe"):
        entry = cache_entry(tmp_path, "toy", {"episodes": 2, "fails": fails})

        def no_room(path):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        with pytest.raises(OSError) as err, entry.writing() as out:
            (out / "toy").mkdir(parents=True)
            (out / "toy" / "rows").write_text("half")
            if fails == "collect":
                no_room(out)
            monkeypatch.setattr(jat_train.files, "fsync_file", no_room)  # the disk fills at recipe.json
        monkeypatch.undo()
        assert err.value.errno == errno.ENOSPC and not entry.ready()
        if fails == "recipe":
            assert str(err.value).startswith(f"cannot write '{entry.folder}.partial-"), err.value
            assert "recipe.json': No space left on device; the cache entry" in str(err.value), err.value
        assert sorted(os.listdir(tmp_path / "toy")) == [kept.key] and _tree(tmp_path) == before


def test_link_data_points_each_task_at_its_entry(tmp_path):
    a, b = tmp_path / "cache" / "a", tmp_path / "cache" / "b"
    a.mkdir(parents=True)
    b.mkdir(parents=True)
    link_data({"x": a}, tmp_path / "data")
    link_data({"x": b}, tmp_path / "data")
    assert os.path.realpath(tmp_path / "data" / "x") == str(b.resolve())


def test_judge_data_leaves_out_tasks_whose_data_do_not_beat_random(tmp_path):
    import dataclasses

    from jat_core.specs import Scores
    from trainkit import toy_task, write_task

    good = dataclasses.replace(toy_task("toy-good"), scores=Scores(random=0.0, expert=10.0))
    weak = dataclasses.replace(toy_task("toy-weak"), scores=Scores(random=20.0, expert=40.0))
    free = toy_task("toy-free")  # no reference scores: nothing to judge against, kept
    for task in (good, weak, free):
        write_task(str(tmp_path), task, [3, 5], test_lengths=(3, 5))  # data return 9
    kept, left_out = judge_data([good, weak, free], tmp_path, 0.1)
    assert [t.name for t in kept] == ["toy-good", "toy-free"]
    assert left_out == {"toy-weak": "its expert's episodes return 9.0, expert-normalised -0.55 < 0.1"}


def test_phase_clock_times_phases_and_sees_children_memory():
    import subprocess
    import sys

    with PhaseClock(interval=0.05) as clock:
        with clock.phase("child"):
            subprocess.run([sys.executable, "-c", "import time; b = bytearray(200_000_000); time.sleep(0.6)"],
                           check=True)
    (phase,) = clock.phases
    assert phase["phase"] == "child" and phase["seconds"] >= 0.6
    assert phase["peak_bytes"] > 200_000_000
    assert "| child |" in clock.table() and "| **all** |" in clock.table()


def test_baseline_section_sets_shared_tasks_beside_the_baseline():
    from jat_train.generalist import baseline_section

    results = {"tasks": {"a": {"data_normalized": 0.9}, "b": {"data_normalized": None}, "c": {}},
               "text_tasks": {"t": {}}}
    baseline = {"name": "make demo", "source": "a run", "steps_per_task": 1000,
                "data_normalized": {"a": 1.0, "b": 0.5, "z": 1.0}}
    text = baseline_section(results, baseline, 4000)
    assert "## Beside make demo (data-normalised)" in text
    assert "3 env tasks and 1 other tasks in 4000 steps (about 1000 steps per task; the baseline: 1000)" in text
    assert "| a | 1.000 | 0.900 | -0.100 |" in text and "| b | 0.500 | n/a | n/a |" in text
    assert "| z |" not in text
    assert baseline_section(results, None, 10) == "" and baseline_section(results, {"data_normalized": {"q": 1}}, 1) == ""
