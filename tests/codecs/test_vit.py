import numpy as np
import pytest
import torch
from codec_helpers import B, shared_parts, tiny_config
from jat_codecs import plugin, vit
from jat_core.codec import SEQUENCE
from jat_core.testing import CodecConformance

torch.set_num_threads(1)


class TestVitConformance(CodecConformance):
    plugin = plugin
    codec_name = "vit"

    def make_codec(self):
        config = tiny_config()
        return vit.build(config, shared_parts(config))

    def example(self, role):
        return torch.randn(B, 3, 224, 224, generator=torch.Generator().manual_seed(4)), None

    def raw_example(self, role):
        return np.random.default_rng(0).integers(0, 256, size=(B, 150, 200, 3), dtype=np.uint8)

    def bad_examples(self, role):
        return [(torch.randn(B, 3, 84, 84), None), (torch.randn(B, 4, 224, 224), None), (torch.zeros(B, 3, 224, 224, dtype=torch.uint8), None)]


def test_patches_are_the_projection_without_position_embedding():
    codec = TestVitConformance().make_codec()
    x = torch.randn(1, 3, 224, 224)
    out = codec.encode(x, role=SEQUENCE)
    assert out.shape == (1, 196, 128) and codec.num_patches == 196
    # patch (row 2, column 5) is the convolution of that 16x16 square alone
    patch = x[:, :, 32:48, 80:96]
    expected = (patch.flatten(1) @ codec.projection.weight.flatten(1).T) + codec.projection.bias
    torch.testing.assert_close(out[:, 2 * 14 + 5], expected, rtol=1e-4, atol=1e-5)
    assert [n for n, _ in codec.named_parameters()] == ["projection.weight", "projection.bias"]


def test_prepare_uses_clip_processing():
    codec = TestVitConformance().make_codec()
    white = np.full((300, 224, 3), 255, dtype=np.uint8)
    pixels = codec.prepare([white], role=SEQUENCE)
    assert pixels.shape == (1, 3, 224, 224)
    clip_mean, clip_std = [0.48145466, 0.4578275, 0.40821073], [0.26862954, 0.26130258, 0.27577711]
    expected = torch.tensor([(1 - m) / s for m, s in zip(clip_mean, clip_std)])
    torch.testing.assert_close(pixels[0, :, 100, 100], expected, rtol=1e-4, atol=1e-4)


def test_patches_are_not_predicted():
    codec = TestVitConformance().make_codec()
    with pytest.raises(ValueError, match="does not predict"):
        codec.decode(torch.randn(1, 2, 128), role=SEQUENCE)


@pytest.mark.parametrize("size", [(150, 200), (300, 224), (224, 224), (97, 411)])
def test_prepare_equals_transformers_clip_image_processor(size):
    """Our CLIP steps give what transformers' CLIPImageProcessor gives (the reference's processor), to 1e-4 on
    every pixel, for landscape, portrait and square images (the reference is looked up by its public name)."""
    import transformers

    Processor = getattr(transformers, "CLIPImageProcessorPil", None) or transformers.CLIPImageProcessor
    reference = Processor(size={"shortest_edge": 224}, crop_size={"height": 224, "width": 224})
    image = np.random.default_rng(1).integers(0, 256, size=(*size, 3), dtype=np.uint8)
    expected = reference([image], return_tensors="pt")["pixel_values"].float()
    actual = TestVitConformance().make_codec().prepare([image], role=SEQUENCE)
    assert actual.shape == expected.shape == (1, 3, 224, 224)
    # PIL's bicubic rounds to uint8 in both; allow one grey level of difference on a few edge pixels
    diff = (actual - expected).abs()
    assert float(diff.max()) < 1 / 255 / 0.26 + 1e-4 and float((diff > 1e-4).float().mean()) < 0.01
