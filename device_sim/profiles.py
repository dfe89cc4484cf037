"""Device profiles: how many threads a simulated device decodes with and how much model it holds.

A profile sets torch's intra-op thread count, a memory ceiling for the acoustic network (a model
whose parameters do not fit is refused before serving) and whether the network is quantized to
int8 (``torch.ao.quantization.quantize_dynamic`` on its ``Linear`` layers). The figures are a
simulation's choices, not measurements of real boards: a Raspberry Pi 3 has 1 GB of RAM shared
with the OS and audio front end, so its model budget is small and it quantizes by default. CPU
speed is not simulated; the benchmark reports what the host measures.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch is imported where it is used: the CLI lists profiles without it
    from torch import nn


@dataclass(frozen=True)
class DeviceProfile:
    """One simulated board.

    Attributes
    ----------
    name : registry key.
    threads : torch intra-op threads for decoding (``None``: torch's default).
    model_memory_mb : ceiling for the network's parameter and buffer bytes, MiB (``None``: none).
    quantize : apply int8 dynamic quantization to the network's ``Linear`` layers.
    description : one line for ``--help`` and the status message.
    """

    name: str
    threads: int | None
    model_memory_mb: float | None
    quantize: bool
    description: str

    def to_dict(self) -> dict:
        return asdict(self)


PROFILES: dict[str, DeviceProfile] = {
    p.name: p
    for p in (
        DeviceProfile("rpi3", 1, 24.0, True, "Raspberry Pi 3 (1 GB): 1 decoding thread, int8"),
        DeviceProfile("rpi4", 2, 128.0, False, "Raspberry Pi 4 (2-4 GB): 2 decoding threads"),
        DeviceProfile("rpi5", 4, 512.0, False, "Raspberry Pi 5 (4-8 GB): 4 decoding threads"),
        DeviceProfile("host", None, None, False, "this machine, no limits"),
    )
}


class ModelTooLarge(RuntimeError):
    """The network does not fit the profile's memory ceiling."""


def get_profile(name: str, *, quantize: bool | None = None) -> DeviceProfile:
    """Look a profile up by name (unknown names raise ``ValueError``); may override ``quantize``."""
    if name not in PROFILES:
        raise ValueError(f"unknown device profile {name!r}; known: {', '.join(PROFILES)}")
    profile = PROFILES[name]
    return profile if quantize is None else replace(profile, quantize=quantize)


def _nbytes(value) -> int:
    import torch

    if isinstance(value, torch.Tensor):
        return value.numel() * value.element_size()
    if isinstance(value, (tuple, list)):
        return sum(_nbytes(v) for v in value)
    return 0


def model_nbytes(network: nn.Module) -> int:
    """Bytes of a network's state (parameters, buffers, int8 packed weights), not counting code."""
    return sum(_nbytes(v) for v in network.state_dict().values())


def quantize_network(network: nn.Module) -> nn.Module:
    """int8 dynamic quantization of every ``nn.Linear`` (weights int8, activations float)."""
    import torch

    # torch 2.14 flags eager-mode quantization as deprecated; it still works
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*quantize_per_tensor.*", category=UserWarning)
        warnings.filterwarnings(
            "ignore", message="torch.ao.quantization is deprecated", category=DeprecationWarning
        )
        return torch.ao.quantization.quantize_dynamic(
            network.eval(), {torch.nn.Linear}, dtype=torch.qint8
        )


def apply_profile(recognizer, profile: DeviceProfile) -> dict:
    """Fit a loaded recognizer to a profile, in place: threads, quantization, memory check.

    Returns a report ``{profile, model_bytes, model_bytes_float, quantized}``; raises
    :class:`ModelTooLarge` (naming the sizes) when the network does not fit.
    """
    import torch

    if profile.threads is not None:
        torch.set_num_threads(profile.threads)
    float_bytes = model_nbytes(recognizer.network)
    if profile.quantize:
        recognizer.network = quantize_network(recognizer.network)
    nbytes = model_nbytes(recognizer.network)
    if profile.model_memory_mb is not None and nbytes > profile.model_memory_mb * 2**20:
        raise ModelTooLarge(
            f"model {recognizer.model_id} needs {nbytes / 2**20:.1f} MiB"
            f"{' after int8 quantization' if profile.quantize else ''}; profile {profile.name} "
            f"allows {profile.model_memory_mb:g} MiB"
        )
    return {
        "profile": profile.name,
        "model_bytes": nbytes,
        "model_bytes_float": float_bytes,
        "quantized": profile.quantize,
    }
