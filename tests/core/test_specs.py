"""FieldSpec / TaskSpec / Scores validate themselves with clear messages."""

import pytest
from jat_core import DatasetSpec, FieldSpec, Scores, TaskSpec


def obs(**kw):
    base = dict(name="continuous_observations", codec="continuous", shape=(3,), dtype="float32")
    base.update(kw)
    return FieldSpec(**base)


def act(**kw):
    base = dict(name="discrete_actions", codec="discrete", shape=(), dtype="int64", n=4)
    base.update(kw)
    return FieldSpec(**base)


def test_valid_specs():
    spec = TaskSpec("d-t", "d", (obs(),), act(), scores=Scores(0.0, 1.0), dataset=DatasetSpec("r/x", "d-t"))
    assert spec.fields[-1].n == 4
    assert spec.codecs() == {"continuous", "discrete"}
    assert spec.is_rl
    assert obs().size == 3 and act().size == 1
    assert spec.dataset.local_path("/data") == "/data/d-t"


def test_list_shape_is_normalised():
    assert obs(shape=[2, 3]).shape == (2, 3)


@pytest.mark.parametrize(
    "kw, storage",
    [
        (dict(shape=(84, 84, 4), dtype="uint8"), "png"),
        (dict(shape=(8, 8, 3), dtype="uint8"), "png"),
        (dict(shape=(8, 8, 1), dtype="uint8"), "png"),
        (dict(shape=(8, 8, 2), dtype="uint8"), "array"),  # no PNG holds 2 channels
        (dict(shape=(8, 8, 3), dtype="float32"), "array"),
        (dict(shape=(8, 3), dtype="uint8"), "array"),
        (dict(shape=(), dtype="string"), "string"),
        (dict(shape=(3,), dtype="float32"), "array"),
    ],
)
def test_storage_follows_dtype_and_shape(kw, storage):
    assert obs(**kw).storage == storage


@pytest.mark.parametrize(
    "kw, msg",
    [
        (dict(shape=(0,)), "positive"),
        (dict(shape=(2.5,)), "tuple of ints"),
        (dict(dtype="float16x"), "dtype must be one of"),
        (dict(codec=""), "codec"),
        (dict(n=0, dtype="int64"), "n must be a positive int"),
        (dict(low=2.0, high=1.0), "must not exceed"),
        (dict(max_tokens=4), "only for string fields"),
        (dict(name=""), "name"),
    ],
)
def test_bad_field(kw, msg):
    with pytest.raises(ValueError, match=msg):
        obs(**kw)


def test_bad_field_message_names_the_field():
    with pytest.raises(ValueError, match="continuous_observations"):
        obs(shape=(-1,))


@pytest.mark.parametrize(
    "kw, msg",
    [
        (dict(observation=()), "non-empty tuple"),
        (dict(action=FieldSpec("discrete_actions", "discrete", (), "int64")), "needs n"),
        (dict(loss_weight=0), "loss_weight"),
        (dict(sample_weight=float("inf")), "sample_weight"),
        (dict(make_env=42), "make_env"),
        (dict(max_episode_steps=-3), "max_episode_steps"),
        (dict(observation=(obs(), obs())), "unique"),
        (dict(action=obs()), "name of an observation field"),
    ],
)
def test_bad_task(kw, msg):
    base = dict(name="d-t", domain="d", observation=(obs(),), action=act())
    base.update(kw)
    with pytest.raises(ValueError, match=msg) as err:
        TaskSpec(**base)
    assert "d-t" in str(err.value)


def test_scores():
    s = Scores(random=10.0, expert=110.0, human=60.0)
    assert s.normalize(60.0) == pytest.approx(0.5)
    assert s.human_normalize(60.0) == pytest.approx(1.0)
    assert Scores(0.0, 1.0).human_normalize(1.0) is None
    with pytest.raises(ValueError, match="differ"):
        Scores(1.0, 1.0)
