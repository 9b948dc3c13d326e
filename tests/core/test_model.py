"""JatModel: batch routing, the RL and sequence layouts, losses, bad input, HF save/load and Auto classes."""

import pytest
import torch
import torch.nn.functional as F
from jat_core import hookimpl
from jat_core.codec import OBSERVATION, Codec
from jat_core.config import JatConfig
from jat_core.model import JatModel, JatOutput
from jat_core.plugins import load_plugins
from model_helpers import VOCAB, continuous_batch, discrete_batch, image_batch, tiny_config, tiny_model
from transformers import AutoConfig, AutoModel


@pytest.fixture(scope="module")
def model():
    return tiny_model()


def test_rl_outputs_have_the_reference_shapes(model):
    with torch.no_grad():
        out = model(**continuous_batch(T=5, obs=7, act=3))
        assert isinstance(out, JatOutput)
        assert out.pred_actions.shape == (2, 5, 3) and out.pred_observations.shape == (2, 5, 7)
        assert out.loss.shape == () and out.logits is None
        out = model(**discrete_batch(T=4))
        assert out.pred_actions.shape == (2, 4, VOCAB) and out.pred_observations is None
        assert float(out.observation_loss) == 0.0  # discrete observations are not predicted
        out = model(**image_batch(T=3))
        assert out.pred_actions.shape == (2, 3, VOCAB) and out.pred_observations.shape == (2, 3, 4, 84, 84)


def test_actions_see_only_the_past_and_the_current_observation(model):
    """a_t is predicted at o_t: it depends on o_0..o_t and a_0..a_{t-1}, not on a_t or anything later."""
    batch = continuous_batch(B=1, T=4)
    changed = {k: v.clone() for k, v in batch.items()}
    changed["continuous_actions"][:, 2] += 1.0  # a_2
    changed["continuous_observations"][:, 3] += 1.0  # o_3
    with torch.no_grad():
        a, b = model(**batch), model(**changed)
    torch.testing.assert_close(a.pred_actions[:, :3], b.pred_actions[:, :3])  # a_0..a_2 unchanged
    assert not torch.allclose(a.pred_actions[:, 3], b.pred_actions[:, 3])
    # o_3 is predicted at a_2, which now differs
    torch.testing.assert_close(a.pred_observations[:, :2], b.pred_observations[:, :2])
    assert not torch.allclose(a.pred_observations[:, 2], b.pred_observations[:, 2])


def test_padded_steps_change_nothing_valid(model):
    batch = continuous_batch(B=2, T=5)
    batch["attention_mask"] = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]], dtype=torch.bool)
    changed = {k: v.clone() for k, v in batch.items()}
    for key in ("continuous_observations", "continuous_actions", "rewards"):
        changed[key][1, 3:] = 7.0
    with torch.no_grad():
        a, b = model(**batch), model(**changed)
    valid = batch["attention_mask"]
    torch.testing.assert_close(a.pred_actions[valid], b.pred_actions[valid])
    torch.testing.assert_close(a.loss, b.loss)


def test_loss_is_kappa_weighted_and_matches_hand_computation(model):
    batch = continuous_batch(B=2, T=4, obs=5, act=2)
    with torch.no_grad():
        out = model(**batch)
    obs, act, rew = batch["continuous_observations"], batch["continuous_actions"], batch["rewards"]
    codec = model.codecs["continuous"]
    hidden = model.transformer(
        inputs_embeds=torch.stack(
            (codec.encode(obs, rew, role="observation"), codec.encode(act, role="action")), dim=2
        ).flatten(1, 2)
    ).last_hidden_state
    with torch.no_grad():
        full_act = codec.decoder(hidden[:, 0::2])[..., :2]
        full_obs = codec.decoder(hidden[:, 1::2])[..., :6]
    act_loss = F.mse_loss(full_act, act)
    obs_loss = F.mse_loss(full_obs[:, :-1], torch.cat((obs, rew[..., None]), -1)[:, 1:])
    torch.testing.assert_close(out.action_loss, act_loss)
    torch.testing.assert_close(out.observation_loss, obs_loss)
    torch.testing.assert_close(out.loss, 0.005 * obs_loss + 0.995 * act_loss)


def test_zero_observation_coefficient_skips_observation_prediction():
    model = tiny_model(observation_loss_coef=0.0, action_loss_coef=1.0)
    with torch.no_grad():
        out = model(**image_batch(T=2))
    assert out.pred_observations is None and float(out.observation_loss) == 0.0
    torch.testing.assert_close(out.loss, out.action_loss)


def test_loss_weights_apply_per_step_to_every_codec(model):
    for batch in (continuous_batch(T=3), discrete_batch(T=3)):
        with torch.no_grad():
            base = model(**batch)
            per_sample = model(**batch, loss_weight=torch.tensor([2.0, 2.0]))
            per_step = model(**batch, loss_weight=torch.full((2, 3), 2.0))
            first_only = model(**batch, loss_weight=torch.tensor([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0]]))
            masked = model(**batch, attention_mask=torch.tensor([[1, 0, 0], [1, 0, 0]]))
        torch.testing.assert_close(per_sample.action_loss, 2 * base.action_loss)
        torch.testing.assert_close(per_step.loss, 2 * base.loss)
        # weights zero out steps but keep dividing by the number of valid steps (the reference's reduction)
        torch.testing.assert_close(first_only.action_loss * 3, masked.action_loss)


def test_text_loss_is_shifted_and_masked(model):
    ids = torch.randint(0, VOCAB, (2, 6), generator=torch.Generator().manual_seed(1))
    mask = torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0]], dtype=torch.bool)
    with torch.no_grad():
        out = model(input_ids=ids, attention_mask=mask)
    assert out.logits.shape == (2, 6, VOCAB) and out.pred_actions is None and out.action_loss is None
    keep = mask[:, 1:]
    expected = F.cross_entropy(out.logits[:, :-1][keep], ids[:, 1:][keep])
    torch.testing.assert_close(out.loss, expected)


def test_caption_puts_patches_first_and_scores_text_only(model):
    g = torch.Generator().manual_seed(2)
    ids, pixels = torch.randint(0, VOCAB, (2, 5), generator=g), torch.randn(2, 3, 224, 224, generator=g)
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]], dtype=torch.bool)
    with torch.no_grad():
        out = model(input_ids=ids, pixel_values=pixels, attention_mask=mask)
        patches = model.codecs["vit"].encode(pixels, role="sequence")
        tokens = model.codecs["text"].encode(ids, role="sequence")
        hidden = model.transformer(
            inputs_embeds=torch.cat((patches, tokens), 1), attention_mask=torch.cat((torch.ones(2, 196), mask), 1)
        ).last_hidden_state
    assert out.logits.shape == (2, 196 + 5, VOCAB)
    torch.testing.assert_close(out.logits, model.lm_head(hidden))
    text_logits, keep = out.logits[:, 196:-1], mask[:, 1:]  # the last patch does not predict the first token
    torch.testing.assert_close(out.loss, F.cross_entropy(text_logits[keep], ids[:, 1:][keep]))


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda b: b.pop("rewards"), r"rewards: expected a float tensor of shape \(2, 5\).*got None"),
        (lambda b: b.update(rewards=torch.zeros(2, 4)), r"rewards: expected shape \(2, 5\).*got \(2, 4\)"),
        (lambda b: b.update(continuous_observations=torch.zeros(2, 5, 400)),
         r"continuous_observations: expected at most 376 values.*got 400"),
        (lambda b: b.update(continuous_observations=torch.zeros(2, 5, 7, dtype=torch.int64)),
         r"continuous_observations: expected a floating-point tensor, got dtype torch.int64"),
        (lambda b: b.update(continuous_actions=torch.zeros(2, 4, 3)),
         r"continuous_actions: expected the \(B, T\) = \(2, 5\) of continuous_observations, got \(2, 4\)"),
        (lambda b: b.update(continous_actions=b.pop("continuous_actions")), r"unknown column 'continous_actions'"),
        (lambda b: b.update(discrete_actions=torch.zeros(2, 5, dtype=torch.long)), r"exactly one action column"),
        (lambda b: b.update(input_ids=torch.zeros(2, 3, dtype=torch.long)), r"either RL .* or a token sequence"),
        (lambda b: b.update(attention_mask=torch.ones(2, 10)), r"attention_mask: expected the step mask shape"),
        (lambda b: b.update(loss_weight=torch.ones(3)), r"loss_weight: expected shape \(2, 5\)"),
    ],
)
def test_bad_rl_input_is_a_clear_value_error(model, change, message):
    batch = continuous_batch(T=5)
    change(batch)
    with pytest.raises(ValueError, match=message):
        model(**batch)


def test_bad_discrete_and_sequence_input(model):
    batch = discrete_batch(T=2)
    batch["discrete_actions"] = torch.tensor([[0, VOCAB], [1, 2]])
    with pytest.raises(ValueError, match=r"discrete_actions: expected values in \[0, 300\), got range \[0, 300\]"):
        model(**batch)
    batch = discrete_batch(T=2)
    batch["discrete_observations"] = torch.zeros(2, 2, 276, dtype=torch.long)
    with pytest.raises(ValueError, match=r"discrete_observations: expected shape \(B, T, 212\), got \(2, 2, 276\)"):
        model(**batch)
    with pytest.raises(ValueError, match=r"sequence: expected at most max_position_embeddings=256 tokens"):
        model(input_ids=torch.zeros(1, 300, dtype=torch.long))
    with pytest.raises(ValueError, match=r"attention_mask: expected shape \(1, 4\)"):
        model(input_ids=torch.zeros(1, 4, dtype=torch.long), attention_mask=torch.ones(1, 3))
    with pytest.raises(ValueError, match="no input"):
        model(rewards=torch.zeros(1, 1))
    with pytest.raises(ValueError, match=r"pixel_values: expected shape \(B, 3, 224, 224\)"):
        model(pixel_values=torch.zeros(1, 3, 84, 84), input_ids=torch.zeros(1, 2, dtype=torch.long))


def test_one_token_table_is_shared(model):
    wte = model.transformer.wte
    assert model.codecs["text"].shared.wte is wte and model.codecs["discrete"].shared.wte is wte
    keys = list(model.state_dict())
    assert sum(k.endswith("wte.weight") for k in keys) == 1
    assert "lm_head.weight" in keys and model.lm_head.weight.data_ptr() != wte.weight.data_ptr()


def test_save_and_load_round_trip_with_auto_classes(model, tmp_path):
    model.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").exists()
    config = AutoConfig.from_pretrained(tmp_path)
    assert isinstance(config, JatConfig) and config.model_type == "jat" and config.codecs == model.config.codecs
    loaded = AutoModel.from_pretrained(tmp_path)
    assert isinstance(loaded, JatModel)
    for key, value in model.state_dict().items():
        assert torch.equal(value, loaded.state_dict()[key]), key
    batch = discrete_batch(T=2)
    with torch.no_grad():
        torch.testing.assert_close(loaded.eval()(**batch).pred_actions, model(**batch).pred_actions)


def test_small_preset_has_the_published_shapes_and_parameter_count():
    """The published jat-small counts 192.7M parameters (192,701,771), of which 2,463,852 belong to the dead
    ``multi_discrete_decoder`` (Linear(768, 212*15) + Linear(15, 768) + Linear(768, 8, no bias)), which we do not
    build: 192,701,771 - 2,463,852 = 190,237,919."""
    config = JatConfig.from_preset("small")
    assert (config.hidden_size, config.num_layers, config.num_heads, config.vocab_size) == (768, 12, 12, 50257)
    assert config.attention_types == [[["global", "local"], 6]] and config.max_position_embeddings == 512
    with torch.device("meta"):
        model = JatModel(config)
    assert model.num_parameters() == 190_237_919
    dead = 768 * 212 * 15 + 212 * 15 + 15 * 768 + 768 + 768 * 8
    assert model.num_parameters() + dead == 192_701_771
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert shapes["codecs.discrete.project.weight"] == (767, 212 * 15)
    assert shapes["codecs.continuous.encoder.weight"] == (768, 377)
    assert shapes["codecs.vit.projection.weight"] == (768, 3, 16, 16)
    assert shapes["lm_head.weight"] == (50257, 768)


class BinaryCodec(Codec):
    """A third-party codec: bit vectors as observations, summed into one token."""

    name = "binary"
    roles = (OBSERVATION,)
    columns = {OBSERVATION: "binary_observations"}

    def __init__(self, hidden):
        super().__init__()
        self.proj = torch.nn.Linear(8, hidden)

    def encode(self, values, rewards=None, *, role):
        return self.proj(values.float())


class BinaryPlugin:
    @hookimpl
    def jat_register_codecs(self, register):
        register("binary", lambda config, shared: BinaryCodec(config.hidden_size))


def test_a_plugin_codec_gets_its_column_routed():
    registry = load_plugins(extra={"binary": BinaryPlugin()})
    torch.manual_seed(0)
    model = JatModel(tiny_config(codecs=["binary", "discrete", "text"]), registry=registry).eval()
    batch = dict(binary_observations=torch.randint(0, 2, (2, 3, 8)), discrete_actions=torch.randint(0, 4, (2, 3)),
                 rewards=torch.zeros(2, 3))
    with torch.no_grad():
        out = model(**batch)
    assert out.pred_actions.shape == (2, 3, VOCAB) and out.pred_observations is None
    with pytest.raises(ValueError, match="unknown column 'continuous_observations'"):
        model(**continuous_batch())


def test_initialisation_is_the_references():
    """GPT-Neo's init for linear layers and embeddings; PyTorch's default (kaiming-uniform) for convolutions."""
    model = tiny_model(seed=1).requires_grad_(False)
    conv = model.codecs["image"].encoder.conv1
    bound = 1 / (4 * 3 * 3) ** 0.5
    assert float(conv.weight.abs().max()) <= bound and float(conv.weight.std()) > 0.05
    assert 0 < float(conv.bias.abs().max()) <= bound
    assert abs(float(model.lm_head.weight.std()) - 0.02) < 0.002
    assert float(model.codecs["continuous"].encoder.bias.abs().max()) == 0.0
    assert torch.equal(model.transformer.h[0].ln_1.weight, torch.ones(128))


@pytest.mark.parametrize("bad", [["discrete"], {"discrete": 16}, {3: {}}, {"discrete": {1: 2}}])
def test_codec_settings_must_be_a_dict_of_dicts(bad):
    with pytest.raises(ValueError, match="JatConfig.codec_settings"):
        JatConfig.from_preset("tiny", vocab_size=300, codec_settings=bad)


def test_codec_settings_round_trip_through_save_pretrained(tmp_path):
    config = JatConfig.from_preset("tiny", vocab_size=300, codec_settings={"discrete": {"reduced_size": 8}})
    config.save_pretrained(tmp_path)
    loaded = JatConfig.from_pretrained(tmp_path)
    assert loaded.codec_setting("discrete", "reduced_size", None) == 8
    assert loaded.codec_setting("discrete", "other", "default") == "default"
    assert loaded.codec_setting("text", "reduced_size", None) is None


def test_model_with_a_codec_option_round_trips_through_save_pretrained(tmp_path):
    """A model built with a codec option (the discrete codec's hidden layer) saves and loads as itself."""
    config = JatConfig.from_preset(
        "tiny", vocab_size=300, codec_settings={"discrete": {"reduced_size": 4, "project_hidden": 32}}
    )
    torch.manual_seed(0)
    model = JatModel(config).eval()
    model.save_pretrained(tmp_path)
    loaded = JatModel.from_pretrained(tmp_path).eval()
    inputs = dict(discrete_observations=torch.randint(0, 212, (2, 3, 212)),
                  discrete_actions=torch.randint(0, 7, (2, 3)), rewards=torch.rand(2, 3))
    with torch.no_grad():
        torch.testing.assert_close(loaded(**inputs).loss, model(**inputs).loss, rtol=0, atol=0)
    assert loaded.state_dict().keys() == model.state_dict().keys()
