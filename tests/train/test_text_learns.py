"""A tiny JAT learns the local text tasks: held-out perplexity well under the unigram baseline, captions of
held-out images far above chance (model.caption), and jat-eval / jat-report show both."""

import json

import pytest

TASKS = "text-local,captions-shapes"


@pytest.mark.slow
def test_text_and_captions_learn(tmp_path):
    import torch
    from jat_core import load_plugins
    from jat_core.tokenizer import load_tokenizer
    from jat_train import cli
    from jat_train.collection.samples import collect_samples_to_disk
    from jat_train.evaluation.evaluate import load_model
    from jat_train.evaluation.report import write_report
    from jat_train.evaluation.textscore import text_task_scores
    from jat_train.training.trainer import TrainConfig, train

    torch.set_num_threads(1)
    registry = load_plugins()
    data = str(tmp_path / "data")
    collect_samples_to_disk(registry.task("text-local"), 300, data, progress=False)  # the stdlib's docstrings
    collect_samples_to_disk(registry.task("captions-shapes"), 1000, data, progress=False)
    result = train(
        TrainConfig(
            tasks=TASKS,
            data=data,
            preset="tiny",
            # 112-pixel images (49 patches) and a 128-token context keep the test under a minute on one thread
            model_overrides={"image_size": 112, "max_position_embeddings": 128},
            tokenizer="bpe:512",
            max_steps=300,
            batch_size=8,
            learning_rate=1e-3,
            warmup_steps=20,
            output_dir=str(tmp_path / "run"),
            save_every=300,
            log_every=10,
            num_threads=1,
            num_workers=0,
            progress=False,
        )
    )
    model, _ = load_model(str(result.checkpoint), "cpu")
    tokenizer = load_tokenizer(str(result.checkpoint))
    tasks = [registry.task(name) for name in TASKS.split(",")]
    scores = text_task_scores(model, tokenizer, tasks, data, samples=60)
    print(json.dumps(scores, indent=1))
    text, captions = scores["text-local"], scores["captions-shapes"]
    assert text["perplexity"] < 0.6 * text["unigram_perplexity"], text
    caption = captions["caption"]
    assert caption["prompt"] == "a picture of a"
    assert caption["exact"] > max(3 * caption["chance"], 2 * caption["majority_exact"]), caption
    assert caption["word_accuracy"] > caption["majority_word_accuracy"] + 0.1, caption
    assert [c["prompt"] for c in text["completions"]] and all(c["completion"] for c in text["completions"])
    # its completions are spelled better than tokens drawn by their frequencies (and not better than real text)
    written = text["completion_words"]
    assert written["prompts"] == 20 and written["greedy"]["words"] > 20, written
    assert written["unigram"]["known_words"] + 0.1 < written["greedy"]["known_words"], written

    # jat-eval scores them from the saved model, jat-report shows them
    out = tmp_path / "eval"
    argv = ["--model", str(result.checkpoint), "--tasks", TASKS, "--data", data, "--out", str(out),
            "--samples", "20", "--no-progress"]
    assert cli.eval_main(argv) == 0
    written = json.loads((out / "results.json").read_text())
    assert set(written["text_tasks"]) == set(TASKS.split(","))
    report = write_report(str(tmp_path / "run"), str(out), str(tmp_path / "report")).read_text()
    assert "## Text and captions (held-out data)" in report and "| captions-shapes | 20 |" in report
