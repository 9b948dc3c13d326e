"""The GPT-Neo trunk of JAT: transformers' ``GPTNeoModel``, same parameters and outputs, but fast.

``JatTrunk`` has exactly the submodule names of ``GPTNeoModel`` (``wte, wpe, drop, h.N.{ln_1,
attn.attention.{q,k,v,out}_proj, ln_2, mlp.{c_fc,c_proj}}, ln_f``), so a ``GPTNeoModel`` state dict loads with
``strict=True``, and it computes the same function:

- attention logits are ``q . k`` with NO ``1/sqrt(d)`` scaling (``scale=1.0``);
- a ``"global"`` layer is causal; a ``"local"`` layer lets query slot ``i`` see key slot ``j`` iff
  ``i - window_size < j <= i`` (transformers: ``bias ^ tril(bias, -window_size)``);
- ``gelu_new`` is the tanh approximation of GELU, computed by :func:`jat_core.activations.gelu_tanh` (on CPU in
  fp32 a sigmoid form of the same function, twice as fast as ``F.gelu(approximate="tanh")``).

Speed comes from the attention of :mod:`jat_core.attention` (SDPA, block by block: the causal triangle of a
global layer and the band of a local one are skipped, not masked) and the GELU of :mod:`jat_core.activations`.

Slots and positions. Every call appends ``L`` new tokens after ``past_len`` cached ones; the keys of a layer
are the ``past_len + L`` *slots* of the cache, and the causal/window masks are defined on slots, as in
``GPTNeoModel``. Position ids (the rows of ``wpe``) are separate and explicit: by default ``past_len +
arange(L)`` for every row (what ``GPTNeoModel`` does, even with left padding), but a caller may pass any
``(B, L)`` positions, e.g. several sequences of a batch that sit at different positions, or a context that
slid so that slot 0 of the cache no longer holds position 0.

Padding. ``attention_mask`` is ``(B, past_len + L)``, 1 = real token, 0 = padding. Outputs at padded query
slots are unspecified but finite (a padded query always sees at least itself), and no valid query ever sees a
padded key. When padding only sits at the end of each row (right padding), the causal mask already hides
every padded key from every valid query, so the fast mask-free causal path is kept.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint
from transformers.activations import ACT2FN

from jat_core import attention as attention_module
from jat_core.activations import GeluTanh
from jat_core.attention import attention, band_mask, key_padding  # noqa: F401 - band_mask: re-exported
from jat_core.cache import KVCache

ATTENTION_TYPES = ("global", "local")
#: Queries per SDPA call in every attention layer of the trunk (default: :data:`jat_core.attention.ATTENTION_BLOCK`,
#: tuned on CPU). Each layer passes this value to :func:`jat_core.attention.attention`, so setting it here tunes
#: the trunk (``bench/gpu.py --attention-block``).
ATTENTION_BLOCK = attention_module.ATTENTION_BLOCK


@dataclass
class TrunkOutput:
    """What :meth:`JatTrunk.forward` returns.

    Attributes:
        last_hidden_state: ``(B, L, H)`` after ``ln_f`` (None for a ``cache_only`` call).
        past_key_values: the cache (see :mod:`jat_core.cache`), when one was given or ``use_cache=True``.
        hidden_states: the input of every block plus the final output, when asked.
    """

    last_hidden_state: torch.Tensor | None = None
    past_key_values: Any = None
    hidden_states: tuple[torch.Tensor, ...] | None = None

class NeoSelfAttention(nn.Module):
    """One GPT-Neo attention layer (``h.N.attn.attention``): projections, global or local attention, output."""

    def __init__(self, config, attention_type: str, layer_idx: int):
        super().__init__()
        if attention_type not in ATTENTION_TYPES:
            raise ValueError(
                f"attention_layers[{layer_idx}]: expected one of {ATTENTION_TYPES}, got {attention_type!r}"
            )
        self.embed_dim = config.hidden_size
        self.num_heads = config.num_heads
        self.head_dim = self.embed_dim // self.num_heads
        if self.head_dim * self.num_heads != self.embed_dim:
            raise ValueError(
                f"hidden_size ({self.embed_dim}) must be divisible by num_heads ({self.num_heads})"
            )
        self.attention_type = attention_type
        self.window_size = int(config.window_size)
        self.layer_idx = layer_idx
        self.attention_dropout = float(config.attention_dropout)
        self.k_proj = nn.Linear(self.embed_dim, self.embed_dim, bias=False)
        self.v_proj = nn.Linear(self.embed_dim, self.embed_dim, bias=False)
        self.q_proj = nn.Linear(self.embed_dim, self.embed_dim, bias=False)
        self.out_proj = nn.Linear(self.embed_dim, self.embed_dim, bias=True)
        self.resid_dropout = nn.Dropout(float(config.resid_dropout))

    def forward(
        self, hidden_states: torch.Tensor, key_valid: torch.Tensor | None, past_key_values: Any = None
    ) -> torch.Tensor:
        """``(B, L, H)`` -> ``(B, L, H)``; appends this layer's keys/values to ``past_key_values`` when given.

        ``key_valid`` is the ``(B, past_len + L)`` padding mask of :func:`key_padding` (or None).
        """
        B, L, H = hidden_states.shape
        q = self._heads(self.q_proj(hidden_states))  # (B, nh, L, d)
        k, v = self._heads(self.k_proj(hidden_states)), self._heads(self.v_proj(hidden_states))
        if past_key_values is not None:
            k, v = past_key_values.update(k, v, self.layer_idx)  # (B, nh, past_len + L, d)
        dropout_p = self.attention_dropout if self.training else 0.0
        window = self.window_size if self.attention_type == "local" else None
        out = attention(q, k, v, key_valid, window, dropout_p, ATTENTION_BLOCK)  # (B, nh, L, d)
        out = out.transpose(1, 2).reshape(B, L, H)  # (B, L, H)
        return self.resid_dropout(self.out_proj(out))

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, L, H)`` -> ``(B, nh, L, d)``."""
        B, L, _ = x.shape
        return x.view(B, L, self.num_heads, self.head_dim).transpose(1, 2)

    def cache_keys_values(self, hidden_states: torch.Tensor, past_key_values: Any) -> None:
        """Only append this layer's keys and values of ``(B, L, H)`` inputs to ``past_key_values``."""
        past_key_values.update(
            self._heads(self.k_proj(hidden_states)), self._heads(self.v_proj(hidden_states)), self.layer_idx
        )


class NeoAttention(nn.Module):
    """Holder that reproduces GPT-Neo's ``attn.attention`` nesting of parameter names."""

    def __init__(self, config, layer_idx: int):
        super().__init__()
        self.attention = NeoSelfAttention(config, config.attention_layers[layer_idx], layer_idx)

    def forward(self, hidden_states, key_valid, past_key_values=None):
        """See :meth:`NeoSelfAttention.forward`."""
        return self.attention(hidden_states, key_valid, past_key_values)


class NeoMLP(nn.Module):
    """GPT-Neo feed-forward: ``c_fc`` (H -> I), activation, ``c_proj`` (I -> H), dropout."""

    def __init__(self, config):
        super().__init__()
        inner = config.intermediate_size if config.intermediate_size is not None else 4 * config.hidden_size
        self.c_fc = nn.Linear(config.hidden_size, inner)
        self.c_proj = nn.Linear(inner, config.hidden_size)
        name = config.activation_function
        # gelu_new is GELU's tanh approximation (see jat_core.activations)
        self.act = GeluTanh() if name == "gelu_new" else ACT2FN[name]
        self.dropout = nn.Dropout(float(config.resid_dropout))

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        """``(B, L, H)`` -> ``(B, L, H)``."""
        return self.dropout(self.c_proj(self.act(self.c_fc(hidden_states))))


class NeoBlock(nn.Module):
    """Pre-norm transformer block ``h.N``: ``x + attn(ln_1(x))``, then ``x + mlp(ln_2(x))``."""

    def __init__(self, config, layer_idx: int):
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_epsilon)
        self.attn = NeoAttention(config, layer_idx)
        self.ln_2 = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_epsilon)
        self.mlp = NeoMLP(config)

    def forward(
        self, hidden_states: torch.Tensor, key_valid: torch.Tensor | None, past_key_values: Any = None
    ) -> torch.Tensor:
        """``(B, L, H)`` -> ``(B, L, H)``; ``key_valid`` as in :meth:`NeoSelfAttention.forward`."""
        hidden_states = hidden_states + self.attn(self.ln_1(hidden_states), key_valid, past_key_values)
        return hidden_states + self.mlp(self.ln_2(hidden_states))

    def cache_keys_values(self, hidden_states: torch.Tensor, past_key_values: Any) -> None:
        """Only append the keys and values of this block's ``(B, L, H)`` inputs to ``past_key_values``."""
        self.attn.attention.cache_keys_values(self.ln_1(hidden_states), past_key_values)


class JatTrunk(nn.Module):
    """GPT-Neo trunk, state-dict compatible with transformers' ``GPTNeoModel``.

    Args:
        config: any object with GPT-Neo's attribute names (``vocab_size, max_position_embeddings, hidden_size,
            num_layers, num_heads, attention_layers, window_size, intermediate_size, activation_function,
            layer_norm_epsilon, embed_dropout, attention_dropout, resid_dropout, initializer_range``), e.g. a
            ``GPTNeoConfig`` or a ``JatConfig``.
    """

    def __init__(self, config):
        super().__init__()
        if len(config.attention_layers) != config.num_layers:
            raise ValueError(
                f"attention_layers: expected {config.num_layers} entries (num_layers), "
                f"got {len(config.attention_layers)}"
            )
        self.config = config
        self.embed_dim = config.hidden_size
        self.wte = nn.Embedding(config.vocab_size, self.embed_dim)
        self.wpe = nn.Embedding(config.max_position_embeddings, self.embed_dim)
        self.drop = nn.Dropout(float(config.embed_dropout))
        self.h = nn.ModuleList([NeoBlock(config, i) for i in range(config.num_layers)])
        self.ln_f = nn.LayerNorm(self.embed_dim, eps=config.layer_norm_epsilon)
        #: recompute each block's activations in the backward pass instead of keeping them (less memory, ~1/3
        #: more compute); transformers' ``model.gradient_checkpointing_enable()`` sets it too.
        self.gradient_checkpointing = False
        self.apply(self._init_module)

    def _init_module(self, module: nn.Module) -> None:
        """GPT-Neo's initialisation: normal(0, initializer_range) weights, zero biases, unit LayerNorms. Inside a
        ``JatModel``, ``post_init`` initialises the trunk again; both stay, as the random stream a seeded model's
        weights (and the tuned demo, and seed-dependent tests) come from."""
        std = self.config.initializer_range
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=std)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)
        if isinstance(module, nn.LayerNorm):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)

    def get_input_embeddings(self) -> nn.Embedding:
        """The token table ``wte``."""
        return self.wte

    def set_input_embeddings(self, embeddings: nn.Embedding) -> None:
        """Replace the token table ``wte``."""
        self.wte = embeddings

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        past_key_values: Any = None,
        use_cache: bool = False,
        output_hidden_states: bool = False,
        cache_only: bool = False,
    ) -> TrunkOutput:
        """Run the trunk on ``L`` new tokens, after the ``past_len`` tokens already in ``past_key_values``.

        Args:
            input_ids: ``(B, L)`` token ids, or
            inputs_embeds: ``(B, L, H)`` token embeddings (exactly one of the two).
            attention_mask: ``(B, past_len + L)``, 1 = real token, 0 = padding; None = no padding.
            position_ids: ``(B, L)``, ``(1, L)`` or ``(L,)`` rows of ``wpe``; default ``past_len + arange(L)``.
            past_key_values: a cache holding ``past_len`` slots per layer, updated in place (anything with the
                protocol of :mod:`jat_core.cache`), or None.
            use_cache: create a :class:`jat_core.cache.KVCache` when ``past_key_values`` is None and return it.
            output_hidden_states: also return the input of every block plus the final (post ``ln_f``) output.
            cache_only: only fill ``past_key_values`` (a prefill whose outputs are not needed, e.g. the agent
                re-encoding a slid window): the last block computes its keys and values and nothing after them
                (no attention, MLP or ``ln_f``); ``last_hidden_state`` is then None.

        Returns:
            :class:`TrunkOutput` with ``last_hidden_state (B, L, H)``, ``past_key_values`` and
            ``hidden_states`` (``num_layers + 1`` tensors ``(B, L, H)``) when asked.
        """
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("JatTrunk.forward: pass exactly one of input_ids (B, L) and inputs_embeds (B, L, H)")
        if inputs_embeds is None:
            if input_ids.dim() != 2:
                raise ValueError(f"input_ids: expected shape (B, L), got {tuple(input_ids.shape)}")
            inputs_embeds = self.wte(input_ids)  # (B, L, H)
        if inputs_embeds.dim() != 3 or inputs_embeds.shape[-1] != self.embed_dim:
            raise ValueError(
                f"inputs_embeds: expected shape (B, L, {self.embed_dim}), got {tuple(inputs_embeds.shape)}"
            )
        B, L, _ = inputs_embeds.shape

        if use_cache and past_key_values is None:
            past_key_values = KVCache()
        if cache_only and (past_key_values is None or output_hidden_states):
            raise ValueError("JatTrunk.forward: cache_only=True needs past_key_values (or use_cache=True) and no "
                             "output_hidden_states")
        past_len = past_key_values.get_seq_length() if past_key_values is not None else 0
        if attention_mask is not None and tuple(attention_mask.shape) != (B, past_len + L):
            raise ValueError(
                f"attention_mask: expected shape (B, past_len + L) = ({B}, {past_len + L}), "
                f"got {tuple(attention_mask.shape)}"
            )
        position_ids = self._positions(position_ids, B, L, past_len, inputs_embeds.device)
        key_valid = key_padding(attention_mask)  # (B, past_len + L) or None

        hidden_states = self.drop(inputs_embeds + self.wpe(position_ids))  # (B, L, H)
        all_hidden_states = () if output_hidden_states else None
        blocks = self.h[:-1] if cache_only else self.h
        for block in blocks:
            if output_hidden_states:
                all_hidden_states += (hidden_states,)
            if self.gradient_checkpointing and self.training and torch.is_grad_enabled():
                if past_key_values is not None:
                    raise ValueError("JatTrunk.forward: gradient checkpointing does not fill a cache; pass no "
                                     "past_key_values and use_cache=False while training")
                hidden_states = checkpoint(block, hidden_states, key_valid, use_reentrant=False)
            else:
                hidden_states = block(hidden_states, key_valid=key_valid, past_key_values=past_key_values)
        if cache_only:
            self.h[-1].cache_keys_values(hidden_states, past_key_values)
            return TrunkOutput(last_hidden_state=None, past_key_values=past_key_values)
        hidden_states = self.ln_f(hidden_states)
        if output_hidden_states:
            all_hidden_states += (hidden_states,)
        return TrunkOutput(
            last_hidden_state=hidden_states, past_key_values=past_key_values, hidden_states=all_hidden_states
        )

    def _positions(
        self, position_ids: torch.Tensor | None, B: int, L: int, past_len: int, device: torch.device
    ) -> torch.Tensor:
        """Position ids ``(B or 1, L)``: the given ones checked, or ``past_len + arange(L)``."""
        limit = self.config.max_position_embeddings
        if position_ids is None:
            if past_len + L > limit:
                raise ValueError(
                    f"position_ids: past_len + L = {past_len} + {L} exceeds max_position_embeddings ({limit}); "
                    "slide the context and pass explicit position_ids"
                )
            return torch.arange(past_len, past_len + L, device=device)[None]  # (1, L)
        if position_ids.dim() == 1:
            position_ids = position_ids[None]
        if position_ids.dim() != 2 or position_ids.shape[1] != L or position_ids.shape[0] not in (1, B):
            raise ValueError(f"position_ids: expected shape ({B}, {L}), (1, {L}) or ({L},), "
                             f"got {tuple(position_ids.shape)}")
        if position_ids.numel() and (int(position_ids.min()) < 0 or int(position_ids.max()) >= limit):
            raise ValueError(
                f"position_ids: expected values in [0, {limit}) (max_position_embeddings), got "
                f"[{int(position_ids.min())}, {int(position_ids.max())}]"
            )
        return position_ids
