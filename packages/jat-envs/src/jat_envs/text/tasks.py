"""The 4 text-centric tasks of the JAT data set: task name -> (has images, sample weight); and 2 made locally.

``oscar`` and ``wikipedia`` are documents (column ``text``); ``conceptual-captions`` pairs an image with its
caption and ``ok-vqa`` an image with ``"Q: ... A: ..."`` (columns ``images`` and ``text``). The reference
samples oscar, wikipedia and conceptual-captions 10 times more often than other tasks.
"""

from __future__ import annotations

#: task name -> (whether samples carry an image, sample weight)
TASKS: dict[str, tuple[bool, float]] = {
    "oscar": (False, 10.0),
    "wikipedia": (False, 10.0),
    "conceptual-captions": (True, 10.0),
    "ok-vqa": (True, 1.0),
}

#: Tasks whose data are made locally by ``jat-collect`` (no hub data set): task name -> (has images, the
#: ``samples`` source as ``module:function``). ``text-local``: documents from plain-text files (default: the
#: Python standard library's docstrings); ``captions-shapes``: drawn shapes with templated captions.
LOCAL_TASKS: dict[str, tuple[bool, str]] = {
    "text-local": (False, "jat_envs.text.local:text_samples"),
    "captions-shapes": (True, "jat_envs.text.shapes:shape_samples"),
}
