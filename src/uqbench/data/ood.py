"""Out-of-distribution (OOD) image sets to evaluate OOD detection against an :class:`ImageDataset`.

These functions only supply images; the metrics (``uqbench.metrics``) treat in-distribution as
the positive class. An :class:`OODSet` is uint8 ``(N, C, H, W)`` images shaped like the
in-distribution set, on its device, with a name that is safe in file names and metric keys
(lower case, no ``/``) and a one-line description saying where the images came from and what
was done to them.

- :func:`hold_out_classes`: train without some classes; their test images are the OOD set
  ``holdout``.
- :func:`noise_images`: ``uniform_noise`` (every pixel uniform on 0..255) or
  ``gaussian_noise`` (per channel, normal with the training images' mean and std, clipped
  and rounded), seeded.
- :func:`ood_from_images`: the test images of another image set (a name or a path), converted
  to the in-distribution channels and size.
- :func:`resolve_ood`: what the baselines' ``--ood`` flag names, including ``pairs``: the
  conventional pairs of :data:`OOD_PAIRS` whose files are present.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from uqbench.data import images as image_sets
from uqbench.data.image_formats import IMAGE_SETS, MissingImages
from uqbench.data.images import ImageDataset, channel_stats
from uqbench.data.paths import DataError, resolve_data_dir

OOD_PAIRS: dict[str, tuple[str, ...]] = {
    "cifar10": ("svhn", "cifar100"),
    "cifar100": ("svhn", "cifar10"),
    "mnist": ("fashion_mnist",),
    "fashion_mnist": ("mnist",),
}
NOISE_SPECS = {"uniform_noise": "uniform", "gaussian_noise": "gaussian"}
SPECS_HELP = (
    "uniform_noise, gaussian_noise, pairs, an image set name (cifar10, cifar100, digits, "
    "fashion_mnist, mnist, svhn) or a path to an image-folder tree"
)
_RESIZE_CHUNK = 2048  # images resized at a time, to bound the float32 copy


@dataclass(frozen=True, eq=False, repr=False)
class OODSet:
    """Out-of-distribution images: ``images`` uint8 ``(N, C, H, W)``, a file-name-safe ``name``
    (used in ``predictions/<name>.npz`` and ``ood/<name>/...`` metric keys) and a one-line
    ``description`` of where they came from."""

    name: str
    images: torch.Tensor
    description: str

    def __len__(self) -> int:
        """How many images."""
        return int(self.images.shape[0])

    def to(self, device: torch.device | str) -> OODSet:
        """The same images on ``device``."""
        return dataclasses.replace(self, images=self.images.to(device))

    def __repr__(self) -> str:
        shape = "x".join(str(s) for s in self.images.shape[1:])
        return f"OODSet(name={self.name!r}, images={len(self)}x{shape}, {self.description!r})"


def set_name(text: str) -> str:
    """``text`` as an OOD set name: lower case, runs of characters other than letters, digits,
    ``_``, ``.`` and ``-`` replaced by ``_``."""
    return re.sub(r"[^a-z0-9_.-]+", "_", text.lower()).strip("_") or "images"


# --- held-out classes ---------------------------------------------------------------------------


def _class_indices(dataset: ImageDataset, classes: int | str | Sequence[int | str]) -> list[int]:
    """Sorted class indices for names or indices (a string that is not a class name but a
    whole number is an index, as list flags give them)."""
    items = [classes] if isinstance(classes, int | str) else list(classes)
    if not items:
        raise DataError("hold_out_classes needs at least one class (an index or a name)")
    known = ", ".join(dataset.class_names)
    chosen = set()
    for item in items:
        if isinstance(item, str) and item in dataset.class_names:
            chosen.add(dataset.class_names.index(item))
            continue
        index = item
        if isinstance(item, str) and item.strip().lstrip("-").isdigit():
            index = int(item.strip())
        if isinstance(index, bool) or not isinstance(index, int):
            raise DataError(
                f"unknown class {item!r} for {dataset.name}; give class indices "
                f"0..{dataset.num_classes - 1} or names: {known}"
            )
        if not 0 <= index < dataset.num_classes:
            raise DataError(
                f"class index {index} is out of range for {dataset.name}, which has "
                f"{dataset.num_classes} classes (0..{dataset.num_classes - 1}: {known})"
            )
        chosen.add(index)
    if len(chosen) > dataset.num_classes - 2:
        left = dataset.num_classes - len(chosen)
        raise DataError(
            f"holding out {len(chosen)} of the {dataset.num_classes} classes of {dataset.name} "
            f"leaves {left} to train on; a classifier needs at least two: hold out fewer classes"
        )
    return sorted(chosen)


def hold_out_classes(
    dataset: ImageDataset, classes: int | str | Sequence[int | str]
) -> tuple[ImageDataset, OODSet]:
    """The dataset without ``classes`` (indices or names; a whole-number string is an index
    unless it is a class name), and the test images of those classes as the OOD set
    ``holdout``.

    The remaining classes keep their order and are renumbered 0..K'-1 (``class_names``
    follows); the training, validation and test parts are all filtered, and mean/std are
    recomputed from the remaining training images. ``name``, ``source`` and ``data_hash`` stay
    those of the files read (the run's flags record which classes were held out)."""
    held = _class_indices(dataset, classes)
    keep = [i for i in range(dataset.num_classes) if i not in held]
    device = dataset.device
    relabel = torch.full((dataset.num_classes,), -1, dtype=torch.int64, device=device)
    relabel[torch.tensor(keep, device=device)] = torch.arange(len(keep), device=device)
    held_tensor = torch.tensor(held, dtype=torch.int64, device=device)
    parts = {}
    for part in ("train", "val", "test"):
        x, y = getattr(dataset, f"x_{part}"), getattr(dataset, f"y_{part}")
        mask = ~torch.isin(y, held_tensor)
        parts[f"x_{part}"] = x[mask].contiguous()
        parts[f"y_{part}"] = relabel[y[mask]]
    ood = dataset.x_test[torch.isin(dataset.y_test, held_tensor)].contiguous()
    held_names = ", ".join(dataset.class_names[i] for i in held)
    if len(ood) == 0:
        raise DataError(
            f"{dataset.name} has no test images of the held-out class(es) {held_names}, so "
            "there is nothing to detect; hold out classes that have test images"
        )
    mean, std = channel_stats(parts["x_train"])
    remaining = dataclasses.replace(
        dataset,
        **parts,
        class_names=tuple(dataset.class_names[i] for i in keep),
        mean=mean,
        std=std,
    )
    description = (
        f"test images of the held-out class(es) {held_names} of {dataset.name} ({len(ood):,}), "
        f"left out of training"
    )
    return remaining, OODSet("holdout", ood, description)


# --- noise --------------------------------------------------------------------------------------


def noise_images(
    dataset: ImageDataset,
    kind: str = "uniform",
    *,
    num_images: int | None = None,
    seed: int = 0,
) -> OODSet:
    """``num_images`` (default: as many as the test part) noise images shaped like the
    dataset's, drawn on the CPU from ``torch.Generator().manual_seed(seed)`` (so they are the
    same on every device) and placed on the dataset's device.

    ``uniform``: every pixel uniform on 0..255 (``uniform_noise``). ``gaussian``: each pixel of
    channel c is ``round(clip(255 * (mean_c + std_c * z), 0, 255))`` with ``z`` standard normal
    and mean/std those of the training images (``gaussian_noise``): noise with the first two
    moments of the data."""
    if kind not in ("uniform", "gaussian"):
        raise DataError(f"noise kind must be 'uniform' or 'gaussian', got {kind!r}")
    count = len(dataset.x_test) if num_images is None else num_images
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise DataError(f"num_images must be a positive integer, got {num_images!r}")
    shape = (count, *dataset.image_shape)
    generator = torch.Generator().manual_seed(int(seed))
    if kind == "uniform":
        images = torch.randint(0, 256, shape, generator=generator, dtype=torch.uint8)
        description = "uniform noise: every pixel uniform on 0..255"
    else:
        mean = torch.tensor(dataset.mean, dtype=torch.float32).view(1, -1, 1, 1)
        std = torch.tensor(dataset.std, dtype=torch.float32).view(1, -1, 1, 1)
        z = torch.randn(shape, generator=generator)
        images = (255.0 * (mean + std * z)).clamp(0, 255).round().to(torch.uint8)
        description = (
            "Gaussian noise: per channel, normal with the training images' mean and std, "
            "clipped to 0..255 and rounded"
        )
    c, h, w = dataset.image_shape
    description += f" ({count:,} images of {c}x{h}x{w}, seed {seed})"
    return OODSet(f"{kind}_noise", images.to(dataset.device), description)


# --- other image sets ---------------------------------------------------------------------------


def convert_images(
    images: torch.Tensor, channels: int, size: tuple[int, int]
) -> tuple[torch.Tensor, list[str]]:
    """uint8 ``(N, C, H, W)`` images with ``channels`` channels and ``size`` = (H, W), and the
    steps taken (for a description). Greyscale -> RGB repeats the channel; RGB -> greyscale is
    ITU-R 601-2 luma in Pillow's integer form, ``(19595 R + 38470 G + 7471 B + 32768) >> 16``
    (what ``Image.convert("L")`` gives); a size change is bilinear with antialiasing
    (``torch.nn.functional.interpolate``), rounded back to uint8."""
    if images.dtype != torch.uint8 or images.dim() != 4:
        raise DataError(f"images must be uint8 (N, C, H, W), got {images.dtype} {images.shape}")
    steps = []
    have = images.shape[1]
    if have != channels:
        if (have, channels) == (1, 3):
            images = images.expand(-1, 3, -1, -1).contiguous()
            steps.append("greyscale -> RGB (channel repeated)")
        elif (have, channels) == (3, 1):
            weights = torch.tensor([19595, 38470, 7471], dtype=torch.int32, device=images.device)
            luma = (images.to(torch.int32) * weights.view(1, 3, 1, 1)).sum(1, keepdim=True)
            images = ((luma + 32768) >> 16).to(torch.uint8)
            steps.append("RGB -> greyscale (ITU-R 601-2 luma, as Pillow's convert('L'))")
        else:
            raise DataError(f"cannot convert {have}-channel images to {channels} channels")
    height, width = images.shape[2:]
    if (height, width) != tuple(size):
        resized = [
            F.interpolate(
                chunk.float(),
                size=tuple(size),
                mode="bilinear",
                align_corners=False,
                antialias=True,
            )
            .round()
            .clamp(0, 255)
            .to(torch.uint8)
            for chunk in images.split(_RESIZE_CHUNK)
        ]
        images = torch.cat(resized)
        steps.append(f"resized {height}x{width} -> {size[0]}x{size[1]} (bilinear, antialiased)")
    return images.contiguous(), steps


def ood_from_images(
    source: ImageDataset | str | os.PathLike,
    dataset: ImageDataset,
    *,
    data_dir: str | os.PathLike | None = None,
    download: bool = False,
) -> OODSet:
    """The test images of ``source`` (an :class:`ImageDataset`, a registered image set name or
    a path to an image-folder tree) as an OOD set for ``dataset``: converted to its channels
    and resized to its size (:func:`convert_images`), on its device. Only the test part of a
    registered set is read. Missing files raise the loader's error (a ``DataError`` saying how
    to get them)."""
    if isinstance(source, ImageDataset):
        name, images = source.name, source.x_test.cpu()
    else:
        name, _, raw = image_sets.read_raw(
            source, data_dir=data_dir, download=download, parts=("test",)
        )
        images = torch.from_numpy(raw.x_test)
    if name == dataset.name:
        raise DataError(f"{name} is the in-distribution set itself; choose a different OOD set")
    channels, height, width = dataset.image_shape
    images, steps = convert_images(images, channels, (height, width))
    description = f"{name} test images ({len(images):,}) as OOD for {dataset.name}"
    description += f": {'; '.join(steps)}" if steps else ", used as they are"
    return OODSet(set_name(name), images.to(dataset.device), description)


def _missing_pair(partner: str, data_dir: str | os.PathLike | None) -> str:
    return (
        f"{partner}: files not found in {resolve_data_dir(data_dir)} (needs "
        f"{IMAGE_SETS[partner].layout}; --download fetches them)"
    )


def resolve_ood(
    specs: Sequence[str],
    dataset: ImageDataset,
    data_dir: str | os.PathLike | None = None,
    *,
    seed: int = 0,
    download: bool = False,
) -> tuple[list[OODSet], list[str]]:
    """The OOD sets named by ``specs`` (the ``--ood`` flag) for ``dataset``, and one line for
    each requested set that was skipped, saying why.

    A spec is ``uniform_noise`` or ``gaussian_noise`` (:func:`noise_images`, seeded by ``seed``;
    the spec is the set's name, so ``--ood=uniform_noise`` writes ``ood/uniform_noise/...``), ``pairs`` (the sets :data:`OOD_PAIRS` pairs with ``dataset.name`` whose files
    are present; absent ones are skipped, not an error), a registered image set name or a path
    to an image-folder tree (:func:`ood_from_images`; missing files are an error); anything else
    is a ``DataError`` listing the valid specs. A set named twice is evaluated once."""
    if isinstance(specs, str):
        specs = [specs]
    sets: list[OODSet] = []
    skipped: list[str] = []

    def add(ood: OODSet) -> None:
        if all(s.name != ood.name for s in sets):
            sets.append(ood)

    for spec in specs:
        if not isinstance(spec, str) or not spec.strip():
            raise DataError(f"an OOD spec must be a non-empty string ({SPECS_HELP}), got {spec!r}")
        key = spec.strip()
        if key.lower() in NOISE_SPECS:
            add(noise_images(dataset, NOISE_SPECS[key.lower()], seed=seed))
        elif key.lower() == "pairs":
            partners = OOD_PAIRS.get(dataset.name.lower(), ())
            if not partners:
                skipped.append(
                    f"pairs: no named OOD pairs for {dataset.name} (there are pairs for "
                    f"{', '.join(OOD_PAIRS)})"
                )
            for partner in partners:
                try:
                    add(ood_from_images(partner, dataset, data_dir=data_dir, download=download))
                except MissingImages:
                    skipped.append(_missing_pair(partner, data_dir))
        else:
            _check_known(key)
            add(ood_from_images(key, dataset, data_dir=data_dir, download=download))
    return sets, skipped


def _check_known(spec: str) -> None:
    """A ``DataError`` listing the valid OOD specs when ``spec`` is neither a registered image
    set nor something that looks like a path."""
    try:
        image_sets.resolve(spec)
    except DataError as err:
        if image_sets.looks_like_path(spec):
            raise
        words = [*NOISE_SPECS, "pairs", *IMAGE_SETS]
        close = [w for w in words if spec.lower() in w][:2] or difflib.get_close_matches(
            spec.lower(), words, n=2, cutoff=0.5
        )
        hint = f" Did you mean {' or '.join(close)}?" if close else ""
        raise DataError(f"unknown OOD set {spec!r}.{hint} Valid: {SPECS_HELP}") from err
