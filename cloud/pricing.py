"""A small, hand-kept table of SageMaker real-time inference instance types and their prices.

The prices are INDICATIVE: us-east-1 on-demand USD per hour for SageMaker real-time inference
(``ml.*`` hosting), copied by hand on :data:`PRICES_DATE` from the public SageMaker pricing page.
They change, differ by region, and exclude storage, data transfer and savings plans; the deploy
wizard and the "Cloud endpoints" window use them only to show an order of magnitude ("about
$1.41/h", "cost so far ≈ hours × price"). Never use them for billing. Qt-free.
"""

from __future__ import annotations

from dataclasses import dataclass

PRICES_DATE = "2026-12-05"
PRICES_REGION = "us-east-1"
PRICES_NOTE = (
    f"Indicative {PRICES_REGION} on-demand prices for SageMaker real-time inference, written down on "
    f"{PRICES_DATE}; other regions cost more or less, and AWS changes prices. Your AWS bill is the truth."
)


@dataclass(frozen=True, kw_only=True)
class InstanceType:
    name: str  # "ml.g5.xlarge"
    vcpu: int
    memory_gib: float
    gpus: int
    gpu: str  # "NVIDIA A10G" or "" for CPU instances
    gpu_memory_gib: float  # total over all GPUs
    usd_per_hour: float  # us-east-1 on-demand, indicative (see PRICES_DATE)
    note: str = ""

    @property
    def is_gpu(self) -> bool:
        return self.gpus > 0

    def describe(self) -> str:
        gpu = f"{self.gpus} × {self.gpu}, {self.gpu_memory_gib:g} GiB GPU memory" if self.is_gpu else "no GPU"
        return f"{self.name}: {self.vcpu} vCPU, {self.memory_gib:g} GiB, {gpu}, about ${self.usd_per_hour:.2f}/h"


INSTANCE_TYPES: tuple[InstanceType, ...] = (
    InstanceType(
        name="ml.c5.xlarge",
        vcpu=4,
        memory_gib=8,
        gpus=0,
        gpu="",
        gpu_memory_gib=0,
        usd_per_hour=0.204,
        note="CPU only: the classic backend, or very slow SAM 2",
    ),
    InstanceType(
        name="ml.m5.xlarge",
        vcpu=4,
        memory_gib=16,
        gpus=0,
        gpu="",
        gpu_memory_gib=0,
        usd_per_hour=0.23,
        note="CPU only, more memory",
    ),
    InstanceType(
        name="ml.g4dn.xlarge",
        vcpu=4,
        memory_gib=16,
        gpus=1,
        gpu="NVIDIA T4",
        gpu_memory_gib=16,
        usd_per_hour=0.736,
        note="the cheapest GPU; fine for SAM 2 and Lang-SAM",
    ),
    InstanceType(
        name="ml.g5.xlarge",
        vcpu=4,
        memory_gib=16,
        gpus=1,
        gpu="NVIDIA A10G",
        gpu_memory_gib=24,
        usd_per_hour=1.408,
        note="the usual choice: fast, 24 GiB",
    ),
    InstanceType(
        name="ml.g5.2xlarge",
        vcpu=8,
        memory_gib=32,
        gpus=1,
        gpu="NVIDIA A10G",
        gpu_memory_gib=24,
        usd_per_hour=1.515,
        note="more CPU and memory for image decoding",
    ),
    InstanceType(
        name="ml.g6.xlarge",
        vcpu=4,
        memory_gib=16,
        gpus=1,
        gpu="NVIDIA L4",
        gpu_memory_gib=24,
        usd_per_hour=1.0064,
        note="newer, cheaper than g5; check regional availability",
    ),
    InstanceType(
        name="ml.g6.2xlarge", vcpu=8, memory_gib=32, gpus=1, gpu="NVIDIA L4", gpu_memory_gib=24, usd_per_hour=1.222
    ),
    InstanceType(
        name="ml.p3.2xlarge",
        vcpu=8,
        memory_gib=61,
        gpus=1,
        gpu="NVIDIA V100",
        gpu_memory_gib=16,
        usd_per_hour=3.825,
        note="older and expensive; rarely worth it here",
    ),
)

BY_NAME = {t.name: t for t in INSTANCE_TYPES}


def instance_type(name: str) -> InstanceType | None:
    return BY_NAME.get(name)


def hourly_price(name: str | None) -> float | None:
    """Indicative USD/h of one instance, or None when the type is not in the table."""
    found = BY_NAME.get(name or "")
    return found.usd_per_hour if found else None


def cost_so_far(name: str | None, hours: float, *, count: int = 1) -> float | None:
    """Indicative cost of ``count`` instances running ``hours`` (None: type not in the table)."""
    price = hourly_price(name)
    if price is None or hours < 0:
        return None
    return price * hours * max(1, count)


def format_usd(value: float | None) -> str:
    if value is None:
        return "?"
    return f"${value:,.2f}" if value >= 0.01 or value == 0 else "< $0.01"


__all__ = [
    "INSTANCE_TYPES",
    "PRICES_DATE",
    "PRICES_NOTE",
    "InstanceType",
    "cost_so_far",
    "format_usd",
    "hourly_price",
    "instance_type",
]
