import numpy as np
import pytest
import torch
from codec_helpers import B, T, shared_parts, tiny_config
from jat_codecs import image, plugin
from jat_core.codec import OBSERVATION
from jat_core.testing import CodecConformance

torch.set_num_threads(1)


class TestImageConformance(CodecConformance):
    plugin = plugin
    codec_name = "image"

    def make_codec(self):
        torch.manual_seed(0)
        config = tiny_config()
        return image.build(config, shared_parts(config))

    def example(self, role):
        g = torch.Generator().manual_seed(3)
        return torch.rand(B, T, 4, 84, 84, generator=g) * 2 - 1, torch.randn(B, T, generator=g)

    def raw_example(self, role):
        return np.random.default_rng(0).integers(0, 256, size=(B, T, 84, 84, 4), dtype=np.uint8)

    def bad_examples(self, role):
        return [
            (torch.zeros(B, T, 84, 84, 4), None),  # channels last: prepare() was not called
            (torch.zeros(B, T, 4, 64, 64), None),  # wrong frame size
            (torch.zeros(B, T, 4, 84, 84, dtype=torch.uint8), None),  # integers
        ]


def test_prepare_is_the_reference_normalisation():
    codec = TestImageConformance().make_codec()
    frames = np.random.default_rng(1).integers(0, 256, size=(1, 2, 84, 84, 4), dtype=np.uint8)
    x = codec.prepare(frames, role=OBSERVATION)
    assert x.shape == (1, 2, 4, 84, 84) and x.dtype == torch.float32
    expected = (torch.from_numpy(frames).permute(0, 1, 4, 2, 3).float() / 255 - 0.5) / 0.5
    assert torch.equal(x, expected)
    assert float(x.min()) >= -1 and float(x.max()) <= 1
    with pytest.raises(ValueError, match=r"image_observations: expected dtype uint8"):
        codec.prepare(frames.astype(np.float32), role=OBSERVATION)


def test_reward_is_ignored_reference_quirk():
    codec = TestImageConformance().make_codec()
    frames, rewards = TestImageConformance().example(OBSERVATION)
    with torch.no_grad():
        assert torch.equal(codec.encode(frames, rewards, role=OBSERVATION), codec.encode(frames, None, role=OBSERVATION))


def test_decoder_outputs_frames_in_range_and_published_parameter_names():
    codec = TestImageConformance().make_codec()
    with torch.no_grad():
        out = codec.decode(torch.randn(1, 2, 128) * 10, role=OBSERVATION)
    assert out.shape == (1, 2, 4, 84, 84)
    assert float(out.abs().max()) <= 1.0
    shapes = {n: tuple(p.shape) for n, p in codec.named_parameters()}
    assert shapes["encoder.conv1.weight"] == (32, 4, 3, 3)
    assert shapes["encoder.att3.fc.0.weight"] == (16, 128)
    assert shapes["encoder.fc.weight"] == (128, 128 * 11 * 11)
    assert shapes["decoder.fc.weight"] == (128 * 11 * 11, 128)
    assert shapes["decoder.deconv3.weight"] == (32, 4, 3, 3)
    assert shapes["decoder.att2.fc.2.weight"] == (32, 4)
    assert "decoder.att3.fc.0.weight" not in shapes
