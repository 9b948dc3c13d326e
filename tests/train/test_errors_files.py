"""Damaged files under ``jat-train``: local data sets (arrow files, their JSON, empty splits) and checkpoints
(``trainer_state.json``, weights, optimizer, scheduler, RNG states, config, tokenizer), by hand and by seeded
random truncation. Each is reported naming the file (one line, exit status 2, no traceback from ``jat-train``)
and leaves the data and checkpoints byte-identical; ``--resume`` falls back from a damaged latest checkpoint to
the previous good one (saying so) and continues exactly, or stops naming the damaged files, and never trains
from scratch over them. A checkpoint whose pickles would run code is refused the same way, before anything in it
runs; episodes with ragged steps are refused naming the task, episode, step and field."""

import logging
import os
import shutil

import jat_core.plugins
import numpy as np
import pytest
import torch
from jat_train.data import DataError, open_episodes
from jat_train.training import checkpoint as ckpt
from jat_train.training.trainer import TrainConfig, main, read_log, train
from safetensors.torch import load_file
from trainkit import (
    CLI_MODEL,
    assert_one_line_error,
    episode,
    snapshot,
    toy_registry,
    toy_task,
    train_argv,
    write_task,
)

TASK = "toy-reach"


@pytest.fixture(autouse=True)
def toy_plugins(monkeypatch):
    monkeypatch.setattr(jat_core.plugins, "load_plugins", lambda names=None: toy_registry(toy_task()))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Local data and a finished 4-step run with checkpoints 2 and 4 (copied by each test before damage)."""
    root = tmp_path_factory.mktemp("trained")
    write_task(str(root / "data"), toy_task(), [5, 9, 2, 13, 6, 17, 8])
    config = TrainConfig(data=str(root / "data"), output_dir=str(root / "run"), model_overrides=CLI_MODEL,
                         tokenizer="bpe:300", max_steps=4, save_every=2, save_total_limit=None, batch_size=2,
                         learning_rate=1e-3, num_threads=1, progress=False, mixed_precision="no", cpu=True)
    train(config, registry=toy_registry(toy_task()))
    assert [s for s, _ in ckpt.list_checkpoints(config.output_dir)] == [2, 4]
    return root


@pytest.fixture
def run_copy(trained, tmp_path):
    shutil.copytree(trained / "data", tmp_path / "data")
    shutil.copytree(trained / "run", tmp_path / "run")
    return tmp_path / "data", tmp_path / "run"


# -- damage -------------------------------------------------------------------------------------------------
def _cut(fraction):
    def damage(path):
        data = open(path, "rb").read()
        open(path, "wb").write(data[: int(len(data) * fraction)])

    return damage


def _flip(offset_fraction, n=32, seed=0):
    def damage(path):
        data = bytearray(open(path, "rb").read())
        start = int(len(data) * offset_fraction)
        rng = np.random.default_rng(seed)
        data[start : start + n] = rng.integers(0, 256, min(n, len(data) - start), dtype=np.uint8).tobytes()
        open(path, "wb").write(bytes(data))

    return damage


def _write(text):
    def damage(path):
        open(path, "w").write(text)

    return damage


def _remove(path):
    os.remove(path)


CHECKPOINT_DAMAGE = [
    ("trainer_state.json", _write("{\"step\": 4,"), "not valid JSON"),
    ("trainer_state.json", _write(""), "not valid JSON"),
    ("trainer_state.json", _write("[4]"), "integer 'step'"),
    ("trainer_state.json", _write("{\"step\": \"4\"}"), "integer 'step'"),
    ("trainer_state.json", _write("{\"step\": 7}"), "step 7, but the directory is step 4"),
    ("trainer_state.json", _remove, "missing"),
    ("model.safetensors", _cut(0.5), "unreadable"),
    ("model.safetensors", _cut(0.0), "unreadable"),
    ("model.safetensors", _flip(0.0, 8), "unreadable"),
    ("model.safetensors", _remove, "unreadable"),
    ("optimizer.pt", _cut(0.9), "damaged"),
    ("optimizer.pt", _flip(0.3, 64, seed=1), "damaged"),
    ("optimizer.pt", _remove, "missing"),
    ("scheduler.pt", _write(""), "damaged"),
    ("rank-0.pt", _flip(0.5, 16, seed=2), "damaged"),
    ("config.json", _cut(0.5), "not valid JSON"),
    ("tokenizer.json", _cut(0.7), "not valid JSON"),
]


@pytest.mark.parametrize("name, damage, what", CHECKPOINT_DAMAGE,
                         ids=[f"{n}-{i}" for i, (n, _, _) in enumerate(CHECKPOINT_DAMAGE)])
def test_a_damaged_latest_checkpoint_is_skipped_naming_the_file(run_copy, name, damage, what):
    _, run = run_copy
    damage(str(run / "checkpoint-4" / name))
    before = snapshot(run)
    problem = ckpt.checkpoint_problem(str(run / "checkpoint-4"))
    assert problem is not None and os.path.join("checkpoint-4", name) in problem and what in problem, problem
    assert ckpt.checkpoint_problem(str(run / "checkpoint-2")) is None
    warnings = []
    assert ckpt.resume_checkpoint(str(run), warn=warnings.append) == str(run / "checkpoint-2")
    assert len(warnings) == 1 and os.path.join("checkpoint-4", name) in warnings[0] and "falling back" in warnings[0]
    assert snapshot(run) == before


def test_resume_from_a_damaged_latest_falls_back_and_continues_exactly(run_copy, trained, caplog):
    data, run = run_copy
    _cut(0.5)(str(run / "checkpoint-4" / "model.safetensors"))
    with caplog.at_level(logging.WARNING, logger="jat_train.training.trainer"):
        assert main(train_argv(data, run, "--resume")) == 0
    assert any("checkpoint-4" in r.getMessage() and "model.safetensors" in r.getMessage() and "falling back"
               in r.getMessage() for r in caplog.records)
    assert [r["step"] for r in read_log(str(run))] == [1, 2, 3, 4]
    # resumed from step 2, not from scratch: the same weights as the uninterrupted run
    got = load_file(str(run / "checkpoint-4" / "model.safetensors"))
    expected = load_file(str(trained / "run" / "checkpoint-4" / "model.safetensors"))
    assert all(torch.equal(got[k], expected[k]) for k in expected)
    assert ckpt.checkpoint_problem(str(run / "checkpoint-4")) is None  # the damaged one was rewritten


def test_resume_stops_when_every_checkpoint_is_damaged(run_copy, capsys):
    data, run = run_copy
    _write("")(str(run / "checkpoint-4" / "trainer_state.json"))
    _cut(0.5)(str(run / "checkpoint-2" / "optimizer.pt"))
    before, data_before = snapshot(run), snapshot(data)
    assert main(train_argv(data, run, "--resume")) == 2
    line = assert_one_line_error(capsys.readouterr().err, "jat-train", "--resume", "no intact checkpoint")
    assert os.path.join("checkpoint-4", "trainer_state.json") in line
    assert os.path.join("checkpoint-2", "optimizer.pt") in line
    assert snapshot(run) == before and snapshot(data) == data_before


def test_resume_with_only_incomplete_checkpoint_dirs_does_not_start_from_scratch(run_copy, capsys):
    data, run = run_copy
    for step in (2, 4):
        os.remove(run / f"checkpoint-{step}" / "trainer_state.json")
    before = snapshot(run)
    assert main(train_argv(data, run, "--resume")) == 2
    assert_one_line_error(capsys.readouterr().err, "jat-train", "trainer_state.json: missing")
    assert snapshot(run) == before


def test_a_checkpoint_file_that_fails_to_load_is_named(run_copy):
    """Damage the validation cannot see (a pickle that unpickles to the wrong thing) is still named on load."""
    from accelerate import Accelerator
    from jat_train.training.trainer import build_model

    _, run = run_copy
    torch.save({"not": "an optimizer state"}, run / "checkpoint-4" / "optimizer.pt")
    config = TrainConfig(model_overrides=CLI_MODEL, tokenizer="bpe:300")
    model = build_model(config, None)
    optimizer = torch.optim.AdamW(model.parameters())
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 1.0)
    with pytest.raises(ckpt.CheckpointError, match=r"checkpoint-4/optimizer.pt' cannot be read"):
        ckpt.load_checkpoint(str(run / "checkpoint-4"), accelerator=Accelerator(cpu=True), model=model,
                             optimizer=optimizer, scheduler=scheduler)


# -- checkpoints from someone else: nothing in them runs as code ---------------------------------------------------
class _RunsCode:
    """Unpickling this calls ``os.mkdir(marker)``: what a hostile checkpoint could do with any function."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return os.mkdir, (self.marker,)


@pytest.mark.parametrize("name", ["optimizer.pt", "scheduler.pt", "rank-0.pt"])
def test_a_pickle_that_runs_code_is_refused_and_resume_falls_back(run_copy, trained, tmp_path, name):
    data, run = run_copy
    marker = tmp_path / "code-ran"
    state = torch.load(run / "checkpoint-4" / name, weights_only=False)  # our own file: trusted
    torch.save({"state": state, "payload": _RunsCode(marker)}, run / "checkpoint-4" / name)
    problem = ckpt.checkpoint_problem(str(run / "checkpoint-4"))
    assert not marker.exists()
    code = main(train_argv(data, run, "--resume"))
    assert not marker.exists(), "resuming ran code from the checkpoint"
    assert code == 0
    assert problem and os.path.join("checkpoint-4", name) in problem and "refused" in problem, problem
    assert "posix.mkdir" in problem or "os.mkdir" in problem, problem
    # resumed from step 2: the same weights as the uninterrupted run
    got = load_file(str(run / "checkpoint-4" / "model.safetensors"))
    expected = load_file(str(trained / "run" / "checkpoint-4" / "model.safetensors"))
    assert all(torch.equal(got[k], expected[k]) for k in expected)


def test_a_checkpoint_value_weights_only_cannot_build_is_named_on_load(run_copy):
    """A class the scan lets through but ``weights_only`` will not build (a float64 numpy array) is refused on
    load, naming the file, never unpickled the unsafe way."""
    from accelerate import Accelerator
    from jat_train.training.trainer import build_model

    _, run = run_copy
    rank = torch.load(run / "checkpoint-4" / "rank-0.pt", weights_only=False)  # our own file: trusted
    rank["data"] = np.zeros(3)  # float64: its dtype class is not allowed
    torch.save(rank, run / "checkpoint-4" / "rank-0.pt")
    model = build_model(TrainConfig(model_overrides=CLI_MODEL, tokenizer="bpe:300"), None)
    optimizer = torch.optim.AdamW(model.parameters())
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 1.0)
    with pytest.raises(ckpt.CheckpointError, match=r"checkpoint-4/rank-0.pt' cannot be read \(UnpicklingError"):
        ckpt.load_checkpoint(str(run / "checkpoint-4"), accelerator=Accelerator(cpu=True), model=model,
                             optimizer=optimizer, scheduler=scheduler)


def test_checkpoints_as_written_load_without_unpickling_code(trained):
    """The format is unchanged: every ``.pt`` file jat-train writes loads with ``weights_only=True`` (the RNG
    states' numpy arrays through ``SAFE_GLOBALS``)."""
    for step in (2, 4):
        path = trained / "run" / f"checkpoint-{step}"
        assert ckpt.checkpoint_problem(str(path)) is None
        for name in ("optimizer.pt", "scheduler.pt", "rank-0.pt"):
            ckpt.load_torch_file(str(path / name))
        rank = ckpt.load_torch_file(str(path / "rank-0.pt"))
        assert isinstance(rank["rng"]["numpy"][1], np.ndarray) and rank["rng"]["numpy"][1].dtype == np.uint32
        with pytest.raises(Exception, match="Weights only load failed"):  # why SAFE_GLOBALS exists
            torch.load(str(path / "rank-0.pt"), weights_only=True)


# -- damaged and unusable data -------------------------------------------------------------------------------
ARROW = os.path.join("toy-reach", "train", "data-00000-of-00001.arrow")


def _empty_split_without_shard(root):
    """What older ``jat-collect --episodes 1`` runs wrote: an empty test split saved with 0 shards."""
    from datasets import Dataset, DatasetDict

    path = os.path.join(root, TASK)
    shutil.rmtree(path)
    rows = [episode(4, seed=0)]
    columns = {k: [r[k] for r in rows] for k in rows[0]}
    DatasetDict({"train": Dataset.from_dict(columns),
                 "test": Dataset.from_dict(columns).select([])}).save_to_disk(path)


DATA_DAMAGE = [
    (ARROW, _cut(0.5), [ARROW, "damaged"]),
    (ARROW, _cut(0.05), [ARROW, "damaged"]),
    (ARROW, _write(""), [ARROW, "damaged"]),
    (ARROW, _flip(0.0, 16), [ARROW, "damaged"]),
    (ARROW, _remove, [ARROW]),
    (os.path.join(TASK, "train", "state.json"), _write("{"), ["state.json", "not valid JSON"]),
    (os.path.join(TASK, "train", "dataset_info.json"), _cut(0.3), ["dataset_info.json", "not valid JSON"]),
    (os.path.join(TASK, "dataset_dict.json"), _write("{\"splits\": [\"train\""), ["dataset_dict.json"]),
    (None, _empty_split_without_shard, [os.path.join("test", "state.json"), "lists no data file"]),
]


@pytest.mark.parametrize("name, damage, needles", DATA_DAMAGE, ids=[f"{i}" for i in range(len(DATA_DAMAGE))])
def test_damaged_local_data_names_the_file(run_copy, capsys, name, damage, needles):
    data, run = run_copy
    damage(str(data / name) if name else str(data))
    before, run_before = snapshot(data), snapshot(run)
    with pytest.raises(DataError) as err:
        open_episodes(toy_task(), str(data))
    assert "toy-reach" in str(err.value) and all(n in str(err.value) for n in needles), str(err.value)
    assert main(train_argv(data, tmp_out := run.parent / "fresh")) == 2
    assert_one_line_error(capsys.readouterr().err, "jat-train", "toy-reach", *needles)
    assert snapshot(data) == before and snapshot(run) == run_before
    assert not os.path.exists(tmp_out / "checkpoint-1")


def test_an_empty_split_names_task_split_and_path(tmp_path, capsys):
    from datasets import Dataset, DatasetDict, Features, Sequence, Value

    features = Features({"continuous_observations": Sequence(Sequence(Value("float32"))),
                         "continuous_actions": Sequence(Sequence(Value("float32"))),
                         "rewards": Sequence(Value("float32"))})
    empty = Dataset.from_dict({k: [] for k in features}, features=features)
    DatasetDict({"train": empty}).save_to_disk(str(tmp_path / "data" / TASK), num_shards={"train": 1})
    with pytest.raises(DataError, match=r"task 'toy-reach': the 'train' split of '.*toy-reach' holds no episode"):
        open_episodes(toy_task(), str(tmp_path / "data"))
    with pytest.raises(DataError, match=r"has splits \['train'\], not 'test'"):
        open_episodes(toy_task(), str(tmp_path / "data"), split="test")
    before = snapshot(tmp_path / "data")
    assert main(train_argv(tmp_path / "data", tmp_path / "run")) == 2
    assert_one_line_error(capsys.readouterr().err, "jat-train", "'train' split", "holds no episode")
    assert snapshot(tmp_path / "data") == before


@pytest.mark.parametrize("field, step, extra", [
    ("continuous_observations", 3, ()),  # found while the input statistics are taken
    ("continuous_observations", 0, ("--no-normalize-inputs",)),  # found when the episode is drawn
    ("continuous_actions", 5, ()),
])
def test_ragged_steps_name_task_episode_step_and_field(tmp_path, capsys, field, step, extra):
    """A step whose value is shorter than the others (a bad plugin, a hand-edited data set) is refused naming
    where it is, not deep inside numpy ("setting an array element with a sequence")."""
    from trainkit import write_rows

    rows = [episode(6, seed=i) for i in range(4)]
    rows[2][field][step] = rows[2][field][step][:-1]
    write_rows(str(tmp_path / "data"), TASK, rows)
    before = snapshot(tmp_path / "data")
    assert main(train_argv(tmp_path / "data", tmp_path / "run", *extra)) == 2
    assert_one_line_error(capsys.readouterr().err, "jat-train", f"task '{TASK}' episode 2", f"field '{field}'",
                          f"step {step}", "shape")
    assert snapshot(tmp_path / "data") == before
    assert not os.path.exists(tmp_path / "run" / "checkpoint-2")


# -- seeded random truncations ---------------------------------------------------------------------------------
CHECKPOINT_FILES = ("trainer_state.json", "config.json", "model.safetensors", "optimizer.pt", "scheduler.pt",
                    "rank-0.pt", "tokenizer.json")


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("name", CHECKPOINT_FILES)
def test_random_truncation_of_a_checkpoint_file(run_copy, name, seed):
    _, run = run_copy
    path = run / "checkpoint-4" / name
    size = path.stat().st_size
    _cut(np.random.default_rng([seed, len(name)]).uniform(0.0, 0.99))(str(path))
    assert path.stat().st_size < size
    before = snapshot(run)
    warnings = []
    assert ckpt.resume_checkpoint(str(run), warn=warnings.append) == str(run / "checkpoint-2")
    assert len(warnings) == 1 and os.path.join("checkpoint-4", name) in warnings[0], warnings
    assert snapshot(run) == before


@pytest.mark.parametrize("seed", range(4))
def test_random_truncation_of_the_arrow_file(run_copy, seed):
    data, _ = run_copy
    _cut(np.random.default_rng(seed).uniform(0.0, 0.99))(str(data / ARROW))
    before = snapshot(data)
    with pytest.raises(DataError) as err:
        open_episodes(toy_task(), str(data))
    assert "toy-reach" in str(err.value) and ARROW in str(err.value), str(err.value)
    assert snapshot(data) == before
