"""Corrupted copies of an image set's test images, for robustness metrics (CIFAR-10-C style).

A :class:`CorruptionSuite` gives one :class:`CorruptedSet` per (corruption, severity): the test images
of a subset (or all of them) passed through :func:`uqbench.data.shift.corrupt`, or read from a
user's real CIFAR-10-C folder (``cifar_c_dir``, the published ``<type>.npy`` files).

Conventions:

- **Subset**: by default the first ``count`` (1,000) test images in a seeded, class-stratified
  order (:func:`stratified_order`): the same images for every method, run and seed of a model,
  so corrupted metrics of different methods are paired. ``count=None`` takes the whole test set.
- **Seeds**: every (corruption, severity) is corrupted with ``seed`` (default 0) whatever the
  run's ``--seed``, so all methods see the same corrupted pixels.
- **Cache**: corrupting is done once per content: the result is kept in
  ``<cache>/corrupted/<sha256>.npy`` where the hash covers the subset's bytes, the corruption,
  the severity, the seed and :data:`CACHE_VERSION`; ``<cache>`` is the decode cache's folder
  (``$UQBENCH_IMAGE_CACHE``, ``off`` disables both). Files are written atomically.
"""

from __future__ import annotations

import difflib
import hashlib
import os
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from uqbench.data import shift
from uqbench.data.image_folder import cache_folder
from uqbench.data.paths import DataError

CACHE_VERSION = 1
DEFAULT_COUNT = 1000
SEVERITIES = (1, 2, 3, 4, 5)


@dataclass(frozen=True, eq=False, repr=False)
class CorruptedSet:
    """Test images under one corruption at one severity: uint8 ``images`` ``(N, C, H, W)`` and
    their ``labels`` ``(N,)``, on the in-distribution set's device."""

    corruption: str
    severity: int
    images: torch.Tensor
    labels: torch.Tensor

    @property
    def name(self) -> str:
        """``<corruption>_<severity>``, the name of its predictions file."""
        return f"{self.corruption}_{self.severity}"

    def __repr__(self) -> str:
        return f"CorruptedSet({self.corruption!r}, severity={self.severity}, n={len(self.labels)})"


def resolve_corruptions(spec: str | Sequence[str]) -> list[str]:
    """The corruption names a ``--corruptions`` value asks for: ``all`` (the 15 types in their
    canonical order), or names separated by commas; an unknown name is a ``DataError`` listing
    the valid ones. An empty value asks for none."""
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    names = [str(item).strip().lower() for item in items if str(item).strip()]
    if "all" in names:
        return list(shift.CORRUPTIONS)
    for name in names:
        if name not in shift.CORRUPTIONS:
            close = difflib.get_close_matches(name, shift.CORRUPTIONS, n=2)
            hint = f" Did you mean {' or '.join(close)}?" if close else ""
            raise DataError(
                f"unknown corruption {name!r}.{hint} Valid: all, {', '.join(shift.CORRUPTIONS)}"
            )
    return list(dict.fromkeys(names))


def resolve_severities(spec: str | Sequence[int | str]) -> list[int]:
    """Severities from ``1,2,...`` (each in 1-5); anything else is a ``DataError``."""
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    severities = []
    for item in items:
        text = str(item).strip()
        if not text:
            continue
        if not text.isdigit() or int(text) not in SEVERITIES:
            raise DataError(f"corruption severities are whole numbers from 1 to 5, got {text!r}")
        severities.append(int(text))
    if not severities:
        raise DataError("give at least one corruption severity (1 to 5)")
    return sorted(set(severities))


def stratified_order(labels: np.ndarray, seed: int = 0) -> np.ndarray:
    """All positions of ``labels`` in a seeded, class-stratified order: each class's positions
    in a random order (``numpy.random.default_rng([seed, 1])``), interleaved so that every
    prefix holds the classes in proportion (position ``r`` of a class of ``n`` sorts by
    ``(r + 0.5) / n``, ties by class)."""
    labels = np.asarray(labels)
    rng = np.random.default_rng([seed, 1])
    keys = np.empty(len(labels), dtype=np.float64)
    for value in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == value))
        keys[members] = (np.arange(len(members)) + 0.5) / len(members)
    return np.lexsort((labels, keys))


def subset_indices(labels: np.ndarray, count: int | None, seed: int = 0) -> np.ndarray:
    """Sorted positions of the first ``count`` test images in :func:`stratified_order` (all of
    them when ``count`` is None or not smaller than the set)."""
    if count is None or count >= len(labels):
        return np.arange(len(labels), dtype=np.int64)
    if count < 1:
        raise DataError(f"the corrupted subset needs at least one image, got {count}")
    return np.sort(stratified_order(labels, seed)[:count]).astype(np.int64)


def _cache_file(images: np.ndarray, corruption: str, severity: int, seed: int) -> Path | None:
    folder = cache_folder()
    if folder is None:
        return None
    digest = hashlib.sha256()
    digest.update(f"v{CACHE_VERSION}:{corruption}:{severity}:{seed}:{images.shape}".encode())
    digest.update(np.ascontiguousarray(images).tobytes())
    return folder / "corrupted" / f"{digest.hexdigest()}.npy"


def _corrupt_cached(
    images: torch.Tensor, corruption: str, severity: int, seed: int
) -> torch.Tensor:
    """``shift.corrupt`` of CPU uint8 ``images``, through the content-hash cache."""
    array = images.numpy()
    path = _cache_file(array, corruption, severity, seed)
    if path is not None and path.is_file():
        try:
            cached = np.load(path, allow_pickle=False)
            if cached.shape == array.shape and cached.dtype == np.uint8:
                return torch.from_numpy(cached)
        except (OSError, ValueError):
            pass  # unreadable: corrupt again and rewrite it
    result = shift.corrupt(images, corruption, severity, seed=seed).cpu().contiguous()
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".partial")
        try:
            with os.fdopen(handle, "wb") as file:
                np.save(file, result.numpy(), allow_pickle=False)
            os.replace(temporary, path)
        except OSError:
            Path(temporary).unlink(missing_ok=True)
    return result


@dataclass(frozen=True, eq=False)
class CorruptionSuite:
    """Every (corruption, severity) of ``dataset``'s test images (an
    :class:`~uqbench.data.images.ImageDataset`): iterating gives one :class:`CorruptedSet` at a
    time, on the dataset's device, so only one is held in memory. With ``cifar_c_dir`` the images
    come from that CIFAR-10-C folder (the same subset positions, which match the official
    CIFAR-10 test order) instead of :func:`uqbench.data.shift.corrupt`."""

    dataset: object
    corruptions: tuple[str, ...]
    severities: tuple[int, ...] = SEVERITIES
    count: int | None = DEFAULT_COUNT
    seed: int = 0
    cifar_c_dir: str | None = None

    @property
    def index(self) -> np.ndarray:
        """Positions of the test images used (see :func:`subset_indices`)."""
        return subset_indices(self.dataset.y_test.cpu().numpy(), self.count, self.seed)

    def __len__(self) -> int:
        return len(self.corruptions) * len(self.severities)

    @property
    def num_images(self) -> int:
        """Images predicted over the whole suite."""
        return len(self) * len(self.index)

    def describe(self) -> dict[str, object]:
        """What ``summary.json`` records of the suite."""
        return {
            "corruptions": list(self.corruptions),
            "severities": list(self.severities),
            "images": len(self.index),
            "subset": "all test images" if self.count is None else "stratified, seed 0",
            "seed": self.seed,
            "source": str(self.cifar_c_dir) if self.cifar_c_dir else "uqbench.data.shift",
        }

    def check(self) -> None:
        """A ``DataError`` now, before anything trains, if a CIFAR-10-C folder lacks a file
        or does not match the test set (reading is memory-mapped, so this is cheap)."""
        if self.cifar_c_dir is None:
            return
        index = self.index
        for corruption in self.corruptions:
            self._read(corruption, self.severities[0], index[:1])

    def __iter__(self) -> Iterator[CorruptedSet]:
        x_test, y_test = self.dataset.x_test, self.dataset.y_test
        index = self.index
        chosen = torch.from_numpy(index)
        images = x_test.cpu()[chosen].contiguous()
        labels = y_test[chosen.to(y_test.device)]
        for corruption in self.corruptions:
            for severity in self.severities:
                if self.cifar_c_dir is not None:
                    corrupted, labels = self._read(corruption, severity, index)
                else:
                    corrupted = _corrupt_cached(images, corruption, severity, self.seed)
                yield CorruptedSet(corruption, severity, corrupted.to(x_test.device), labels)

    def _read(
        self, corruption: str, severity: int, index: np.ndarray
    ) -> tuple[torch.Tensor, torch.Tensor]:
        read, read_labels = shift.read_cifar_c(self.cifar_c_dir, corruption, severity)
        expected = len(self.dataset.x_test)
        if len(read) != expected:
            raise DataError(
                f"{self.cifar_c_dir}: {corruption} holds {len(read)} images per severity, but "
                f"{self.dataset.name} has {expected} test images; CIFAR-10-C matches the "
                "official CIFAR-10 test set"
            )
        images = torch.as_tensor(np.asarray(read[index]))
        labels = torch.as_tensor(np.asarray(read_labels)[index]).to(self.dataset.y_test.device)
        return images, labels
