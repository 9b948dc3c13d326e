"""Every kind of task goes through the real processor and model: several observation fields sharing a codec
(integers + a mission string), text documents cut into context-sized pieces, and captions (image + text)."""

import numpy as np
from datasets import Features, Image, Value
from jat_core.tokenizer import build_tokenizer
from jat_train.data import TaskWindows, build_batches, open_episodes, open_sources
from jat_train.training.trainer import TrainConfig, make_processor, read_log, train
from trainkit import grid_rows, grid_task, sentence, text_task, toy_registry, write_rows

MODEL = {"hidden_size": 64, "num_layers": 1, "num_heads": 2, "max_position_embeddings": 16, "window_size": 8,
         "vocab_size": 300, "image_size": 32, "patch_size": 16}


def _text_rows(n, seed=0, images=False):
    rng = np.random.default_rng(seed)
    rows = [{"text": sentence(rng, int(rng.integers(3, 40)))} for _ in range(n)]
    if images:
        for r in rows:
            r["images"] = rng.integers(0, 256, size=(40, 48, 3), dtype=np.uint8)
    return rows


def test_text_documents_are_cut_into_context_pieces_with_nothing_dropped(tmp_path):
    from jat_core.config import JatConfig
    from jat_core.model import JatModel

    task = text_task()
    rows = _text_rows(6)
    write_rows(str(tmp_path), task.name, rows)
    tokenizer = build_tokenizer([r["text"] for r in rows], vocab_size=300)
    model = JatModel(JatConfig.from_preset("tiny", **MODEL), registry=toy_registry(task))
    processor = make_processor(model, tokenizer)
    source = open_episodes(task, str(tmp_path))
    windows = TaskWindows(task, source, 16, processor)
    order = source._epoch_order()
    ids = []
    while source.epoch == 0:
        w = windows.next_window()
        assert 1 <= len(w) <= 16
        ids.append(w.steps["text"])
    ids.pop()  # the first piece of the next epoch
    # each document ends with the end token (the model learns where a text stops)
    expected = np.concatenate([tokenizer(rows[i]["text"])["input_ids"] + [tokenizer.eos_token_id] for i in order])
    np.testing.assert_array_equal(np.concatenate(ids), expected)


def test_captions_leave_room_for_the_image_patches(tmp_path):
    from jat_core.config import JatConfig
    from jat_core.model import JatModel

    task = text_task("toy-caption", images=True)
    write_rows(str(tmp_path), task.name, _text_rows(3, images=True),
               features=Features({"text": Value("string"), "images": Image()}))
    tokenizer = build_tokenizer(["go to the red ball"], vocab_size=300)
    model = JatModel(JatConfig.from_preset("tiny", **MODEL), registry=toy_registry(task))
    batches = build_batches([task], open_sources([task], str(tmp_path)), processor=make_processor(model, tokenizer), batch_size=2,
                            max_position_embeddings=16)
    batch = next(batches)
    assert batch.inputs["pixel_values"].shape == (2, 3, 32, 32)
    assert batch.inputs["input_ids"].shape[1] <= 16 - 4  # 4 patches of 16x16 in a 32x32 image
    assert batch.inputs["loss_weight"].shape == (2,)
    out = model(**batch.inputs)
    assert out.loss is not None and np.isfinite(float(out.loss.detach()))


def test_rl_text_and_caption_tasks_train_together(tmp_path):
    grid, doc, cap = grid_task(), text_task(), text_task("toy-caption", images=True)
    data = str(tmp_path / "data")
    write_rows(data, grid.name, grid_rows([3, 12, 5, 9]))
    write_rows(data, doc.name, _text_rows(5))
    write_rows(data, cap.name, _text_rows(4, images=True),
               features=Features({"text": Value("string"), "images": Image()}))
    config = TrainConfig(data=data, output_dir=str(tmp_path / "run"), model_overrides=MODEL, tokenizer="bpe:300",
                         max_steps=8, save_every=8, batch_size=2, learning_rate=1e-3, num_threads=1,
                         progress=False, mixed_precision="no", seed=3)
    train(config, registry=toy_registry(grid, doc, cap))
    records = read_log(config.output_dir)
    assert {r["task"] for r in records} == {"toy-grid", "toy-text", "toy-caption"}
    for r in records:
        assert np.isfinite(r["loss"])
        assert (r["action_loss"] is not None) == (r["task"] == "toy-grid")
