"""The trunk's key/value cache: a small protocol of our own, and two implementations.

The trunk (:mod:`jat_core.trunk`) asks a cache for exactly two things, the method names of transformers'
``Cache`` (so a transformers ``DynamicCache`` also fits, e.g. in tests against ``GPTNeoModel``):

- ``update(keys, values, layer_idx) -> (keys, values)``: append ``(B, heads, L, head_dim)`` keys and values of
  layer ``layer_idx`` and return all of that layer's ``(B, heads, past + L, head_dim)``;
- ``get_seq_length(layer_idx=0) -> int``: the slots already cached (``past``).

Owning this protocol keeps the model and the agent off transformers' cache internals (layer mixins, constructor
arguments), which change between minor releases.

- :class:`KVCache`: grows by concatenation; what ``forward(use_cache=True)`` and text generation use.
- :class:`SlotCache`: preallocated ``(N, heads, capacity, head_dim)`` buffers written in place, with
  :meth:`SlotCache.keep_last` to drop leading slots; what the agent uses (a step copies nothing).
"""

from __future__ import annotations

import torch


class KVCache:
    """Keys and values of every trunk layer, grown by concatenation along the slot axis.

    Attributes:
        keys, values: one ``(B, heads, slots, head_dim)`` tensor per layer seen so far.
    """

    def __init__(self) -> None:
        self.keys: list[torch.Tensor] = []
        self.values: list[torch.Tensor] = []

    def update(self, keys: torch.Tensor, values: torch.Tensor, layer_idx: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Append ``(B, heads, L, head_dim)`` keys and values of layer ``layer_idx``; return all of the layer's."""
        if layer_idx == len(self.keys):
            self.keys.append(keys)
            self.values.append(values)
        elif layer_idx < len(self.keys):
            self.keys[layer_idx] = torch.cat((self.keys[layer_idx], keys), dim=-2)
            self.values[layer_idx] = torch.cat((self.values[layer_idx], values), dim=-2)
        else:
            raise ValueError(f"KVCache.update: layer {layer_idx} before layer {len(self.keys)}")
        return self.keys[layer_idx], self.values[layer_idx]

    def get_seq_length(self, layer_idx: int = 0) -> int:
        """Slots cached for layer ``layer_idx`` (0 when it has none)."""
        return self.keys[layer_idx].shape[-2] if layer_idx < len(self.keys) else 0

    def __len__(self) -> int:
        """Layers cached."""
        return len(self.keys)


class SlotCache:
    """Every layer's keys and values in preallocated ``(N, heads, capacity, head_dim)`` buffers.

    ``update`` writes the new slots in place and returns views of the used ones, so a step copies nothing;
    :meth:`keep_last` drops leading slots.

    Args:
        num_layers: trunk layers.
        shape: ``(N, heads, capacity, head_dim)`` of each buffer.
        dtype, device: of the buffers.
    """

    def __init__(self, num_layers: int, shape: tuple[int, int, int, int], dtype: torch.dtype,
                 device: torch.device | str) -> None:
        self.keys = [torch.zeros(shape, dtype=dtype, device=device) for _ in range(num_layers)]
        self.values = [torch.zeros_like(k) for k in self.keys]
        self.lengths = [0] * num_layers

    @property
    def capacity(self) -> int:
        """Slots each buffer holds."""
        return self.keys[0].shape[-2]

    def update(self, keys: torch.Tensor, values: torch.Tensor, layer_idx: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Write ``(N, heads, L, head_dim)`` keys and values after layer ``layer_idx``'s used slots; return the used
        ``(N, heads, length, head_dim)`` views."""
        start = self.lengths[layer_idx]
        end = start + keys.shape[-2]
        if end > self.capacity:
            raise ValueError(f"SlotCache: {end} slots needed, capacity {self.capacity}")
        self.keys[layer_idx][:, :, start:end] = keys
        self.values[layer_idx][:, :, start:end] = values
        self.lengths[layer_idx] = end
        return self.keys[layer_idx][:, :, :end], self.values[layer_idx][:, :, :end]

    def get_seq_length(self, layer_idx: int = 0) -> int:
        """Slots used in layer ``layer_idx``."""
        return self.lengths[layer_idx]

    def keep_last(self, slots: int, copy: bool = True) -> None:
        """Keep only the last ``slots`` used slots of every layer, moved to the front (``copy=False``: the caller
        overwrites them all, only the lengths change)."""
        for i, length in enumerate(self.lengths):
            start = length - slots
            if copy and start > 0 and slots > 0:
                overlap = start < slots  # source and destination share slots: copy through a temporary
                for buffer in (self.keys[i], self.values[i]):
                    source = buffer[:, :, start:length]
                    buffer[:, :, :slots] = source.clone() if overlap else source
            self.lengths[i] = slots

    def write(self, rows: torch.Tensor | slice, start: int, other: KVCache) -> None:
        """Copy every layer of ``other`` (``(n, heads, s, head_dim)`` each) into ``rows`` at slots
        ``start .. start + s``."""
        for layer, (k, v) in enumerate(zip(other.keys, other.values)):
            self.keys[layer][rows, :, start : start + k.shape[-2]] = k
            self.values[layer][rows, :, start : start + v.shape[-2]] = v

    def __len__(self) -> int:
        """Layers."""
        return len(self.keys)
