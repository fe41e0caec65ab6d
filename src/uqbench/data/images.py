"""Image classification sets as uint8 tensors, decoded once: :func:`load_images` (exported as
``uqbench.data.get_images``) gives an :class:`ImageDataset`.

    from uqbench import data
    d = data.get_images("cifar10", data_dir="~/data", validation_fraction=0.1)
    d = data.get_images("../shared/data/cifar10/cifar10-jpeg75.tar.gz")  # an image-folder tree
    d = d.to("cuda")  # the whole set on the device; augment there (uqbench.data.augment)

Names: ``cifar10``, ``cifar100``, ``mnist``, ``fashion_mnist``, ``svhn`` (files in the published
formats, see ``image_formats``), ``digits`` (scikit-learn's 8x8 digits, built in), or a path to
an image-folder directory or archive (see ``image_folder``). Each has one official train/test
split.

Conventions:

- **Validation carve-out**: ``round(validation_fraction * n_train)`` training images, stratified
  by class (each class gives its share, rounded so the total is exact: largest remainders
  first, ties to the lower class index), drawn by permutations from
  ``numpy.random.default_rng([seed, 0])``. The test part never depends on ``seed``. Images keep
  their source order within each part.
- **mean / std**: per channel, over the pixels of the images actually trained on (training part
  minus the carve-out), of pixel values / 255; std with ``ddof=0``. Computed exactly from
  integer sums (:func:`channel_stats`).
"""

from __future__ import annotations

import dataclasses
import difflib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from uqbench.data import image_folder, image_formats
from uqbench.data.image_formats import ALIASES, IMAGE_SETS, PARTS, MissingImages, RawImages
from uqbench.data.paths import DataError
from uqbench.data.splits import check_fraction, validation_size


@dataclass(frozen=True, eq=False, repr=False)
class ImageDataset:
    """An image classification set with its official train/test split, as tensors.

    ``x_*`` are contiguous uint8 ``(N, C, H, W)`` tensors, ``y_*`` int64 ``(N,)`` labels in
    ``[0, num_classes)`` (``x_val``/``y_val`` have ``N = 0`` when no carve-out was asked for).
    ``name`` is the registry name, or the root folder name for data given by path; ``source``
    is the registry name or the path given. ``data_hash`` is the SHA-256 of the content read
    (see ``image_formats`` and ``image_folder``). ``mean``/``std`` are the per-channel moments
    of the training images (pixel values / 255, see the module docstring), what
    ``augment.normalize`` takes.
    """

    name: str
    source: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    class_names: tuple[str, ...]
    data_hash: str
    mean: tuple[float, ...]
    std: tuple[float, ...]

    @property
    def num_classes(self) -> int:
        """How many classes (``len(class_names)``)."""
        return len(self.class_names)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """``(C, H, W)`` of every image."""
        channels, height, width = self.x_train.shape[1:]
        return int(channels), int(height), int(width)

    @property
    def device(self) -> torch.device:
        """Where the tensors are."""
        return self.x_train.device

    def to(self, device: torch.device | str) -> ImageDataset:
        """The same data with every tensor on ``device`` (this object when already there)."""
        device = torch.device(device)
        if self.x_train.device == device:
            return self
        moved = {
            f"{kind}_{part}": getattr(self, f"{kind}_{part}").to(device)
            for kind in ("x", "y")
            for part in ("train", "val", "test")
        }
        return dataclasses.replace(self, **moved)

    def __repr__(self) -> str:
        c, h, w = self.image_shape
        return (
            f"ImageDataset(name={self.name!r}, train={len(self.x_train)}, val={len(self.x_val)}, "
            f"test={len(self.x_test)}, image_shape={c}x{h}x{w}, classes={self.num_classes}, "
            f"device={self.device}, data_hash={self.data_hash[:12]}…)"
        )


def channel_stats(images: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and standard deviation (``ddof=0``) of uint8 ``(N, C, H, W)`` images, in
    units of pixel value / 255, computed exactly: from each channel's histogram of the 256
    pixel values, the integer sum ``s`` and sum of squares ``q`` over ``n`` pixels give
    ``mean = s / n / 255`` and ``std = sqrt((n q - s^2) / n^2) / 255``."""
    if images.dtype != torch.uint8 or images.dim() != 4:
        raise DataError(
            f"channel_stats needs uint8 (N, C, H, W) images, got {images.dtype} "
            f"{tuple(images.shape)}"
        )
    if images.shape[0] == 0 or images[0].numel() == 0:
        raise DataError("channel_stats needs at least one non-empty image")
    values = torch.arange(256, dtype=torch.int64)
    count = images.shape[0] * images.shape[2] * images.shape[3]
    means, stds = [], []
    for channel in range(images.shape[1]):
        histogram = torch.bincount(images[:, channel].reshape(-1), minlength=256).cpu()
        total = int((histogram * values).sum())
        squares = int((histogram * values * values).sum())
        means.append(total / count / 255.0)
        stds.append(((count * squares - total * total) / count**2) ** 0.5 / 255.0)
    return tuple(means), tuple(stds)


def stratified_validation(
    labels: np.ndarray, fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Sorted ``(train, validation)`` positions of ``labels`` for a carve-out of
    ``fraction`` (see the module docstring); ``fraction`` 0 gives an empty validation part."""
    labels = np.asarray(labels)
    count = validation_size(len(labels), check_fraction(fraction))
    if count == 0:
        return np.arange(len(labels), dtype=np.int64), np.zeros(0, dtype=np.int64)
    classes, sizes = np.unique(labels, return_counts=True)
    exact = sizes * count / len(labels)
    take = np.floor(exact).astype(np.int64)
    extra = count - int(take.sum())
    order = sorted(range(len(classes)), key=lambda i: (-(exact[i] - take[i]), i))
    take[order[:extra]] += 1
    emptied = [str(c) for c, t, n in zip(classes, take, sizes, strict=True) if t >= n]
    if emptied:
        raise DataError(
            f"validation_fraction={fraction} would move every training image of class(es) "
            f"{', '.join(emptied)} into the validation part; use a smaller fraction"
        )
    rng = np.random.default_rng([seed, 0])
    chosen = [
        rng.permutation(np.flatnonzero(labels == c))[:t] for c, t in zip(classes, take, strict=True)
    ]
    val = np.sort(np.concatenate(chosen)).astype(np.int64)
    train = np.setdiff1d(np.arange(len(labels), dtype=np.int64), val, assume_unique=True)
    return train, val


def check_classes(source: str, raw: RawImages, every_class: bool = True) -> None:
    """Refuse a set that cannot support classification: fewer than two classes, or (with
    ``every_class``, for sets whose classes come from folders) a class with no training or no
    test images; its accuracy, NLL and OOD scores would mean nothing."""
    names = list(raw.class_names)
    if len(names) < 2:
        raise DataError(
            f"{source}: an image classification set needs at least two classes, found "
            f"{len(names)} ({', '.join(names) or 'none'}); add the other class folders "
            "(train/<class>/ and test/<class>/)"
        )
    for part, labels in (("training", raw.y_train), ("test", raw.y_test)):
        if labels is None or not every_class:
            continue
        counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=len(names))
        empty = [names[i] for i in np.flatnonzero(counts == 0)]
        if empty:
            raise DataError(
                f"{source}: class(es) {', '.join(empty)} have no {part} images (classes found: "
                f"{', '.join(names)}); every class needs training and test images"
            )


def from_arrays(
    name: str,
    source: str,
    raw: RawImages,
    validation_fraction: float = 0.0,
    seed: int = 0,
) -> ImageDataset:
    """An :class:`ImageDataset` from decoded arrays: carve the validation part off the training
    part and compute mean/std on what remains."""
    if raw.x_train is None or raw.y_train is None:
        raise DataError(f"{name}: no training images were read")
    check_classes(source, raw, every_class=False)
    train, val = stratified_validation(raw.y_train, validation_fraction, seed)

    def tensor(array: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(array))

    carved = len(val) > 0  # without a carve-out, the arrays are used as they are (no copy)
    x_train = tensor(raw.x_train[train] if carved else raw.x_train)
    mean, std = channel_stats(x_train)
    return ImageDataset(
        name=name,
        source=source,
        x_train=x_train,
        y_train=tensor(raw.y_train[train] if carved else raw.y_train),
        x_val=tensor(raw.x_train[val]),
        y_val=tensor(raw.y_train[val]),
        x_test=tensor(raw.x_test),
        y_test=tensor(raw.y_test),
        class_names=raw.class_names,
        data_hash=raw.data_hash,
        mean=mean,
        std=std,
    )


def names() -> list[str]:
    """The registered image set names (``digits`` included), sorted."""
    return sorted(IMAGE_SETS)


def looks_like_path(text: str) -> bool:
    """Whether ``text`` names a file system path (has a separator, or exists)."""
    separators = {os.sep, "/"} | ({os.altsep} if os.altsep else set())
    return any(s in text for s in separators) or Path(text).expanduser().exists()


def resolve(name_or_path: str | os.PathLike) -> tuple[str, Path | None]:
    """``(registered name, None)`` or ``(path text, path)`` for an image-folder tree; a
    DataError with close matches for anything else."""
    if not isinstance(name_or_path, str | os.PathLike):
        raise DataError(f"an image set is a name or a path, got {name_or_path!r}")
    text = os.fspath(name_or_path)
    key = ALIASES.get(text.lower(), text.lower())
    if key in IMAGE_SETS:
        return key, None
    if text and looks_like_path(text):
        path = Path(text).expanduser()
        if image_folder.is_image_folder(path):
            return text, path
        if not path.exists():
            raise DataError(
                f"{path} does not exist; give an image set name ({', '.join(names())}) "
                f"or an image-folder directory or archive"
            )
        what = "folder" if path.is_dir() else "file"
        raise DataError(
            f"{path} is a {what} but not an image-folder tree: give a directory or an archive "
            f"({', '.join(image_folder.ARCHIVE_SUFFIXES)}) laid out {image_folder.LAYOUT}"
        )
    from uqbench.data import registry

    if key in registry.REGISTRY:
        raise DataError(
            f"{text!r} is a {registry.REGISTRY[key].kind} data set, not an image set; load it "
            f"with uqbench.data.get. Image sets: {', '.join(names())}, or a path to an "
            "image-folder tree"
        )
    candidates = [*IMAGE_SETS, *ALIASES]
    close = difflib.get_close_matches(text.lower(), candidates, n=3)
    hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    raise DataError(
        f"unknown image set {text!r}.{hint} Known: {', '.join(names())}; a path to an "
        f"image-folder directory or archive ({image_folder.LAYOUT}) works too. "
        "`uqbench list datasets` describes them."
    )


def read_raw(
    name_or_path: str | os.PathLike,
    *,
    data_dir: str | os.PathLike | None = None,
    download: bool = False,
    parts: tuple[str, ...] = PARTS,
    cache_dir: str | os.PathLike | None = None,
    use_cache: bool = True,
) -> tuple[str, str, RawImages]:
    """``(name, source, arrays)`` of an image set before any carve-out; ``parts`` = ("test",)
    reads only the test part of a registered set (what an OOD set needs)."""
    key, path = resolve(name_or_path)
    if path is not None:
        name, raw = image_folder.read_image_folder(path, cache_dir=cache_dir, use_cache=use_cache)
        if "train" in parts:  # a training set: its classes come from its folders
            check_classes(os.fspath(name_or_path), raw)
        return name, os.fspath(name_or_path), raw
    try:
        return key, key, image_formats.read_set(key, data_dir, parts)
    except MissingImages:
        if not download:
            raise
    image_formats.download_set(key, data_dir)
    return key, key, image_formats.read_set(key, data_dir, parts)


def load_images(
    name_or_path: str | os.PathLike,
    *,
    data_dir: str | os.PathLike | None = None,
    validation_fraction: float = 0.0,
    seed: int = 0,
    download: bool = False,
    cache_dir: str | os.PathLike | None = None,
    use_cache: bool = True,
) -> ImageDataset:
    """Image set ``name_or_path`` (a registered name, any case, or a path to an image-folder
    tree) as an :class:`ImageDataset` on the CPU.

    ``validation_fraction`` of the training part is held out, stratified and seeded by ``seed``
    (see the module docstring); ``data_dir`` is resolved by ``resolve_data_dir``;
    ``download=True`` fetches a registered set's missing files from their publisher first.
    ``cache_dir``/``use_cache`` control the decode cache of image folders (``image_folder``).
    Every problem with the request or the files raises a :class:`DataError` saying what to do.
    """
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise DataError(f"seed must be a non-negative integer, got {seed!r}")
    fraction = check_fraction(validation_fraction)
    name, source, raw = read_raw(
        name_or_path,
        data_dir=data_dir,
        download=bool(download),
        cache_dir=cache_dir,
        use_cache=use_cache,
    )
    return from_arrays(name, source, raw, fraction, int(seed))
