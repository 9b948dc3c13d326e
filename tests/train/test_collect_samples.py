"""jat-collect for tasks without an env: the rows of TaskSpec.samples, in the hub schema, checked, atomic."""

import itertools

import datasets
import jat_core.plugins
import numpy as np
import pytest
from jat_core.plugins import Registry
from jat_core.specs import FieldSpec, TaskSpec
from jat_envs.text import plugin as text
from jat_train import cli
from jat_train.collection.collect import features_for
from jat_train.collection.samples import collect_samples, collect_samples_to_disk


@pytest.fixture(scope="module")
def registry():
    registry = Registry()
    text.jat_register_tasks(register=lambda spec: registry.register_task("text", spec))
    return registry


@pytest.fixture
def cli_registry(monkeypatch, registry):
    monkeypatch.setattr(jat_core.plugins, "load_plugins", lambda names=None: registry)


@pytest.fixture
def folder(tmp_path):
    """A folder of .txt files: 12 documents of one paragraph each."""
    root = tmp_path / "texts"
    root.mkdir()
    for i in range(12):
        (root / f"doc{i:02d}.txt").write_text(f"Document number {i} says hello.\n")
    return root


def test_local_tasks_have_the_schema_of_their_hub_configs(registry):
    assert dict(features_for(registry.task("text-local"))) == dict(features_for(registry.task("oscar")))
    assert dict(features_for(registry.task("captions-shapes"))) == {
        "images": datasets.Image(),
        "text": datasets.Value("string"),
    }


def test_cli_writes_text_from_a_folder(cli_registry, folder, tmp_path, capsys):
    out = tmp_path / "data"
    argv = ["--tasks", "text-local", "--episodes", "100", "--out", str(out), "--input-dir", str(folder),
            "--no-progress", "--test-fraction", "0.25"]
    assert cli.collect_main(argv) == 0
    assert "text-local: 9 train + 3 test samples" in capsys.readouterr().out  # the source held 12 (< 100)
    data = datasets.load_from_disk(str(out / "text-local"))
    texts = list(data["train"]["text"]) + list(data["test"]["text"])
    assert sorted(texts) == sorted(f"Document number {i} says hello." for i in range(12))
    assert texts != sorted(texts)  # the files were shuffled (seeded)
    first = list(texts)
    assert cli.collect_main(argv) == 0  # same seed, same data set
    again = datasets.load_from_disk(str(out / "text-local"))
    assert list(again["train"]["text"]) + list(again["test"]["text"]) == first


def test_cli_draws_captions(cli_registry, tmp_path, capsys):
    out = tmp_path / "data"
    assert cli.collect_main(["--tasks", "captions-shapes", "--episodes", "10", "--out", str(out), "--no-progress"]) == 0
    assert "captions-shapes: 9 train + 1 test samples" in capsys.readouterr().out
    data = datasets.load_from_disk(str(out / "captions-shapes")).with_format("numpy")
    drawn = list(itertools.islice(registry_samples("captions-shapes"), 10))
    row = data["train"][3]
    assert row["images"].shape == (224, 224, 3) and row["images"].dtype == np.uint8
    assert np.array_equal(row["images"], drawn[3]["images"]) and row["text"] == drawn[3]["text"]  # lossless PNG


def registry_samples(name):
    registry = Registry()
    text.jat_register_tasks(register=lambda spec: registry.register_task("text", spec))
    return registry.task(name).samples(seed=0, input_dir=None)


def test_cli_user_errors_exit_2(cli_registry, tmp_path, capsys):
    out = str(tmp_path / "data")
    argv = ["--tasks", "text-local", "--episodes", "5", "--out", out, "--no-progress"]
    assert cli.collect_main([*argv, "--input-dir", str(tmp_path / "missing")]) == 2
    assert "--input-dir: expected a directory of input files" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert cli.collect_main([*argv, "--input-dir", str(tmp_path / "empty")]) == 2
    err = capsys.readouterr().err
    assert "holds no *.txt file" in err and len(err.strip().splitlines()) == 1
    assert cli.collect_main(["--tasks", "oscar", "--episodes", "1", "--out", out]) == 2
    assert "without an environment or a local sample source cannot be collected: oscar" in capsys.readouterr().err


def _task(samples) -> TaskSpec:
    return TaskSpec(name="toy-captions", domain="toy", samples=samples,
                    observation=(FieldSpec("images", "vit", (8, 8, 3), "uint8"), FieldSpec("text", "text", (), "string")))


def test_bad_rows_are_refused_naming_sample_and_field(tmp_path):
    good = {"images": np.zeros((8, 8, 3), np.uint8), "text": "ok"}
    cases = {
        "no value for field(s) ['text']": {"images": good["images"]},
        "field 'images': expected shape (8, 8, 3), got (8, 8)": {**good, "images": np.zeros((8, 8), np.uint8)},
        "field 'text': expected str values": {**good, "text": 3},
    }
    for message, bad in cases.items():
        task = _task(lambda seed=0, input_dir=None, bad=bad: iter([good, bad]))
        with pytest.raises(ValueError, match="task 'toy-captions'") as info:
            collect_samples(task, 5, progress=False)
        assert message in str(info.value) and "sample 1" in str(info.value)
    with pytest.raises(ValueError, match="gave no sample"):
        collect_samples(_task(lambda seed=0, input_dir=None: iter([])), 5, progress=False)


def test_a_failed_collection_keeps_the_previous_data(tmp_path):
    good = {"images": np.full((8, 8, 3), 7, np.uint8), "text": "first"}
    summary = collect_samples_to_disk(_task(lambda seed=0, input_dir=None: iter([good] * 4)), 4, str(tmp_path),
                                      progress=False)
    assert (summary.train_samples, summary.test_samples) == (3, 1)

    def broken(seed=0, input_dir=None):
        yield {**good, "text": "second"}
        raise RuntimeError("the source broke")

    with pytest.raises(RuntimeError, match="the source broke"):
        collect_samples_to_disk(_task(broken), 4, str(tmp_path), progress=False)
    kept = datasets.load_from_disk(str(tmp_path / "toy-captions"))
    assert list(kept["train"]["text"]) == ["first"] * 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["toy-captions"]  # no temporary folder left
