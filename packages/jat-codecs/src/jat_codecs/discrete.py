"""Discrete codec: integer observation vectors (BabyAI) and single integer actions (Atari, BabyAI).

Maths of the reference:

- observation: exactly ``max_discrete_value`` (212) integers per step (BabyAI: direction + 147 grid values, then
  the mission's 64 GPT-2 tokens) -> the shared token table ``wte`` ``(212, H)`` -> ``Linear(H, H // 50)`` -> ReLU
  -> flatten ``(212 * (H // 50))`` -> ``Linear(., H - 1)`` -> the reward appended as the last feature -> ``H``;
- action: one integer -> its row of the shared token table;
- action prediction: the shared token head (``Linear(H, vocab_size)``, not tied to ``wte``), logits over the whole
  vocabulary; the agent asks only for the first ``n`` rows (``decode(size=n)``). Loss: cross-entropy.
- discrete observations are not predicted (the reference's ``multi_discrete_decoder`` is dead weight).

Options (``JatConfig.codec_settings["discrete"]``):

- ``reduced_size``, the features kept per integer (default ``H // 50``, the reference's). At small widths the
  reference's rule keeps very few (2 at H=128), too few to tell the mission's words apart; ``make demo`` uses 16.
- ``project_hidden``, a hidden layer of that width (with a ReLU) between the flattened integers and the token
  (default none: the reference's single ``Linear``). The single linear map can only add up what each integer says
  on its own; a hidden layer lets the token hold conjunctions (this cell holds a ball AND it is red AND the mission
  names a red ball) that a small trunk would otherwise have to untangle from a 127-feature sum.
- ``project_dtype``, ``"bfloat16"``: the projection's matrix products (the ``212 * reduced_size`` wide one is the
  largest product of a tiny model's BabyAI step) run under bf16 autocast from the fp32 weights, whatever precision
  the rest of the model runs in; the token comes back in the input's dtype. On a CPU that computes bf16 natively
  this shortens a BabyAI training step without raising the training loss, where bf16 autocast over the whole
  model does raise it (docs/benchmarks.md, "Recipe choices"). Default: the surrounding precision.

The token table and head belong to the core (:class:`jat_core.codec.SharedParts`); this codec only owns the
two reduction layers ``reduce`` and ``project``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from jat_core.codec import ACTION, OBSERVATION, Codec, SharedParts
from torch import nn

from jat_codecs import checks

#: The reference divides the width by 50 before flattening the 212 embedded values.
REDUCTION = 50
#: ``project_dtype`` values: the dtype of the projection's products (None and "float32": the surrounding one)
PROJECT_DTYPES = {None: None, "float32": None, "bfloat16": torch.bfloat16}


class DiscreteCodec(Codec):
    """Encode integer observations (with reward) and integer actions; predict actions with the token head.

    Args:
        shared: the core's token table and head.
        num_values: integers per observation (``max_discrete_value``).
    """

    name = "discrete"
    roles = (OBSERVATION, ACTION)
    columns = {OBSERVATION: "discrete_observations", ACTION: "discrete_actions"}
    predicts = (ACTION,)
    reference_keys = {
        "multi_discrete_encoder.1.": "codecs.discrete.reduce.",
        "multi_discrete_encoder.4.": "codecs.discrete.project.",
        # the reference's names of the one token table and of the token head
        "single_discrete_encoder.weight": "transformer.wte.weight",
        "multi_discrete_encoder.0.weight": "transformer.wte.weight",
        "single_discrete_decoder.": "lm_head.",
        "multi_discrete_decoder.": None,  # dead weights: discrete observations are not predicted
    }
    action_unit = "logits (n)"

    def __init__(
        self,
        shared: SharedParts,
        num_values: int,
        reduced_size: int | None = None,
        project_hidden: int | None = None,
        project_dtype: str | None = None,
    ) -> None:
        super().__init__()
        hidden = shared.wte.embedding_dim
        if reduced_size is None:
            if hidden < REDUCTION + 1:
                raise ValueError(f"discrete codec: expected hidden_size > {REDUCTION}, got {hidden}")
            reduced_size = hidden // REDUCTION
        _positive(reduced_size, "reduced_size")
        if project_hidden is not None:
            _positive(project_hidden, "project_hidden")
        if project_dtype not in PROJECT_DTYPES:
            raise ValueError(
                f"codec_settings['discrete']['project_dtype']: expected one of {sorted(k for k in PROJECT_DTYPES if k)}"
                f", got {project_dtype!r}"
            )
        #: the dtype the projection's matrix products run in (None: the surrounding one)
        self.project_dtype = PROJECT_DTYPES[project_dtype]
        self.shared = shared
        self.num_values = num_values
        self.reduce = nn.Linear(hidden, reduced_size)  # reference: multi_discrete_encoder.1
        flat = num_values * reduced_size
        if project_hidden is None:
            self.project = nn.Linear(flat, hidden - 1)  # reference: multi_discrete_encoder.4
        else:
            self.project = nn.Sequential(nn.Linear(flat, project_hidden), nn.ReLU(), nn.Linear(project_hidden, hidden - 1))

    @property
    def vocab_size(self) -> int:
        return self.shared.wte.num_embeddings

    def prepare(self, values, *, role: str) -> torch.Tensor:
        """Raw integers (``(B, T, 212)`` observations, ``(B, T)`` actions) to an int64 tensor."""
        return checks.int64(values, field=self.columns[role])

    def _ids(self, values, role: str) -> torch.Tensor:
        field = self.columns[role]
        x = checks.tensor(values, field=field)
        if role == OBSERVATION:
            checks.shape(x, (None, None, self.num_values), field=field, layout=f"(B, T, {self.num_values})")
        else:
            checks.shape(x, (None, None), field=field, layout="(B, T)")
        checks.integer(x, field=field)
        checks.in_range(x, self.vocab_size, field=field)
        return x

    def _reduced_features(self, ids: torch.Tensor) -> torch.Tensor:
        """``relu(reduce(wte(ids)))``, ``(..., H // 50)``: looked up in a ``(vocab, H // 50)`` table when cheaper.

        The two are the same maths, to the bit (the ReLU acts on each value alone, so it can act on the table's
        rows before the look-up); the table saves the ``(B, T, 212, H)`` intermediate of long windows and the
        ReLU's pass (and its backward) over the ``(B, T, 212, H // 50)`` result.
        """
        wte = self.shared.wte
        if ids.numel() > wte.num_embeddings:
            table = F.relu(self.reduce(wte.weight))  # (V, H // 50)
            return F.embedding(ids, table)
        return F.relu(self.reduce(wte(ids)))

    def encode(self, values, rewards=None, *, role: str) -> torch.Tensor:
        """``(B, T, 212)`` observations with ``(B, T)`` rewards, or ``(B, T)`` actions -> ``(B, T, H)``."""
        ids = self._ids(values, role)
        if role == ACTION:
            return self.shared.wte(ids)  # (B, T, H)
        r = checks.rewards(rewards, ids.shape[:2], field=self.columns[role])
        x = self._reduced_features(ids)  # (B, T, 212, H // 50)
        x = x.flatten(start_dim=2)  # (B, T, 212 * H // 50)
        if self.project_dtype is None:
            x = self.project(x)  # (B, T, H - 1)
        else:  # the products in project_dtype, from fp32 weights; the token in the input's dtype
            with torch.autocast(x.device.type, dtype=self.project_dtype):
                x = self.project(x).to(x.dtype)  # (B, T, H - 1)
        return torch.cat((x, r.to(x.dtype).unsqueeze(-1)), dim=-1)  # (B, T, H)

    def decode(self, hidden: torch.Tensor, *, role: str, size: int | None = None) -> torch.Tensor:
        """Action logits ``(B, T, vocab_size)``, or only the first ``size`` (the task's number of actions)."""
        if role != ACTION:
            raise ValueError(f"discrete codec predicts actions only, not role {role!r}")
        return self.shared.logits(hidden, size)

    def loss(self, predictions, targets, mask, *, role: str, rewards=None) -> torch.Tensor:
        """Per-step cross-entropy of the action logits."""
        if role != ACTION:
            raise ValueError(f"discrete codec predicts actions only, not role {role!r}")
        field = self.columns[role]
        y = checks.tensor(targets, field=field)
        checks.shape(y, tuple(predictions.shape[:2]), field=field, layout=f"{tuple(predictions.shape[:2])} (B, T)")
        checks.integer(y, field=field)
        m = checks.mask(mask, y.shape)
        y = y.masked_fill(~m, 0)  # padded steps may hold anything; they are zeroed below
        checks.in_range(y, predictions.shape[-1], field=field, what="actions")
        ce = F.cross_entropy(predictions.flatten(0, 1), y.flatten(), reduction="none").view(y.shape)  # (B, T)
        return torch.where(m, ce, torch.zeros_like(ce))

    def action_size(self, field) -> int:
        """The ``n`` logits of the field's choice among ``n`` actions."""
        if field.n is None:
            raise ValueError(f"action field {field.name!r}: the discrete codec needs n (the number of actions)")
        return field.n

    def choose(self, prediction, field, *, deterministic=True, temperature=1.0, generator=None) -> torch.Tensor:
        """``(N,)`` actions from ``(N, n)`` logits: the argmax, or a draw from ``softmax(logits / temperature)``."""
        if deterministic:
            return prediction.argmax(dim=-1)  # (N,)
        probs = torch.softmax(prediction.float() / temperature, dim=-1)
        return torch.multinomial(probs, 1, generator=generator)[:, 0]  # (N,)


def _positive(value, option: str) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ValueError(f"codec_settings['discrete'][{option!r}]: expected a positive int, got {value!r}")


def build(config, shared: SharedParts) -> DiscreteCodec:
    """Codec factory: uses the shared token table and head, owns the reduction layers
    (``codec_settings["discrete"]``: ``reduced_size``, features per integer, default ``H // 50``; ``project_hidden``,
    an optional hidden layer before the token, default none; ``project_dtype``, ``"bfloat16"`` to run the
    projection's products in bf16, default the surrounding precision)."""
    max_value = checks.config_int(config, "discrete", "max_discrete_value")
    return DiscreteCodec(
        shared,
        max_value,
        config.codec_setting("discrete", "reduced_size", None),
        config.codec_setting("discrete", "project_hidden", None),
        config.codec_setting("discrete", "project_dtype", None),
    )
