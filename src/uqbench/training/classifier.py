"""Training and prediction for image classifiers with the data kept on the device.

A :class:`Recipe` says how to train (optimiser, schedule, augmentation, epochs) and a
:class:`Runtime` where and how fast (device, bf16 autocast, channels-last, ``torch.compile``).
:func:`fit` trains one network, or every member of a
:class:`~uqbench.training.ensembles.VectorizedEnsemble` at once (each member with its own
shuffle and augmentation); :func:`predict_logits` returns float32 logits whatever the training
precision, so metrics are never computed from bf16 (DESIGN.md).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any, Protocol

import torch
import torch.nn.functional as F
from torch import nn

from uqbench.data import augment
from uqbench.training.divergence import DivergenceGuard
from uqbench.training.ensembles import VectorizedEnsemble
from uqbench.training.progress import Progress
from uqbench.training.resume import FitCheckpoint, ResumeError, rng_state, set_rng_state
from uqbench.training.schedules import SCHEDULES, lr_factor

PRECISIONS = ("fp32", "bf16")
OPTIMIZERS = ("sgd", "adamw")


@dataclass(frozen=True)
class Recipe:
    """How to train: SGD (Nesterov) with a learning-rate schedule, weight decay, label smoothing
    and random-crop/flip augmentation. ``learning_rate`` is the base (peak) rate at this
    ``batch_size``; ``milestones`` are fractions of training (``step`` schedule).
    ``optimizer="adamw"`` uses AdamW instead (decoupled weight decay; ``momentum`` is its beta1),
    as the text baselines do."""

    epochs: int
    batch_size: int
    learning_rate: float
    schedule: str = "step"
    milestones: tuple[float, ...] = (0.3, 0.6, 0.8)
    decay_factor: float = 0.2
    warmup_epochs: float = 0.0
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-4
    label_smoothing: float = 0.0
    crop_padding: int = 4
    flip: bool = True
    test_flips: bool = False
    optimizer: str = "sgd"

    def check(self) -> Recipe:
        """This recipe, or a ``ValueError`` naming the setting that cannot work."""
        problems = []
        if self.epochs < 1:
            problems.append(f"--epochs must be at least 1, got {self.epochs}")
        if self.batch_size < 1:
            problems.append(f"--batch_size must be at least 1, got {self.batch_size}")
        if not self.learning_rate > 0:
            problems.append(f"--learning_rate must be positive, got {self.learning_rate}")
        if self.schedule not in SCHEDULES:
            problems.append(f"--schedule must be one of {', '.join(SCHEDULES)}")
        if self.weight_decay < 0:
            problems.append(f"--weight_decay must be >= 0, got {self.weight_decay}")
        if not 0 <= self.label_smoothing < 1:
            problems.append(f"--label_smoothing must be in [0, 1), got {self.label_smoothing}")
        if not 0 <= self.warmup_epochs <= self.epochs:
            problems.append(
                f"--warmup_epochs must be in [0, epochs={self.epochs}], got {self.warmup_epochs}"
            )
        if self.crop_padding < 0:
            problems.append(f"--crop_padding must be >= 0, got {self.crop_padding}")
        if not 0 <= self.momentum < 1:
            problems.append(f"momentum must be in [0, 1), got {self.momentum}")
        if self.optimizer not in OPTIMIZERS:
            problems.append(f"optimizer must be one of {', '.join(OPTIMIZERS)}")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def with_overrides(self, **values: object) -> Recipe:
        """A copy with the given fields replaced (``None`` values are ignored)."""
        return replace(self, **{k: v for k, v in values.items() if v is not None})

    def as_dict(self) -> dict:
        """The fields as a dict; ``optimizer`` only when it is not SGD, so the records of image
        runs (and their saved training states) read as before it existed."""
        values = asdict(self)
        if values["optimizer"] == "sgd":
            del values["optimizer"]
        return values


@dataclass(frozen=True)
class Runtime:
    """Where and how: device, ``fp32`` or ``bf16`` autocast (CUDA), channels-last memory
    layout, and whether to ``torch.compile`` the network."""

    device: torch.device
    precision: str = "fp32"
    channels_last: bool = False
    compile: bool = False

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise ValueError(f"--precision must be one of {', '.join(PRECISIONS)}")

    @classmethod
    def for_device(
        cls,
        device: torch.device,
        precision: str = "auto",
        channels_last: bool | None = None,
        compile: bool = False,
    ) -> Runtime:
        """Sensible settings for ``device``: on CUDA bf16 autocast and channels-last, on CPU fp32
        and the default layout (``auto``/``None`` choose; explicit values win)."""
        cuda = device.type == "cuda"
        if precision == "auto":
            precision = "bf16" if cuda else "fp32"
        return cls(
            device=device,
            precision=precision,
            channels_last=cuda if channels_last is None else channels_last,
            compile=compile,
        )

    def autocast(self) -> contextlib.AbstractContextManager:
        """bf16 autocast when asked for, else nothing."""
        if self.precision == "bf16":
            return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def layout(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` in channels-last layout when asked for (4-D batches; 5-D member batches keep the
        layout of each member's slice)."""
        if self.channels_last and x.dim() == 4:
            return x.contiguous(memory_format=torch.channels_last)
        return x


def training_batches(
    images: torch.Tensor,
    labels: torch.Tensor,
    batch_size: int,
    generator: torch.Generator,
    members: int | None = None,
    with_index: bool = False,
) -> Iterator[tuple[torch.Tensor, ...]]:
    """One epoch of shuffled full minibatches of uint8 images (the last partial batch is dropped,
    which keeps shapes static for ``torch.compile``).

    With ``members=M`` every member gets its own permutation: ``(M, B, C, H, W)`` and ``(M, B)``.
    ``with_index`` adds the examples' indices in ``images`` as a third value.
    """
    n = labels.shape[0]
    batch_size = min(batch_size, n)
    count = 1 if members is None else members
    keys = torch.rand(count, n, generator=generator, device=generator.device)
    order = torch.argsort(keys, dim=1).to(images.device)
    for start in range(0, n - batch_size + 1, batch_size):
        index = order[:, start : start + batch_size]
        x, y = images[index], labels[index]
        batch = (x[0], y[0], index[0]) if members is None else (x, y, index)
        yield batch if with_index else batch[:2]


class Batching(Protocol):
    """Another way to draw training batches (e.g. ``uqbench.layers.mimo.MIMOBatches``): each
    step's new examples, augmented once, then arranged into one row of images per member."""

    num_members: int

    def steps_per_epoch(self, n: int, batch_size: int) -> int: ...

    def indices(
        self, n: int, batch_size: int, generator: torch.Generator
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]: ...


def prepare_batch(
    images: torch.Tensor,
    mean: tuple[float, ...],
    std: tuple[float, ...],
    runtime: Runtime,
    recipe: Recipe | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """uint8 images -> normalised float32 network input; with a ``recipe``, random crop (its
    padding) and horizontal flip first. Member batches ``(M, B, ...)`` are augmented per image."""
    flat = images.reshape(-1, *images.shape[-3:])
    if recipe is not None and recipe.crop_padding > 0 and recipe.flip:
        flat = augment.crop_and_flip(flat, recipe.crop_padding, generator=generator)
    elif recipe is not None and recipe.crop_padding > 0:
        flat = augment.random_crop(flat, recipe.crop_padding, generator=generator)
    elif recipe is not None and recipe.flip:
        flat = augment.random_flip(flat, generator=generator)
    x = augment.normalize(flat, mean, std)
    if images.dim() == 5:
        return x.reshape(images.shape)
    return runtime.layout(x)


def per_member_loss(logits: torch.Tensor, labels: torch.Tensor, smoothing: float) -> torch.Tensor:
    """Mean cross-entropy (float32) of each member: ``(M, B, K)``, ``(M, B)`` -> ``(M,)``; a
    single network's ``(B, K)``, ``(B,)`` -> a scalar."""
    flat = F.cross_entropy(
        logits.float().reshape(-1, logits.shape[-1]),
        labels.reshape(-1),
        label_smoothing=smoothing,
        reduction="none",
    )
    return flat.reshape(labels.shape).mean(dim=-1)


def fit(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    mean: tuple[float, ...],
    std: tuple[float, ...],
    recipe: Recipe,
    runtime: Runtime,
    *,
    seed: int = 0,
    description: str = "training",
    quiet: bool = False,
    log_interval: float = 10.0,
    on_epoch_end: Callable[[dict], None] | None = None,
    batching: Batching | None = None,
    param_groups: Sequence[Mapping[str, Any]] | None = None,
    extra_loss: Callable[[int], torch.Tensor] | None = None,
    batch_loss: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    state: FitCheckpoint | None = None,
    prepare: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> list[dict]:
    """Train ``model`` (one network or a :class:`VectorizedEnsemble`) on uint8 ``images`` and
    ``labels`` already on ``runtime.device``; returns one history record per epoch.

    SGD with (Nesterov) momentum and weight decay as PyTorch's SGD applies it (``wd * w`` added
    to the gradient), the recipe's schedule stepped every optimiser step, label smoothing, and
    augmentation on the device.
    The loss is checked once per epoch (one device synchronisation) against the shared
    divergence rule (``uqbench.training.divergence``): a NaN, infinite or exploding loss raises
    :class:`~uqbench.training.divergence.DivergedError` naming the member and the epoch.
    Progress (stderr, unless ``quiet``) counts optimiser steps over all epochs, a line at most
    every ``log_interval`` seconds in logs, and shows the last finished epoch's mean loss.
    A ``batching`` (e.g. MIMO's) replaces the shuffled minibatches: its member batches
    ``(M, B, C, H, W)`` go to ``model``, whose loss is the sum of the members' mean losses.

    A single module may return ``(E, B, K)`` logits for ``(B, ...)`` inputs (E members that all
    see the batch, e.g. BatchEnsemble): the loss is then the mean over members.
    ``param_groups`` (see :func:`make_optimizer`) give parts of the model their own weight decay
    and learning-rate multiplier; ``extra_loss(step)`` (0-based optimiser step) is added to the
    loss, e.g. a KL term: ``train/loss`` and the divergence check stay the cross-entropy, the
    term's epoch mean is ``train/extra_loss``. ``batch_loss(x, logits, index)`` (one network,
    default batches only) is added the same way, from the batch's network input, its logits and
    the indices of its examples in ``images`` (e.g. a distillation term).
    With a ``state`` (:class:`~uqbench.training.resume.FitCheckpoint`), everything training
    depends on is saved after every epoch and restored first if saved before, so a killed run
    continues where it stopped and ends exactly as an uninterrupted one.
    ``prepare(rows)`` replaces the image preparation (augmentation, normalisation): it maps a
    batch of rows of ``images`` (any shape, e.g. padded token ids) to the network's input.
    """
    recipe.check()
    members = model.num_members if isinstance(model, VectorizedEnsemble) else None
    if batching is not None:
        members = batching.num_members
    if batch_loss is not None and members is not None:
        raise ValueError("batch_loss needs one network trained on the default batches")
    if prepare is not None and batching is not None:
        raise ValueError("prepare works with the default batches only, not with a batching")
    if images.shape[0] != labels.shape[0] or (prepare is None and images.dim() != 4):
        raise ValueError(
            f"expected images (N, C, H, W) and labels (N,), got {tuple(images.shape)} and "
            f"{tuple(labels.shape)}"
        )
    if batching is None:
        steps_per_epoch = max(1, labels.shape[0] // min(recipe.batch_size, labels.shape[0]))
    else:
        steps_per_epoch = batching.steps_per_epoch(labels.shape[0], recipe.batch_size)
    total = recipe.epochs * steps_per_epoch
    optimizer = make_optimizer(model, recipe, param_groups)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lr_factor(
            recipe.schedule,
            total,
            warmup_steps=round(recipe.warmup_epochs * steps_per_epoch),
            milestones=[round(m * total) for m in recipe.milestones],
            decay_factor=recipe.decay_factor,
        ),
    )
    if runtime.channels_last:
        model.to(memory_format=torch.channels_last)
    network = torch.compile(model) if runtime.compile else model
    generator = torch.Generator(device=runtime.device).manual_seed(seed)
    progress = Progress(total, description, quiet=quiet, log_interval=log_interval, unit="steps")
    guard = DivergenceGuard(
        [f"member {i}" for i in range(members)] if members else None,
        "lower --learning_rate, add warm-up (--warmup_epochs), or use --precision=fp32",
    )
    history: list[dict] = []
    last_loss = ""
    first_epoch = 1
    saved = state.load() if state is not None else None
    if saved is not None:
        first_epoch = _restore(saved, model, optimizer, scheduler, generator, guard, runtime) + 1
        history = list(saved["history"])
        progress.update(
            (first_epoch - 1) * steps_per_epoch, f"resumed after epoch {first_epoch - 1}"
        )
    model.train()
    for epoch in range(first_epoch, recipe.epochs + 1):
        start = time.perf_counter()
        total_loss = torch.zeros(members or 1, device=runtime.device)
        total_extra = torch.zeros((), device=runtime.device)
        batches = _epoch_batches(
            images, labels, mean, std, runtime, recipe, generator, members, batching, prepare
        )
        for step, (x, yb, index) in enumerate(batches, start=1):
            with runtime.autocast():
                logits = network(x)
            if members is None and logits.dim() == yb.dim() + 2:
                yb = yb.expand(logits.shape[0], *yb.shape)
                losses = per_member_loss(logits, yb, recipe.label_smoothing).mean()
            else:
                losses = per_member_loss(logits, yb, recipe.label_smoothing)
            extra = 0.0
            if extra_loss is not None:
                extra = extra_loss((epoch - 1) * steps_per_epoch + step - 1)
            if batch_loss is not None:
                extra = extra + batch_loss(x, logits, index)
            if extra_loss is not None or batch_loss is not None:
                total_extra += extra.detach()
            if guard.initial is None:
                guard.start(losses.detach().reshape(-1).tolist())
            optimizer.zero_grad(set_to_none=True)
            (losses.sum() + extra).backward()
            optimizer.step()
            scheduler.step()
            total_loss += losses.detach().reshape(-1)
            if step < steps_per_epoch:  # the epoch's last step is reported with its loss below
                place = f"epoch {epoch}/{recipe.epochs}, step {step}/{steps_per_epoch}"
                progress.advance(1, place + last_loss)
        epoch_loss = (total_loss / steps_per_epoch).tolist()
        guard.check(epoch, epoch_loss)
        record = {
            "epoch": epoch,
            "train/loss": epoch_loss if members else epoch_loss[0],
            **(
                {"train/extra_loss": float(total_extra) / steps_per_epoch}
                if extra_loss or batch_loss
                else {}
            ),
            "learning_rate": optimizer.param_groups[0]["lr"],
            "seconds": time.perf_counter() - start,
        }
        history.append(record)
        if state is not None:
            state.save(
                {
                    "epoch": epoch,
                    "epochs": recipe.epochs,
                    "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(),
                    "generator": generator.get_state(),
                    "rng": rng_state(runtime.device),
                    "guard": {"initial": guard.initial, "reference": guard.reference},
                    "history": history,
                }
            )
        if on_epoch_end is not None:
            on_epoch_end(record)
        last_loss = f", loss {sum(epoch_loss) / len(epoch_loss):.3f} (epoch {epoch} mean)"
        progress.update(
            epoch * steps_per_epoch,
            f"epoch {epoch}/{recipe.epochs}, step {steps_per_epoch}/{steps_per_epoch}{last_loss}",
        )
    model.eval()
    return history


def _restore(
    saved: Mapping[str, Any],
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    generator: torch.Generator,
    guard: DivergenceGuard,
    runtime: Runtime,
) -> int:
    """Put a saved epoch's state back into the training objects; returns that epoch."""
    try:
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
    except (RuntimeError, ValueError, KeyError) as err:
        raise ResumeError(
            f"the saved training state does not fit this network or optimiser ({err}); pass "
            "--overwrite instead of --resume to start again"
        ) from err
    scheduler.load_state_dict(saved["scheduler"])
    generator.set_state(saved["generator"])
    set_rng_state(saved["rng"], runtime.device)
    guard.initial = saved["guard"]["initial"]
    guard.reference = saved["guard"]["reference"]
    return int(saved["epoch"])


def _epoch_batches(
    images: torch.Tensor,
    labels: torch.Tensor,
    mean: tuple[float, ...],
    std: tuple[float, ...],
    runtime: Runtime,
    recipe: Recipe,
    generator: torch.Generator,
    members: int | None,
    batching: Batching | None,
    prepare: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]]:
    """One epoch of augmented, normalised network inputs (or ``prepare``'s), their labels and
    (default batches) their indices in ``images`` (one batch per member for a vectorised
    ensemble, arranged by ``batching`` if given)."""
    if batching is None:
        batches = training_batches(
            images, labels, recipe.batch_size, generator, members, with_index=True
        )
        for xb, yb, index in batches:
            if prepare is not None:
                yield prepare(xb), yb, index
            else:
                yield prepare_batch(xb, mean, std, runtime, recipe, generator), yb, index
        return
    for new, arrangement in batching.indices(labels.shape[0], recipe.batch_size, generator):
        x = prepare_batch(images[new], mean, std, runtime, recipe, generator)
        yield x[arrangement], labels[new][arrangement], None


def make_optimizer(
    model: nn.Module, recipe: Recipe, param_groups: Sequence[Mapping[str, Any]] | None = None
) -> torch.optim.Optimizer:
    """SGD (or AdamW) as the recipe says. Each of ``param_groups`` is ``{"params", "weight_decay_scale",
    "lr_scale"}``: the recipe's weight decay and learning rate times those scales for those
    parameters (every parameter of ``model`` must be in exactly one group)."""
    if param_groups is None:
        groups: list[dict[str, Any]] = [{"params": list(model.parameters())}]
    else:
        groups = []
        for group in param_groups:
            extra = set(group) - {"params", "weight_decay_scale", "lr_scale", "name"}
            if extra:
                raise ValueError(f"unknown parameter-group keys {sorted(extra)}")
            groups.append(
                {
                    "params": list(group["params"]),
                    "weight_decay": recipe.weight_decay * group.get("weight_decay_scale", 1.0),
                    "lr": recipe.learning_rate * group.get("lr_scale", 1.0),
                }
            )
        grouped = [id(p) for g in groups for p in g["params"]]
        if sorted(grouped) != sorted(id(p) for p in model.parameters()):
            raise ValueError("param_groups must hold every parameter of the model exactly once")
    if recipe.optimizer == "adamw":
        return torch.optim.AdamW(
            groups,
            lr=recipe.learning_rate,
            betas=(recipe.momentum, 0.999),
            weight_decay=recipe.weight_decay,
        )
    return torch.optim.SGD(
        groups,
        lr=recipe.learning_rate,
        momentum=recipe.momentum,
        nesterov=recipe.nesterov and recipe.momentum > 0,
        weight_decay=recipe.weight_decay,
    )


def network_logits(
    model: nn.Module,
    images: torch.Tensor,
    mean: tuple[float, ...],
    std: tuple[float, ...],
    runtime: Runtime,
    flips: bool = False,
) -> torch.Tensor:
    """Float32 logits of a batch of uint8 ``images`` already on the device: ``(B, K)``, or
    ``(M, B, K)`` for a :class:`VectorizedEnsemble`. ``flips=True`` averages the logits of each
    image and its mirror image (test-time augmentation)."""
    x = prepare_batch(images, mean, std, runtime)
    with runtime.autocast():
        logits = model(x).float()
        if flips:
            logits = (logits + model(runtime.layout(x.flip(-1))).float()) / 2
    return logits


@torch.no_grad()
def predict_logits(
    model: nn.Module,
    images: torch.Tensor,
    mean: tuple[float, ...],
    std: tuple[float, ...],
    runtime: Runtime,
    *,
    batch_size: int = 1000,
    flips: bool = False,
) -> torch.Tensor:
    """:func:`network_logits` over any number of uint8 ``images``, in batches, on the CPU.
    Call ``model.eval()`` first; dropout layers sample if the caller enabled Monte-Carlo
    dropout (``uqbench.layers.mc_dropout.mc_dropout``)."""
    outputs = []
    for start in range(0, images.shape[0], batch_size):
        batch = images[start : start + batch_size].to(runtime.device, non_blocking=True)
        outputs.append(network_logits(model, batch, mean, std, runtime, flips).cpu())
    return torch.cat(outputs, dim=-2)
