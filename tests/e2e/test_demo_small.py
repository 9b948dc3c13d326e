"""The main job, reduced for CI: collect one BabyAI task's expert data, train a tiny JAT, evaluate it.

Asserts what the full demo shows at scale: the training loss falls and the trained agent beats the random
policy's score by a clear margin.
"""

import json

import pytest

TASK = "babyai-go-to-red-ball-no-dists"


@pytest.mark.slow
def test_train_then_beat_random(tmp_path):
    from jat_core import load_plugins
    from jat_train.collection.collect import collect_to_disk
    from jat_train.evaluation.evaluate import evaluate, load_model
    from jat_train.training.trainer import TrainConfig, train

    registry = load_plugins()
    task = registry.task(TASK)
    data = tmp_path / "data"
    summary = collect_to_disk(task, 150, str(data), seed=0)
    assert summary.normalized > 0.9  # the bot is an expert

    result = train(
        TrainConfig(
            tasks=TASK,
            data=str(data),
            preset="tiny",
            tokenizer="bpe:300",
            max_steps=400,
            batch_size=16,
            learning_rate=1e-3,
            warmup_steps=30,
            output_dir=str(tmp_path / "run"),
            save_every=400,
            log_every=10,
            num_threads=1,
            progress=False,
        )
    )
    losses = [r["loss"] for r in result.records]
    first, last = sum(losses[:3]) / 3, sum(losses[-3:]) / 3
    assert last < 0.6 * first, f"training loss did not fall enough: {first:.3f} -> {last:.3f}"

    model, agent_kwargs = load_model(str(result.checkpoint))
    trained = evaluate(model, [task], episodes=20, num_envs=4, seed=1000, progress=False, agent_kwargs=agent_kwargs)
    random = evaluate("random", [task], episodes=20, num_envs=4, seed=1000, progress=False)
    ours, rand = trained["tasks"][TASK]["normalized"], random["tasks"][TASK]["normalized"]
    print(json.dumps({"trained": ours, "random": rand, "loss": [first, last]}))
    assert ours > rand + 0.3, f"trained agent {ours:.3f} does not clearly beat random {rand:.3f}"
