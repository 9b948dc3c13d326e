"""``JatModel``: the JAT transformer, assembled from the trunk, the shared token table and head, and whatever codecs
the config names (built through the plugin registry).

The model knows no modality and no column: each codec declares the data-set column it reads for each role
(``Codec.columns``), and ``forward(**batch)`` routes keyword arguments by those names. Two kinds of batch:

- RL (one observation column, one action column, ``rewards``): per timestep ``[o_t (with r_t), a_t]``, two tokens
  per step. The state at ``o_t`` predicts ``a_t`` (action codec); the state at ``a_t`` predicts ``o_{t+1}``
  (observation codec, when it predicts observations). ``loss = observation_loss_coef * observation_loss +
  action_loss_coef * action_loss`` (kappa), each a per-step-weighted mean over valid steps.
- sequence (``"sequence"``-role columns, e.g. ``pixel_values`` and ``input_ids``): the codecs' token streams
  concatenated by ``sequence_order`` (image patches, then text); the predicting codec (text) gets a next-token
  loss on its own positions only.

Parameter names: ``transformer.*`` (the GPT-Neo trunk, names of transformers' ``GPTNeoModel``; its ``wte`` is the
ONE token table), ``lm_head.weight`` (the token head), ``codecs.<name>.*`` (each codec's own layers).
``jat_core.convert`` maps the published checkpoint onto these names.

Bad input is refused, naming the column: NaN or infinite values (in any column, ``rewards``, ``loss_weight``), an
empty batch (no sample, no step, no token). ``from_pretrained`` is strict (see :meth:`JatModel.from_pretrained`):
weights from safetensors only, every weight present with its shape, damaged files named (:mod:`jat_core.loading`).

Importing this module registers the model with ``AutoModel`` and ``AutoModelForCausalLM`` (``model_type="jat"``,
no remote code).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from transformers import AutoModel, AutoModelForCausalLM, PreTrainedModel

from jat_core.codec import ACTION, OBSERVATION, SEQUENCE, Codec, SharedParts, as_tensor, column_routes
from jat_core.config import CheckpointError, JatConfig  # noqa: F401  (CheckpointError: importable from here too)
from jat_core.loading import load_strict
from jat_core.output import JatOutput
from jat_core.plugins import Registry, load_plugins
from jat_core.sequence import (
    deinterleave,
    extend_mask,
    interleave,
    interleave_mask,
    loss_weights,
    past_length,
    step_mask,
    weighted_mean,
)
from jat_core.specs import check_finite
from jat_core.trunk import JatTrunk


class JatModel(PreTrainedModel):
    """The JAT model. See the module docstring for the batch layouts and parameter names.

    Args:
        config: a :class:`JatConfig`.
        registry: the plugin registry that provides the codecs named in ``config.codecs`` (default: every
            installed plugin, :func:`jat_core.load_plugins`); all of its codecs when ``config.codecs`` is ``None``.
    """

    config_class = JatConfig
    base_model_prefix = "jat"
    supports_gradient_checkpointing = True
    _no_split_modules = ["NeoBlock"]
    _skip_keys_device_placement = ["past_key_values"]

    def __init__(self, config: JatConfig, registry: Registry | None = None, **unknown: Any) -> None:
        if unknown:  # what from_pretrained(path, **kwargs) does not recognise lands here: a config field's typo
            name = next(iter(unknown))
            if name in JatConfig.field_names():
                raise ValueError(f"JatModel: {name!r} is a config field; set it on the JatConfig, not on the model")
            raise JatConfig.unknown_field(name, where="JatModel", extra=("registry",))
        super().__init__(config)
        self.transformer = JatTrunk(config)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        shared = SharedParts(wte=self.transformer.wte, head=self.lm_head)
        registry = registry if registry is not None else load_plugins()
        if config.codecs is None:  # every registered codec, in registration order (recorded: save_pretrained)
            config.codecs = list(registry.codecs)
        self.codecs = nn.ModuleDict({name: registry.build_codec(name, config, shared) for name in config.codecs})
        self.routes = column_routes(self.codecs)
        predicted = [c.columns[SEQUENCE] for c in self.codecs.values() if SEQUENCE in c.predicts]
        if predicted:  # transformers' "principal input": the token stream the model predicts (else its default)
            self.main_input_name = predicted[0]
        self.post_init()

    # -- Hugging Face plumbing -------------------------------------------------------------------------------
    def _init_weights(self, module: nn.Module) -> None:
        """The reference's initialisation: GPT-Neo's (normal(0, initializer_range) for linear layers and
        embeddings, zero biases, unit LayerNorms: transformers' default) and, for convolutions, PyTorch's default
        from their construction, which GPT-Neo's ``_init_weights`` did not touch (so neither does this)."""
        if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
            return
        super()._init_weights(module)

    def get_input_embeddings(self) -> nn.Embedding:
        """The shared token table (``transformer.wte``)."""
        return self.transformer.wte

    def get_output_embeddings(self) -> nn.Linear:
        """The token head (``lm_head``), not tied to the token table."""
        return self.lm_head

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *model_args, **kwargs):
        """Load a saved model: transformers' ``from_pretrained``, strict.

        - Weights come from ``model.safetensors`` (or its shards) only: a pickle ``pytorch_model.bin`` is refused,
          never opened (unpickling can run code); ``use_safetensors=False`` is an error.
        - Every weight must be there, with its shape: a missing, unexpected or wrong-shaped weight raises, naming
          the keys and shapes (transformers would initialise it randomly and only log it).
          ``ignore_mismatched_sizes=True`` still re-initialises wrong-shaped weights, as documented by transformers.
        - In a local directory, the safetensors headers must be readable (a truncated file is caught before anything
          is loaded), and ``config.json`` must exist and hold a valid JAT config (:meth:`JatConfig.from_pretrained`).
        - Keyword arguments that are neither loading options, config fields (overrides) nor model arguments
          (``registry``) are refused, naming the closest config field.

        Args:
            pretrained_model_name_or_path: a directory written by ``save_pretrained``, or a hub id.
            *model_args, **kwargs: as transformers' ``from_pretrained``; config overrides and ``registry`` included.

        Returns:
            The model, or ``(model, loading_info)`` with ``output_loading_info=True``.

        Raises:
            CheckpointError: a missing, unreadable, non-JSON or pickle file, weights that do not fit (the file named).
            ValueError: an unknown keyword argument or config override.
        """
        return load_strict(super().from_pretrained, pretrained_model_name_or_path, *model_args, **kwargs)

    def codec_for(self, column: str) -> tuple[Codec, str]:
        """The codec that reads ``column`` and its role there; an unknown column lists the known ones."""
        if column not in self.routes:
            raise ValueError(f"unknown column {column!r}; this model's codecs read: {sorted(self.routes)}")
        route = self.routes[column]
        return self.codecs[route.codec], route.role

    # -- inference API (jat_core.agent, jat_core.generation) -------------------------------------------------
    def agent(self, task, **kwargs):
        """A batched incremental :class:`jat_core.agent.JatAgent` for ``task`` (a TaskSpec or a task name)."""
        from jat_core.agent import JatAgent

        return JatAgent(self, task, **kwargs)

    def generate(self, input_ids=None, **kwargs) -> torch.Tensor:
        """Append generated tokens to ``input_ids (B, L)`` (greedy by default; sequence columns such as
        ``pixel_values`` go before the text): see :func:`jat_core.generation.generate`."""
        from jat_core.generation import generate

        return generate(self, input_ids, **kwargs)

    def complete(self, prompt, max_new_tokens: int = 32, tokenizer=None, **generate_kwargs):
        """Continue a text (or each of a list of texts): see :func:`jat_core.generation.complete`."""
        from jat_core.generation import complete

        return complete(self, prompt, max_new_tokens=max_new_tokens, tokenizer=tokenizer, **generate_kwargs)

    def caption(self, image, max_new_tokens: int = 32, tokenizer=None, **generate_kwargs):
        """Describe an image (optionally after a ``prompt=`` text): see :func:`jat_core.generation.caption`."""
        from jat_core.generation import caption

        return caption(self, image, max_new_tokens=max_new_tokens, tokenizer=tokenizer, **generate_kwargs)

    # -- forward ---------------------------------------------------------------------------------------------
    def forward(
        self,
        attention_mask: torch.Tensor | None = None,
        rewards: torch.Tensor | None = None,
        loss_weight: torch.Tensor | None = None,
        past_key_values: Any = None,
        position_ids: torch.Tensor | None = None,
        use_cache: bool | None = None,
        return_loss: bool = True,
        output_hidden_states: bool | None = None,
        output_attentions: bool | None = None,
        return_dict: bool | None = None,
        cache: Any = None,
        **columns: torch.Tensor | None,
    ) -> JatOutput:
        """Run the model on one batch, given by data-set column names.

        Args:
            attention_mask: RL: ``(B, T)`` step mask (True = real step). Sequence: ``(B, L)`` token mask of the
                predicting stream (text); tokens before it (image patches, cached past) are always attended.
                ``None``: everything valid.
            rewards: ``(B, T)`` float, the reward received before each observation (RL batches; required).
            loss_weight: per-step loss weights, ``(B, T)`` or per sample ``(B,)`` (applied to every codec's loss the
                same way: ``sum(w * loss over valid steps) / number of valid steps``).
            past_key_values: the cache of a previous call (``out.past_key_values``, a
                :class:`jat_core.cache.KVCache`) for incremental decoding; ``cache`` is the same argument under
                transformers' newer name.
            position_ids: optional trunk positions ``(B, L)`` (default: after the cached past).
            use_cache: return the cache (default False).
            return_loss: compute the losses (default True).
            output_hidden_states: return the trunk's hidden states.
            output_attentions: not supported (the trunk uses fused attention); ``True`` is an error.
            return_dict: ``False`` returns ``JatOutput.to_tuple()``.
            **columns: the data: for each codec, the column it declares for a role, e.g.
                ``continuous_observations (B, T, n)``, ``discrete_observations (B, T, 212)``,
                ``image_observations (B, T, 4, 84, 84)``, ``continuous_actions (B, T, m)``,
                ``discrete_actions (B, T)``, ``input_ids (B, L)``, ``pixel_values (B, 3, 224, 224)``.

        Returns:
            :class:`JatOutput`.

        Raises:
            ValueError: an unknown column, no data, RL and sequence columns mixed, several observation or action
                columns, a missing reward, bad shapes / dtypes / values (the codec names the field).
        """
        if output_attentions:
            raise ValueError("output_attentions: not supported (the trunk uses fused attention), got True")
        if cache is not None:
            if past_key_values is not None:
                raise ValueError("cache: the same argument as past_key_values; pass one of them, got both")
            past_key_values = cache
        given: dict[str, list[tuple[Codec, str, Any]]] = {OBSERVATION: [], ACTION: [], SEQUENCE: []}
        for column, values in columns.items():
            if values is None:
                continue
            codec, role = self.codec_for(column)
            values = as_tensor(values, column)
            # RL columns are (B, T, ...), sequence columns (B, ...): a batch of no sample or no step has no loss
            batch_dims, what = (1, "one sample (B > 0)") if role == SEQUENCE else (2, "one sample and one step (B, T > 0)")
            if values.dim() >= batch_dims and 0 in values.shape[:batch_dims]:
                raise ValueError(f"{column}: expected at least {what}, got shape {tuple(values.shape)}")
            check_finite(values, field=column)
            given[role].append((codec, column, values))
        if rewards is not None:
            rewards = as_tensor(rewards, "rewards")
            check_finite(rewards, field="rewards")
        rl = given[OBSERVATION] or given[ACTION]
        if rl and given[SEQUENCE]:
            raise ValueError(
                f"a batch is either RL (observations and actions) or a token sequence, got RL columns "
                f"{[c for _, c, _ in given[OBSERVATION] + given[ACTION]]} and sequence columns "
                f"{[c for _, c, _ in given[SEQUENCE]]}"
            )
        if not rl and not given[SEQUENCE]:
            raise ValueError(f"no input: pass at least one of the columns {sorted(self.routes)}")
        common = dict(
            attention_mask=attention_mask,
            loss_weight=loss_weight,
            past_key_values=past_key_values,
            position_ids=position_ids,
            use_cache=bool(use_cache),
            return_loss=return_loss,
            output_hidden_states=bool(output_hidden_states),
        )
        if rl:
            out = self._forward_rl(given[OBSERVATION], given[ACTION], rewards=rewards, **common)
        else:
            if rewards is not None:
                raise ValueError("rewards: only RL batches take rewards, got rewards with a token sequence batch")
            out = self._forward_sequence(given[SEQUENCE], **common)
        return out if return_dict is not False else out.to_tuple()

    def _trunk(self, embeds, mask, *, past_key_values, position_ids, use_cache, output_hidden_states):
        """Run the trunk; ``mask`` is ``(B, past + L)`` bool (``None`` when every token is valid)."""
        past = past_length(past_key_values)
        limit = self.config.max_position_embeddings
        if position_ids is None and past + embeds.shape[1] > limit:
            raise ValueError(
                f"sequence: expected at most max_position_embeddings={limit} tokens (past + new), got "
                f"{past} + {embeds.shape[1]}"
            )
        if mask is not None and bool(mask.all()):
            mask = None  # no padding: the trunk's fast path
        return self.transformer(inputs_embeds=embeds, attention_mask=mask, position_ids=position_ids,
                                past_key_values=past_key_values, use_cache=use_cache,
                                output_hidden_states=output_hidden_states)

    def _forward_rl(self, observations, actions, *, rewards, attention_mask, loss_weight, past_key_values,
                    position_ids, use_cache, return_loss, output_hidden_states) -> JatOutput:
        if len(observations) != 1:
            raise ValueError(
                "an RL batch needs exactly one observation column (fields sharing a codec are concatenated by the "
                f"processor), got {[c for _, c, _ in observations] or 'none'}"
            )
        if len(actions) != 1:
            raise ValueError(f"an RL batch needs exactly one action column, got {[c for _, c, _ in actions] or 'none'}")
        obs_codec, obs_column, obs = observations[0]
        act_codec, act_column, act = actions[0]
        obs_emb = obs_codec.encode(obs, rewards, role=OBSERVATION)  # (B, T, H)
        act_emb = act_codec.encode(act, role=ACTION)  # (B, T, H)
        if obs_emb.shape[:2] != act_emb.shape[:2]:
            raise ValueError(
                f"{act_column}: expected the (B, T) = {tuple(obs_emb.shape[:2])} of {obs_column}, "
                f"got {tuple(act_emb.shape[:2])}"
            )
        B, T = obs_emb.shape[:2]
        steps = step_mask(attention_mask, (B, T), obs_emb.device)  # (B, T)
        past = past_length(past_key_values)
        token_mask = extend_mask(interleave_mask(steps), B, past + 2 * T)  # (B, past + 2T)
        trunk = self._trunk(
            interleave(obs_emb, act_emb), token_mask, past_key_values=past_key_values, position_ids=position_ids,
            use_cache=use_cache, output_hidden_states=output_hidden_states,
        )
        at_obs, at_act = deinterleave(trunk.last_hidden_state)  # (B, T, H) each
        weights = loss_weights(loss_weight, (B, T), what="(B, T)")

        # actions: a_t from the state at o_t
        act_preds = act_codec.decode(at_obs, role=ACTION)
        action_loss = None
        if return_loss:
            action_loss = weighted_mean(act_codec.loss(act_preds, act, steps, role=ACTION), steps, weights)
        pred_actions = act_codec.crop(act_preds, act, role=ACTION)

        # observations: o_{t+1} from the state at a_t
        pred_observations, observation_loss = None, None
        if OBSERVATION in obs_codec.predicts and self.config.observation_loss_coef != 0:
            obs_preds = obs_codec.decode(at_act, role=OBSERVATION)
            if return_loss:
                next_mask = steps[:, 1:]
                rewards_next = None if rewards is None else rewards[:, 1:]
                per_step = obs_codec.loss(obs_preds[:, :-1], obs[:, 1:], next_mask, role=OBSERVATION, rewards=rewards_next)
                observation_loss = weighted_mean(per_step, next_mask, None if weights is None else weights[:, 1:])
            pred_observations = obs_codec.crop(obs_preds, obs, role=OBSERVATION)
        elif return_loss:
            observation_loss = action_loss.new_zeros(())

        loss = None
        if return_loss:
            loss = self.config.observation_loss_coef * observation_loss + self.config.action_loss_coef * action_loss
        return JatOutput(
            loss=loss,
            observation_loss=observation_loss,
            action_loss=action_loss,
            pred_actions=pred_actions,
            pred_observations=pred_observations,
            past_key_values=trunk.past_key_values,
            hidden_states=trunk.hidden_states,
        )

    def _forward_sequence(self, streams, *, attention_mask, loss_weight, past_key_values, position_ids, use_cache,
                          return_loss, output_hidden_states) -> JatOutput:
        streams = sorted(streams, key=lambda s: s[0].sequence_order)
        embeds = [codec.encode(values, role=SEQUENCE) for codec, _, values in streams]  # (B, L_i, H) each
        B = embeds[0].shape[0]
        for (_, column, _), e in zip(streams, embeds):
            if e.shape[0] != B:
                raise ValueError(f"{column}: expected batch size {B} (of {streams[0][1]}), got {e.shape[0]}")
        lengths = [e.shape[1] for e in embeds]
        L = sum(lengths)
        if L == 0:
            names = ", ".join(column for _, column, _ in streams)
            shapes = ", ".join(str(tuple(values.shape)) for _, _, values in streams)
            raise ValueError(f"{names}: expected at least one token (L > 0), got shape {shapes}")
        predicting = [i for i, (codec, _, _) in enumerate(streams) if SEQUENCE in codec.predicts]
        if len(predicting) > 1:
            raise ValueError(f"a sequence batch may hold one predicted stream, got {[streams[i][1] for i in predicting]}")
        past = past_length(past_key_values)
        mask = None
        if attention_mask is not None:
            mask = torch.as_tensor(attention_mask)
            always_valid = past + sum(n for i, n in enumerate(lengths) if i not in predicting)
            if mask.dim() != 2 or mask.shape[0] != B or not (past + L - always_valid <= mask.shape[1] <= past + L):
                raise ValueError(
                    f"attention_mask: expected shape ({B}, {past + L - always_valid}) (the predicted tokens) up to "
                    f"({B}, {past + L}) (every token), got {tuple(mask.shape)}"
                )
            mask = extend_mask(mask, B, past + L)  # (B, past + L)
        trunk = self._trunk(
            torch.cat(embeds, dim=1), mask, past_key_values=past_key_values, position_ids=position_ids,
            use_cache=use_cache, output_hidden_states=output_hidden_states,
        )
        hidden = trunk.last_hidden_state  # (B, L, H)
        logits, loss = None, None
        if predicting:
            i = predicting[0]
            codec, column, values = streams[i]
            logits = codec.decode(hidden, role=SEQUENCE)  # every position, as the reference
            if return_loss:
                start = sum(lengths[:i])
                block = slice(start, start + lengths[i])
                block_mask = (
                    torch.ones(B, lengths[i], dtype=torch.bool, device=hidden.device)
                    if mask is None else mask[:, past + block.start : past + block.stop]
                )
                weights = loss_weights(loss_weight, (B, lengths[i]), what=f"(B, L) of {column}")
                # position t of the stream predicts its token t + 1
                per_token = codec.loss(logits[:, block][:, :-1], values[:, 1:], block_mask[:, 1:], role=SEQUENCE)
                loss = weighted_mean(per_token, block_mask[:, 1:], None if weights is None else weights[:, 1:])
        elif return_loss:
            raise ValueError(f"no loss: none of the columns {[c for _, c, _ in streams]} is predicted; pass return_loss=False")
        return JatOutput(loss=loss, logits=logits, past_key_values=trunk.past_key_values, hidden_states=trunk.hidden_states)


AutoModel.register(JatConfig, JatModel, exist_ok=True)
AutoModelForCausalLM.register(JatConfig, JatModel, exist_ok=True)
