"""How big an instance a package needs and how long it takes to start, from its backend and weights.

``deploy package`` prints this (and records it in the package manifest) so ``deploy up`` can be
given a suitable ``--instance-type`` and ``--load-seconds``; the timeouts themselves come from
:func:`cloud.timeouts.size_timeouts`, fed with the assumed load and the package's size.

SAM 3 figures (``/work/shared/reference/sam3.md``, ``docs/sam3.md``): 860 M parameters, ~3.4 GB of
fp32 weights; ~4.1 GiB resident after loading and 5.1 GiB at the peak of a detection on a CPU; the
vision encoder takes 38-68 s per image on 2 CPU threads (over SageMaker's 60 s invocation limit),
~30 ms per image on an H200. So a GPU with bf16 (A10G, L4) is recommended, never a CPU instance.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from cloud.timeouts import DEFAULT_LOAD_SECONDS, Timeouts, size_timeouts

# assumed seconds to read the weights into memory and build the model, per GB of weights, on the
# recommended instance (EBS/instance storage at a few hundred MB/s, plus building the modules)
LOAD_SECONDS_PER_GB = 15.0


@dataclass(frozen=True, kw_only=True)
class Sizing:
    """A recommended instance type, why, and the timeouts sized for the package."""

    backend: str
    weights_bytes: int
    instance_type: str
    reason: str
    load_seconds: float
    worst_request_seconds: float
    timeouts: Timeouts

    def summary(self) -> str:
        t = self.timeouts
        return (
            f"{self.backend}: {self.weights_bytes / 1e9:.2f} GB of weights; recommended instance {self.instance_type} "
            f"({self.reason}); assumed load {self.load_seconds:.0f} s -> timeouts: start-up {t.startup} s, "
            f"response {t.response} s, health check {t.health_check} s, download {t.download} s "
            f"(deploy up --instance-type {self.instance_type} --load-seconds {self.load_seconds:.0f})"
        )

    def as_dict(self) -> dict[str, object]:
        t = self.timeouts
        return {
            "instance_type": self.instance_type,
            "reason": self.reason,
            "weights_bytes": self.weights_bytes,
            "load_seconds": round(self.load_seconds),
            "worst_request_seconds": round(self.worst_request_seconds),
            "timeouts": {
                "startup": t.startup,
                "response": t.response,
                "health_check": t.health_check,
                "download": t.download,
            },
        }


def package_sizing(backend: str, *, weights_bytes: int, archive_bytes: int | None = None) -> Sizing:
    """The instance and timeouts a package of ``backend`` with ``weights_bytes`` of weights needs."""
    load = max(DEFAULT_LOAD_SECONDS if backend != "classic" else 30.0, LOAD_SECONDS_PER_GB * weights_bytes / 1e9)
    if backend == "sam3":
        # fp32 weights ~3.4 GB + activations fit a 16 GiB T4, but the T4 has no bf16 (the ViT's fast path)
        instance = "ml.g5.xlarge"
        reason = (
            "SAM 3 needs a GPU: its image encoder takes 38-68 s per image on a CPU; 24 GiB A10G with bf16, "
            "16 GiB RAM for ~5 GiB peak; ml.g6.xlarge (L4) also fits"
        )
        worst = 60.0  # a crowded text prompt plus a fresh image on a GPU stays far below; CPU would not
        load += 60.0  # tokenizer, both model halves, tying the shared ViT and the warm-up encode
    elif backend == "classic":
        instance, reason, worst = "ml.c5.xlarge", "OpenCV only, no GPU needed", 30.0
    else:
        instance, reason, worst = "ml.g5.xlarge", "SAM 2 (and Grounding DINO) on a 24 GiB A10G", 60.0
    timeouts = size_timeouts(
        load_seconds=load,
        worst_request_seconds=worst,
        archive_bytes=archive_bytes if archive_bytes is not None else weights_bytes,
    )
    basis = f"assumed load of {load:.0f} s for {weights_bytes / 1e9:.2f} GB of {backend} weights"
    timeouts = replace(
        timeouts,
        measured=False,
        startup_source=f"sized from the {basis}",
        response_source=f"sized from the {basis} and a worst request of {worst:.0f} s",
    )
    return Sizing(
        backend=backend,
        weights_bytes=weights_bytes,
        instance_type=instance,
        reason=reason,
        load_seconds=load,
        worst_request_seconds=worst,
        timeouts=timeouts,
    )
