"""Scores of tasks without an env (text, captions) on their held-out local data: ``jat-eval --data DIR``.

For each such task with a ``test`` split under ``DIR/<task>/`` (``jat-collect`` writes one):

- **perplexity** of the model on the test split's text, ``exp`` of its mean next-token cross-entropy, computed on
  exactly the tokens training predicts (each sample cut into windows of the model's context, as training cuts
  them; the other fields of a sample, an image's patches, go first), against the **unigram baseline**: the
  same tokens scored by their add-one-smoothed frequencies in the training split. A model that learned more than
  word frequencies is well below it.
- for tasks whose sample is a text alone, **completions** of held-out texts and how much they read like the task's
  text: the share of known words and of known pairs of words, against the unigram baseline's and the held-out
  text's own (:mod:`jat_train.evaluation.completions`).
- for tasks whose sample is an image and a text (captioning), **caption accuracy**: ``model.caption(image)`` on
  each held-out image, its words compared with the reference caption's (``exact``: every word right;
  ``word_accuracy``: the share of words right, after the prompt), against what guessing gives: ``chance`` (one
  of the training set's distinct captions at random), ``majority_exact`` and ``majority_word_accuracy`` (always
  the most frequent training caption, the most frequent word at each place). The words every training caption
  starts with (``"a picture of a"``) are given to ``caption`` as its prompt and not scored: the model's loss
  never covers a text's first token, so the first words cannot be asked of it.

Nothing here knows a modality beyond the field specs: the string field is the text, a field stored as pictures
(``FieldSpec.storage == "png"``, the one rule that decides it) beside it makes a captioning task.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from jat_core.codec import SEQUENCE
from jat_core.sequence import window_bounds
from jat_core.specs import PNG_STORAGE, STRING_STORAGE, FieldSpec, TaskSpec

from jat_train.data import DataError, Window, collate, load_local, local_path, tokenize_sample
from jat_train.evaluation.completions import completion_scores, words

#: held-out samples scored per task by default
DEFAULT_SAMPLES = 200


def text_field(task: TaskSpec) -> FieldSpec:
    """The task's one string field."""
    fields = [f for f in task.observation if f.dtype == "string"]
    if len(fields) != 1:
        raise DataError(f"task {task.name!r}: expected one string field, got {[f.name for f in fields]}")
    return fields[0]


def image_field(task: TaskSpec) -> FieldSpec | None:
    """The task's picture field (``FieldSpec.storage == "png"``) when it is a captioning task (one picture, one
    text)."""
    others = [f for f in task.observation if f.storage != STRING_STORAGE]
    if len(others) == 1 and others[0].storage == PNG_STORAGE:
        return others[0]
    return None


def load_split(task: TaskSpec, data: str, split: str):
    """A split of the task's local data set (``datasets.Dataset``).

    Raises:
        DataError: no local data, no such split, or an empty split (naming the task and the path).
    """
    import datasets

    path = local_path(task, data)
    loaded = load_local(path, task=task.name) if _is_dir(path) else None
    if loaded is None:
        raise DataError(f"task {task.name!r}: no local data at {path!r} (jat-collect --tasks {task.name} --out DIR)")
    if isinstance(loaded, datasets.DatasetDict):
        if split not in loaded:
            raise DataError(f"task {task.name!r}: {path!r} has splits {sorted(loaded)}, not {split!r}")
        loaded = loaded[split]
    if len(loaded) == 0:
        raise DataError(f"task {task.name!r}: the {split!r} split of {path!r} holds no sample")
    return loaded


def _is_dir(path: str) -> bool:
    import os

    return os.path.isdir(path)


def unigram_log_probs(texts: Sequence[str], tokenizer: Any, vocab_size: int) -> np.ndarray:
    """``(V,)`` log-probabilities of each token in ``texts`` (add-one smoothing over the model's vocabulary)."""
    counts = np.ones(vocab_size, dtype=np.float64)
    for text in texts:
        np.add.at(counts, np.asarray(tokenizer.encode(text), dtype=np.int64), 1.0)
    return np.log(counts / counts.sum())


@torch.no_grad()
def _extra_tokens(model: Any, task: TaskSpec, window: Window, processor: Any) -> int:
    """Tokens the non-text fields of a sample take in the sequence (an image's patches)."""
    fields = {f.name: f for f in task.observation}
    return sum(processor.codec(fields[name].codec).encode(value.to(model.device), role=SEQUENCE).shape[1]
               for name, value in window.extras.items())


@torch.no_grad()
def perplexity(model: Any, tokenizer: Any, task: TaskSpec, rows: Sequence[dict], unigram: np.ndarray,
               *, batch_size: int = 8) -> dict[str, float]:
    """Held-out cross-entropy of the model and of the unigram baseline on the same next-token targets.

    Args:
        model: a ``JatModel`` (eval mode).
        tokenizer: the run's tokenizer.
        task: a task without actions.
        rows: its held-out samples.
        unigram: ``(V,)`` log-probabilities from :func:`unigram_log_probs`.
        batch_size: windows per forward pass.

    Returns:
        ``{"tokens", "cross_entropy", "perplexity", "unigram_cross_entropy", "unigram_perplexity"}``.
    """
    from jat_core.processor import JatProcessor

    processor = JatProcessor.from_model(model, tokenizer)
    name = text_field(task).name
    pieces: list[Window] = []
    for index, row in enumerate(rows):
        whole = tokenize_sample(task, index, row, processor)
        size = model.config.max_position_embeddings - _extra_tokens(model, task, whole, processor)
        for start, end in window_bounds(len(whole), size):
            pieces.append(Window({name: whole.steps[name][start:end]}, whole.extras))
    total, unigram_total, count = 0.0, 0.0, 0
    for first in range(0, len(pieces), batch_size):
        batch = collate(task, pieces[first : first + batch_size], processor).to(model.device)
        inputs = {k: v for k, v in batch.inputs.items() if k != "loss_weight"}
        mask = inputs["attention_mask"]  # (B, L) over the text tokens
        logits = model(**inputs, return_loss=False).logits[:, -mask.shape[1] :].float()  # (B, L, V)
        ids = inputs[processor.codec(text_field(task).codec).columns[SEQUENCE]]  # (B, L)
        valid = mask[:, 1:] & mask[:, :-1]  # (B, L - 1): targets 1..L-1 of real tokens
        ce = torch.nn.functional.cross_entropy(logits[:, :-1].flatten(0, 1), ids[:, 1:].flatten(), reduction="none")
        total += float(ce[valid.flatten()].sum())
        targets = ids[:, 1:][valid].cpu().numpy()
        unigram_total -= float(unigram[targets].sum())
        count += int(valid.sum())
    if count == 0:
        raise DataError(f"task {task.name!r}: its held-out samples hold no token to predict")
    ce, uce = total / count, unigram_total / count
    return {"tokens": count, "cross_entropy": ce, "perplexity": math.exp(ce),
            "unigram_cross_entropy": uce, "unigram_perplexity": math.exp(uce)}


def common_prefix(texts: Sequence[str]) -> list[str]:
    """The words every text starts with."""
    split = [words(t) for t in texts]
    prefix: list[str] = []
    for column in zip(*split):
        if len(set(column)) != 1:
            break
        prefix.append(column[0])
    return prefix


def caption_accuracy(model: Any, tokenizer: Any, task: TaskSpec, rows: Sequence[dict],
                     train_texts: Sequence[str]) -> dict[str, Any]:
    """Caption held-out images with ``model.caption`` and compare with their captions (see the module docstring).

    Returns:
        ``{"samples", "prompt", "exact", "word_accuracy", "chance", "majority_exact", "majority_word_accuracy",
        "examples"}`` (the first 5 ``{"reference", "caption"}`` pairs).
    """
    image, text = image_field(task), text_field(task)
    prefix = common_prefix(train_texts)
    # the prompt is the common words as written in the first training caption (their case and spacing)
    prompt = " ".join(train_texts[0].split()[: len(prefix)]) if prefix else None
    if prompt is not None and words(prompt) != prefix:
        prompt, prefix = None, []
    skip = len(prefix)
    prompt_ids = len(tokenizer.encode(prompt)) if prompt else 0
    longest = max(len(tokenizer.encode(t)) for t in set(train_texts)) - prompt_ids
    train_words = [words(t) for t in train_texts]
    majority = Counter(tuple(w) for w in train_words).most_common(1)[0][0]
    by_place: dict[int, Counter] = {}
    for w in train_words:
        for i, word in enumerate(w[skip:], start=skip):
            by_place.setdefault(i, Counter())[word] += 1
    exact = right = scored = majority_exact = majority_right = 0
    examples = []
    for row in rows:
        reference = words(str(row[text.name]))
        generated = model.caption(np.asarray(row[image.name], dtype=np.uint8), prompt=prompt,
                                  max_new_tokens=longest + 2, tokenizer=tokenizer)
        said = prefix + words(generated)
        exact += said[: len(reference)] == reference
        majority_exact += list(majority) == reference
        for i in range(skip, len(reference)):
            scored += 1
            right += i < len(said) and said[i] == reference[i]
            majority_right += i in by_place and by_place[i].most_common(1)[0][0] == reference[i]
        if len(examples) < 5:
            examples.append({"reference": str(row[text.name]), "caption": f"{prompt or ''}{generated}"})
    n = len(rows)
    return {
        "samples": n,
        "prompt": prompt,
        "exact": exact / n,
        "word_accuracy": right / scored if scored else None,
        "chance": 1.0 / len(set(tuple(w) for w in train_words)),
        "majority_exact": majority_exact / n,
        "majority_word_accuracy": majority_right / scored if scored else None,
        "examples": examples,
    }


def text_task_scores(model: Any, tokenizer: Any, tasks: Sequence[TaskSpec], data: str,
                     *, samples: int = DEFAULT_SAMPLES) -> dict[str, dict[str, Any]]:
    """Scores of every task without actions on its local held-out data, by task name (see the module docstring).

    Args:
        model: the ``JatModel`` (put in eval mode here).
        tokenizer: the tokenizer it was trained with.
        tasks: tasks without actions (others are ignored).
        data: the local data root (``jat-collect``'s ``--out``).
        samples: held-out samples scored per task (the first ones of the ``test`` split).

    Raises:
        DataError: a task without local data or without a ``test`` split (naming the task and the path).
    """
    model.eval()
    out = {}
    for task in tasks:
        if task.is_rl:
            continue
        name = text_field(task).name
        test = load_split(task, data, "test")
        rows = test.select(range(min(samples, len(test)))).with_format("numpy")
        train_texts = [str(t) for t in load_split(task, data, "train").select_columns([name])[name]]
        scores: dict[str, Any] = {"domain": task.domain, "samples": len(rows)}
        unigram = unigram_log_probs(train_texts, tokenizer, model.config.vocab_size)
        scores.update(perplexity(model, tokenizer, task, list(rows), unigram))
        if image_field(task) is not None:
            scores["caption"] = caption_accuracy(model, tokenizer, task, list(rows), train_texts)
        elif len(task.observation) == 1:
            written = completion_scores(model, tokenizer, [str(t) for t in rows[name]], train_texts, unigram)
            scores["completions"] = written.pop("examples")
            scores["completion_words"] = written
        out[task.name] = scores
    return out
