"""The local text tasks' sample sources: text-local (plain-text files, the stdlib's docstrings) and captions-shapes."""

import itertools

import numpy as np
import pytest
from jat_core.specs import check_field_value
from jat_envs.text import local, shapes


def test_chunks_cut_at_paragraphs_and_unwrap_lines():
    assert local.chunks("one\ntwo  three\n\n \n\nfour") == ["one two three\n\nfour"]
    assert local.chunks("   \n\n ") == []
    pieces = local.chunks(("word " * 300 + "\n\n") * 4, max_chars=1000)  # paragraphs of 1499 characters
    assert all(len(p) <= 1000 for p in pieces)
    assert " ".join(" ".join(pieces).split()) == " ".join(("word " * 1200).split())  # nothing lost


def test_docstrings_in_source_order():
    source = '"""Module."""\nclass A:\n    """Class A."""\n    def f(self):\n        """Method f."""\ndef g():\n    pass\n'
    assert local.docstrings(source) == ["Module.", "Class A.", "Method f."]


def test_stdlib_documents_are_docstrings_never_imports():
    files = local.stdlib_files()
    assert files == sorted(files) and not any("/test/" in f or "/idlelib/" in f for f in files)
    documents = local.stdlib_documents()
    assert len(documents) > 200 and sum(map(len, documents)) > 500_000
    assert any(d.startswith("Interface to the liblzma compression library.") for d in documents)


def test_text_samples_from_a_folder_are_seeded(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "a.txt").write_text("Alpha one.\nAlpha two.\n\nAlpha three.")
    (tmp_path / "sub" / "b.txt").write_text("Beta.")
    (tmp_path / "empty.txt").write_text("  \n")
    (tmp_path / "ignored.md").write_text("not a txt file")
    rows = list(local.text_samples(seed=0, input_dir=str(tmp_path)))
    assert sorted(r["text"] for r in rows) == ["Alpha one. Alpha two.\n\nAlpha three.", "Beta."]
    assert rows == list(local.text_samples(seed=0, input_dir=str(tmp_path)))
    orders = {tuple(r["text"] for r in local.text_samples(seed=s, input_dir=str(tmp_path))) for s in range(8)}
    assert len(orders) == 2  # the seed shuffles the files


def test_text_samples_errors_name_the_folder_or_file(tmp_path):
    with pytest.raises(ValueError, match="no such directory .*nope"):
        list(local.text_samples(input_dir=str(tmp_path / "nope")))
    with pytest.raises(ValueError, match="holds no \\*.txt file"):
        list(local.text_samples(input_dir=str(tmp_path)))
    (tmp_path / "blank.txt").write_text("\n\n")
    with pytest.raises(ValueError, match="every \\*.txt file .* is empty"):
        list(local.text_samples(input_dir=str(tmp_path)))
    (tmp_path / "latin1.txt").write_bytes("caf\xe9".encode("latin-1"))
    with pytest.raises(ValueError, match="latin1.txt: not UTF-8 text"):
        list(local.text_samples(input_dir=str(tmp_path)))
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="is a file"):
        list(local.text_samples(input_dir=str(tmp_path / "file")))


def test_shape_samples_match_their_captions(registry):
    spec = registry.task("captions-shapes")
    rows = list(itertools.islice(shapes.shape_samples(seed=3), 60))
    again = list(itertools.islice(shapes.shape_samples(seed=3), 60))
    assert all(np.array_equal(a["images"], b["images"]) and a["text"] == b["text"] for a, b in zip(rows, again))
    captions = {r["text"] for r in rows}
    assert len(captions) > 20 and all(c.startswith("a picture of a ") and c.endswith(".") for c in captions)
    for row in rows:
        for field in spec.observation:
            check_field_value(field, row[field.name], task=spec.name)
        _, colour, shape, *where = row["text"].rstrip(".").split()[3:]
        image = row["images"].astype(int)
        target = np.array(shapes.COLOURS[colour])
        ys, xs = np.nonzero(np.abs(image - target).max(axis=-1) <= 30)  # pixels of the shape's colour
        assert len(xs) > 600, row["text"]  # the shape is there, in that colour
        centre = {"left": xs.mean() < 90, "right": xs.mean() > 134, "top": ys.mean() < 90, "bottom": ys.mean() > 134}
        assert centre[where[-1]], (row["text"], xs.mean(), ys.mean())
        # its outline: a square fills its bounding box, a circle about pi/4 of it, a triangle about half
        fill = len(xs) / ((xs.max() - xs.min() + 1) * (ys.max() - ys.min() + 1))
        expected = {"square": (0.95, 1.01), "circle": (0.72, 0.85), "triangle": (0.42, 0.6)}[shape]
        assert expected[0] <= fill <= expected[1], (row["text"], fill)
    with pytest.raises(ValueError, match="shape: expected one of"):
        shapes.draw("hexagon", "red", "left", np.random.default_rng(0))


def test_local_sources_through_the_spec(registry, tmp_path):
    (tmp_path / "a.txt").write_text("Some text.")
    spec = registry.task("text-local")
    assert list(spec.samples(seed=0, input_dir=str(tmp_path))) == [{"text": "Some text."}]
    first = next(iter(registry.task("captions-shapes").samples(seed=0, input_dir=None)))
    assert first["images"].shape == (224, 224, 3) and first["images"].dtype == np.uint8
