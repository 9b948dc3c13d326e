"""The training room: ``jat-train``, its settings, its checkpoints, its log and the run's input statistics.

What it owns:

- :mod:`~jat_train.training.trainer`: the training loop (:func:`~jat_train.training.trainer.train`) and
  ``jat-train``'s ``main`` (also ``python -m jat_train.training.trainer``, what ``accelerate launch`` starts);
- :mod:`~jat_train.training.train_config`: :class:`~jat_train.training.train_config.TrainConfig` and the command
  line that fills it;
- :mod:`~jat_train.training.run_setup`: the accelerator, tokenizer, model and processor of a run;
- :mod:`~jat_train.training.input_stats`: the per-task normalisation statistics of the training data;
- :mod:`~jat_train.training.checkpoint` and :mod:`~jat_train.training.torchfiles`: atomic, resumable checkpoints
  and the ``torch.save`` files in them (only checkpoints write those, so they live here);
- :mod:`~jat_train.training.runlog`: ``OUT/log.jsonl``, TensorBoard and the progress bar.

What it may import: the data room's interface (``jat_train.data``), the evaluation room's interface (the periodic
evaluation of the loop calls :func:`jat_train.evaluation.evaluate.evaluate`), and the shared top-level modules
:mod:`jat_train.files` and :mod:`jat_train.run_lock`.

Its interface, the modules of ``INTERFACE`` below: ``trainer`` (``train``, ``main``: :mod:`jat_train.cli`),
``train_config`` (``TrainConfig``) and ``runlog`` (``LOG_FILE``, ``read_log``: ``jat-report`` reads the log this
room writes). This package re-exports nothing: importing it stays cheap and ``python -m
jat_train.training.trainer`` runs the module once.
"""

# modules of this room another room may import; the rooms whose interfaces this room's modules may import.
# tests/train/test_rooms.py reads both.
INTERFACE = ("trainer", "train_config", "runlog")
MAY_IMPORT = ("data", "evaluation")
