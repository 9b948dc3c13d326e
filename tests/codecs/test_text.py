import pytest
import torch
import torch.nn.functional as F
from codec_helpers import VOCAB, B, shared_parts, tiny_config
from jat_codecs import plugin, text
from jat_core.codec import SEQUENCE
from jat_core.testing import CodecConformance

torch.set_num_threads(1)


class TestTextConformance(CodecConformance):
    plugin = plugin
    codec_name = "text"

    def make_codec(self):
        config = tiny_config()
        return text.build(config, shared_parts(config))

    def example(self, role):
        return torch.randint(0, VOCAB, (B, 5), generator=torch.Generator().manual_seed(5)), None

    def raw_example(self, role):
        return [[1, 2, 3], [4, 5, 6]]

    def bad_examples(self, role):
        return [(torch.full((B, 4), VOCAB), None), (torch.zeros(B, 4), None), (torch.zeros(B, 4, 2).long(), None)]


def test_text_uses_the_shared_table_and_head():
    codec = TestTextConformance().make_codec()
    assert list(codec.parameters()) == []  # everything is shared with the core
    ids = torch.tensor([[1, 2, 3]])
    torch.testing.assert_close(codec.encode(ids, role=SEQUENCE), codec.shared.wte.weight[ids])
    hidden = torch.randn(1, 3, 128)
    torch.testing.assert_close(codec.decode(hidden, role=SEQUENCE), codec.shared.head(hidden))


def test_loss_is_aligned_cross_entropy():
    codec = TestTextConformance().make_codec()
    logits, ids = torch.randn(B, 4, VOCAB), torch.randint(0, VOCAB, (B, 4))
    mask = torch.tensor([[1, 1, 1, 0], [1, 1, 1, 1]], dtype=torch.bool)
    loss = codec.loss(logits, ids, mask, role=SEQUENCE)
    expected = F.cross_entropy(logits.flatten(0, 1), ids.flatten(), reduction="none").view(B, 4) * mask
    torch.testing.assert_close(loss, expected)
    with pytest.raises(ValueError, match=r"input_ids: expected token ids in \[0, 300\)"):
        codec.encode(torch.tensor([[5, 1000]]), role=SEQUENCE)
