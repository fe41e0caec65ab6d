"""Small image data sets written by the tests themselves in each published format (CIFAR python
pickles and their archives, IDX, SVHN's MATLAB v5 files, image-folder trees), to compare what
the loaders read with what was written."""

from __future__ import annotations

import gzip
import io
import os
import pickle
import struct
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[2]
CIFAR10_NAMES = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
]


def isolate(monkeypatch, tmp_path: Path) -> Path:
    """Point every per-user location (data directory, decode cache) into ``tmp_path`` and
    return the decode cache folder, so tests never read or write the user's folders."""
    monkeypatch.delenv("UQBENCH_DATA_DIR", raising=False)
    monkeypatch.delenv("UQBENCH_DECODE_WORKERS", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    monkeypatch.setenv("UQBENCH_IMAGE_CACHE", str(tmp_path / "decoded"))
    return tmp_path / "decoded"


# Read when the tests are collected, before any fixture clears $UQBENCH_DATA_DIR.
_SHARED_BASES = (os.environ.get("UQBENCH_DATA_DIR"), REPO.parent / "shared" / "data")


def shared_cifar10_archive() -> Path | None:
    """The shared JPEG copy of CIFAR-10 (``$UQBENCH_DATA_DIR`` as it was when the tests started,
    or ``../shared/data``), if any."""
    for base in _SHARED_BASES:
        if base and (Path(base) / "cifar10" / "cifar10-jpeg75.tar.gz").is_file():
            return Path(base) / "cifar10" / "cifar10-jpeg75.tar.gz"
    return None


# --- CIFAR --------------------------------------------------------------------------------------


@dataclass
class FakeCifar:
    """What was written: images (N, 3, 32, 32) and labels of each part, and the class names."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: list[str]
    files: dict[str, bytes]  # file name -> bytes, in the official order


def _pickle(content: dict, protocol: int = 2) -> bytes:
    return pickle.dumps(content, protocol=protocol)


def _rows(images: np.ndarray) -> np.ndarray:
    """(N, 3, 32, 32) -> the published (N, 3072) rows: 1,024 red, green, then blue values."""
    return np.ascontiguousarray(images.reshape(len(images), 3072))


def fake_cifar10(per_batch: int = 6, test: int = 8, seed: int = 0, bytes_keys: bool = False):
    """CIFAR-10 batch files (5 training batches of ``per_batch`` images, a test batch and the
    meta file), as the official ``cifar-10-batches-py`` holds them."""
    rng = np.random.default_rng(seed)
    key = (lambda k: k.encode()) if bytes_keys else (lambda k: k)
    files, xs, ys = {}, [], []
    for i in range(1, 6):
        x = rng.integers(0, 256, (per_batch, 3, 32, 32), dtype=np.uint8)
        y = [int(v) for v in rng.integers(0, 10, per_batch)]
        files[f"data_batch_{i}"] = _pickle(
            {
                key("batch_label"): f"training batch {i} of 5",
                key("labels"): y,
                key("data"): _rows(x),
                key("filenames"): [f"img_{i}_{j}.png" for j in range(per_batch)],
            }
        )
        xs.append(x)
        ys.extend(y)
    x_test = rng.integers(0, 256, (test, 3, 32, 32), dtype=np.uint8)
    y_test = [int(v) for v in rng.integers(0, 10, test)]
    files["test_batch"] = _pickle(
        {
            key("batch_label"): "testing batch 1 of 1",
            key("labels"): y_test,
            key("data"): _rows(x_test),
        }
    )
    files["batches.meta"] = _pickle(
        {
            key("label_names"): CIFAR10_NAMES,
            key("num_cases_per_batch"): per_batch,
            key("num_vis"): 3072,
        }
    )
    return FakeCifar(
        np.concatenate(xs),
        np.array(ys, dtype=np.int64),
        x_test,
        np.array(y_test, dtype=np.int64),
        CIFAR10_NAMES,
        files,
    )


def fake_cifar100(train: int = 12, test: int = 5, seed: int = 1) -> FakeCifar:
    """CIFAR-100's ``train``, ``test`` and ``meta`` files (fine and coarse labels)."""
    rng = np.random.default_rng(seed)
    fine = [f"fine_{i:02d}" for i in range(100)]
    coarse = [f"coarse_{i:02d}" for i in range(20)]
    files, parts = {}, {}
    for name, count in (("train", train), ("test", test)):
        x = rng.integers(0, 256, (count, 3, 32, 32), dtype=np.uint8)
        y = [int(v) for v in rng.integers(0, 100, count)]
        files[name] = _pickle(
            {
                "filenames": [f"{name}_{j}.png" for j in range(count)],
                "batch_label": f"{name} batch",
                "fine_labels": y,
                "coarse_labels": [v // 5 for v in y],
                "data": _rows(x),
            }
        )
        parts[name] = (x, np.array(y, dtype=np.int64))
    files["meta"] = _pickle({"fine_label_names": fine, "coarse_label_names": coarse})
    return FakeCifar(*parts["train"], *parts["test"], fine, files)


def write_files(folder: Path, files: dict[str, bytes]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        (folder / name).write_bytes(content)
    return folder


def write_tar(path: Path, members: dict[str, bytes], mode: str = "w:gz") -> Path:
    """A tar archive (gzip by default) holding ``members`` (archive path -> bytes)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, mode) as archive:
        for name, content in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            archive.addfile(info, io.BytesIO(content))
    return path


# --- IDX ------------------------------------------------------------------------------------------


def idx_bytes(array: np.ndarray) -> bytes:
    """IDX encoding of a uint8 array: two zero bytes, type 0x08, the number of dimensions, the
    sizes as big-endian 32-bit integers, then the values."""
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()


@dataclass
class FakeIdx:
    x_train: np.ndarray  # (N, H, W)
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def write_idx_set(
    folder: Path, train: int = 7, test: int = 4, gz: bool = False, seed: int = 2
) -> FakeIdx:
    """The four MNIST files (28x28 images) in ``folder``, gzipped when ``gz``."""
    rng = np.random.default_rng(seed)
    fake = FakeIdx(
        rng.integers(0, 256, (train, 28, 28), dtype=np.uint8),
        rng.integers(0, 10, train).astype(np.uint8),
        rng.integers(0, 256, (test, 28, 28), dtype=np.uint8),
        rng.integers(0, 10, test).astype(np.uint8),
    )
    folder.mkdir(parents=True, exist_ok=True)
    for name, array in (
        ("train-images-idx3-ubyte", fake.x_train),
        ("train-labels-idx1-ubyte", fake.y_train),
        ("t10k-images-idx3-ubyte", fake.x_test),
        ("t10k-labels-idx1-ubyte", fake.y_test),
    ):
        content = idx_bytes(array)
        if gz:
            (folder / f"{name}.gz").write_bytes(gzip.compress(content))
        else:
            (folder / name).write_bytes(content)
    return fake


# --- SVHN -----------------------------------------------------------------------------------------


def write_svhn(folder: Path, train: int = 6, test: int = 5, seed: int = 3) -> dict:
    """``train_32x32.mat`` and ``test_32x32.mat`` (MATLAB v5): X (32, 32, 3, N) uint8, y (N, 1)
    with labels 1..10; returns {part: (X, y)} as written."""
    from scipy.io import savemat

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    written = {}
    for part, count in (("train", train), ("test", test)):
        x = rng.integers(0, 256, (32, 32, 3, count), dtype=np.uint8)
        y = rng.integers(1, 11, (count, 1)).astype(np.uint8)
        y[0, 0] = 10  # at least one zero digit
        savemat(folder / f"{part}_32x32.mat", {"X": x, "y": y}, format="5")
        written[part] = (x, y)
    return written


# --- image folders --------------------------------------------------------------------------------


def encode(array: np.ndarray, fmt: str, quality: int = 95) -> bytes:
    """A (H, W) greyscale or (H, W, 3) RGB uint8 array as PNG or JPEG bytes."""
    image = Image.fromarray(array)
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **({"quality": quality} if fmt == "JPEG" else {}))
    return buffer.getvalue()


@dataclass
class FakeTree:
    """An image-folder tree: member path -> bytes, and what each part should load as."""

    members: dict[str, bytes]
    x_train: np.ndarray  # (N, C, H, W) in the loader's order (class, then file name)
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: list[str]


def _smooth(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """A random linear ramp per channel, 40..215: low frequencies only."""
    rows, cols = np.meshgrid(np.arange(shape[0]), np.arange(shape[1]), indexing="ij")
    channels = shape[2] if len(shape) == 3 else 1
    ramps = [
        40 + rng.uniform(0, 80) + rng.uniform(0, 6) * rows + rng.uniform(0, 6) * cols
        for _ in range(channels)
    ]
    pixels = np.stack(ramps, axis=-1).clip(0, 255).round().astype(np.uint8)
    return pixels if len(shape) == 3 else pixels[..., 0]


def fake_tree(
    root: str = "",
    classes: tuple[str, ...] = ("cat", "Dog", "ant"),
    train_per_class: int = 3,
    test_per_class: int = 2,
    size: tuple[int, int] = (6, 5),  # (H, W)
    grey: bool = False,
    fmt: str = "PNG",
    seed: int = 4,
) -> FakeTree:
    """Random images under ``[root/]{train,test}/<class>/`` (file names chosen so that their
    order differs from the order written), PNG (exact) or JPEG (smooth ramps)."""
    rng = np.random.default_rng(seed)
    prefix = f"{root}/" if root else ""
    members: dict[str, bytes] = {}
    ext = {"PNG": "png", "JPEG": "jpg"}[fmt]
    parts: dict[str, tuple[list, list]] = {"train": ([], []), "test": ([], [])}
    names = sorted(classes)
    for part, count in (("train", train_per_class), ("test", test_per_class)):
        for label, name in enumerate(names):
            arrays = {}
            for j in reversed(range(count)):
                shape = size if grey else (*size, 3)
                if fmt == "JPEG":  # smooth images, which JPEG keeps close
                    pixels = _smooth(rng, shape)
                else:
                    pixels = rng.integers(0, 256, shape, dtype=np.uint8)
                file = f"{prefix}{part}/{name}/img{j:02d}.{ext.upper() if j % 2 else ext}"
                members[file] = encode(pixels, fmt)
                arrays[file] = pixels
            for file in sorted(arrays):
                pixels = arrays[file]
                parts[part][0].append(pixels[None] if grey else pixels.transpose(2, 0, 1))
                parts[part][1].append(label)
    return FakeTree(
        members,
        np.stack(parts["train"][0]),
        np.array(parts["train"][1], dtype=np.int64),
        np.stack(parts["test"][0]),
        np.array(parts["test"][1], dtype=np.int64),
        names,
    )


def write_tree(path: Path, members: dict[str, bytes], kind: str = "dir") -> Path:
    """Write the tree as a directory (``path`` is it), or as a ``zip``, ``tar``, ``tar.gz``
    archive at ``path``."""
    if kind == "dir":
        for name, content in members.items():
            (path / name).parent.mkdir(parents=True, exist_ok=True)
            (path / name).write_bytes(content)
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "zip":
        with zipfile.ZipFile(path, "w") as archive:
            for name, content in members.items():
                archive.writestr(name, content)
        return path
    return write_tar(path, members, {"tar": "w", "tar.gz": "w:gz"}[kind])
