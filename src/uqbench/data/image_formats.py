"""Readers for the published image formats, each giving uint8 ``(N, C, H, W)`` NumPy arrays:

- **CIFAR-10/100**, "python version" (https://www.cs.toronto.edu/~kriz/cifar.html): pickled
  dicts whose ``data`` is a ``(N, 3072)`` uint8 array, each row the 1,024 red, then green, then
  blue values of a 32x32 image in row-major order; ``labels`` (CIFAR-10) or ``fine_labels``
  (CIFAR-100) list the classes, and ``batches.meta`` / ``meta`` hold ``label_names`` /
  ``fine_label_names``. Read from the unpacked folder or straight from the official archive.
  The pickles are read with an unpickler that only builds NumPy arrays, so a tampered file
  cannot run code.
- **IDX** (MNIST, Fashion-MNIST; http://yann.lecun.com/exdb/mnist/): a big-endian header of
  two zero bytes, a type byte (``0x08`` = unsigned byte), the number of dimensions and one
  32-bit size per dimension, then the values. Images have magic number ``0x00000803``
  (``N x rows x columns``), labels ``0x00000801``. Files may be gzipped (``.gz``).
- **SVHN** cropped digits (http://ufldl.stanford.edu/housenumbers/): MATLAB v5 files whose
  ``X`` is ``(32, 32, 3, N)`` uint8 and ``y`` ``(N, 1)`` with labels 1..10, 10 meaning digit 0.
- **digits**: scikit-learn's bundled 8x8 digits (values 0..16) as uint8 ``round(v * 255 / 16)``.

``data_hash`` is the SHA-256 of the content read, in a fixed order, whatever the packaging:
CIFAR hashes the bytes of the batch files it read (``data_batch_1..5``, ``test_batch``,
``batches.meta``; CIFAR-100 ``train``, ``test``, ``meta``) whether they come from the folder or
from inside the archive; IDX hashes the uncompressed files (train images, train labels, test
images, test labels); SVHN hashes the ``.mat`` files (train, test).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import pickle
import struct
import tarfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from uqbench.data.paths import ENV_VAR, DataError, data_dir_origin, resolve_data_dir

PARTS = ("train", "test")
IDX_IMAGES_MAGIC = 0x00000803
IDX_LABELS_MAGIC = 0x00000801


@dataclass(frozen=True, eq=False)
class RawImages:
    """Decoded images of one data set before any validation carve-out: uint8 ``(N, C, H, W)``
    images and int64 ``(N,)`` labels of each part read (``None`` for a part not asked for), the
    class names, the SHA-256 of the content read and the file or folder it came from."""

    x_train: np.ndarray | None
    y_train: np.ndarray | None
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: tuple[str, ...]
    data_hash: str
    source: str


@dataclass(frozen=True)
class Download:
    """One published file: where it goes under the data directory, its mirrors and MD5."""

    path: str
    urls: tuple[str, ...]
    md5: str


@dataclass(frozen=True)
class ImageSetInfo:
    """A registered image set: one-line description, where its files go (``layout``, for error
    messages), the publisher's page, the files ``--download`` fetches, and its reader
    ``read(data_dir, parts) -> RawImages`` (``None`` when no files are needed)."""

    name: str
    description: str
    layout: str
    homepage: str
    downloads: tuple[Download, ...]
    read: Callable[[Path, tuple[str, ...]], RawImages]
    needs_files: bool = True


class MissingImages(DataError):
    """The files of a registered image set are not in the data directory."""


# --- CIFAR ------------------------------------------------------------------------------------

_NUMPY_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),  # how Python 3 writes bytes in protocol-2 pickles
}


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles dicts, lists, strings, numbers and NumPy arrays, and nothing else."""

    def find_class(self, module: str, name: str) -> object:
        if (module, name) not in _NUMPY_GLOBALS:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        return super().find_class(module, name)


def read_cifar_pickle(raw: bytes, where: str) -> dict[str, object]:
    """One CIFAR pickle (a batch or the meta file) as a dict with ``str`` keys. The files were
    written by Python 2, so strings are decoded as latin-1 (the encoding NumPy needs for the
    arrays' bytes)."""
    try:
        content = _ArrayUnpickler(io.BytesIO(raw), encoding="latin1").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as err:
        raise DataError(
            f"{where} is not a readable CIFAR python pickle ({err}); re-download the official "
            "archive"
        ) from None
    if not isinstance(content, dict):
        raise DataError(f"{where} holds a {type(content).__name__}, not a CIFAR dict")
    return {k.decode("latin1") if isinstance(k, bytes) else str(k): v for k, v in content.items()}


def _cifar_batch(
    content: dict[str, object], label_key: str, num_classes: int, where: str
) -> tuple[np.ndarray, np.ndarray]:
    for key in ("data", label_key):
        if key not in content:
            raise DataError(f"{where} has no {key!r} entry; is it a CIFAR batch file?")
    data = content["data"]
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2:
        raise DataError(f"{where}: 'data' must be a 2-D uint8 array (N, 3072)")
    if data.shape[1] != 3 * 32 * 32:
        raise DataError(f"{where}: 'data' rows hold {data.shape[1]} values, not 3072 (3x32x32)")
    labels = np.asarray(content[label_key])
    if labels.shape != (data.shape[0],) or labels.dtype.kind not in "iu":
        raise DataError(
            f"{where}: {label_key!r} must list one integer label per image ({data.shape[0]})"
        )
    if labels.size and not (labels.min() >= 0 and labels.max() < num_classes):
        raise DataError(f"{where}: labels must lie in 0..{num_classes - 1}")
    return data.reshape(-1, 3, 32, 32), labels.astype(np.int64)


def _class_names(content: dict[str, object], key: str, count: int, where: str) -> tuple[str, ...]:
    names = content.get(key)
    if not isinstance(names, list | tuple) or len(names) != count:
        raise DataError(f"{where}: {key!r} must list the {count} class names")
    return tuple(n.decode("latin1") if isinstance(n, bytes) else str(n) for n in names)


@dataclass(frozen=True)
class _CifarLayout:
    folder: str
    archive: str
    alias: str
    train: tuple[str, ...]
    test: str
    meta: str
    label_key: str
    names_key: str
    num_classes: int


CIFAR = {
    "cifar10": _CifarLayout(
        "cifar-10-batches-py",
        "cifar-10-python.tar.gz",
        "cifar10",
        tuple(f"data_batch_{i}" for i in range(1, 6)),
        "test_batch",
        "batches.meta",
        "labels",
        "label_names",
        10,
    ),
    "cifar100": _CifarLayout(
        "cifar-100-python",
        "cifar-100-python.tar.gz",
        "cifar100",
        ("train",),
        "test",
        "meta",
        "fine_labels",
        "fine_label_names",
        100,
    ),
}


def _cifar_members(
    layout: _CifarLayout, data_dir: Path, files: list[str]
) -> tuple[dict[str, bytes], str]:
    """The bytes of ``files`` from the first of: the unpacked folder (directly in the data
    directory, or under ``cifar10/``/``cifar100/``) holding all of them, else the archive."""
    folders = [data_dir / layout.folder, data_dir / layout.alias / layout.folder]
    for folder in folders:
        if all((folder / f).is_file() for f in files):
            return {f: (folder / f).read_bytes() for f in files}, str(folder)
    for archive in (data_dir / layout.archive, data_dir / layout.alias / layout.archive):
        if archive.is_file():
            return _read_tar_members(archive, [f"{layout.folder}/{f}" for f in files]), str(archive)
    present = [f for f in folders if f.is_dir()]
    if present:
        missing = [str(present[0] / f) for f in files if not (present[0] / f).is_file()]
        raise MissingImages(f"{present[0]} lacks {', '.join(missing)}")
    raise MissingImages("")


def _read_tar_members(archive: Path, names: list[str]) -> dict[str, bytes]:
    """The bytes of the members ``<folder>/<file>`` of a (compressed) tar archive, keyed by
    ``<file>``."""
    wanted = set(names)
    found: dict[str, bytes] = {}
    try:
        with tarfile.open(archive, "r:*") as tar:
            for member in tar:
                name = member.name.removeprefix("./")
                if name in wanted and member.isfile():
                    handle = tar.extractfile(member)
                    assert handle is not None
                    found[name.rsplit("/", 1)[1]] = handle.read()
    except (tarfile.TarError, EOFError, zlib.error, OSError) as err:
        raise DataError(
            f"{archive} is not a readable tar archive ({err}); it may be truncated: re-download it"
        ) from None
    missing = sorted(n for n in wanted if n.rsplit("/", 1)[1] not in found)
    if missing:
        raise DataError(
            f"{archive} has no member {', '.join(missing)}; it is not the official archive, "
            "or it is truncated: re-download it"
        )
    return found


def read_cifar(name: str, data_dir: Path, parts: tuple[str, ...]) -> RawImages:
    """CIFAR-10 or CIFAR-100 (``name``) from ``data_dir`` (see the module docstring)."""
    layout = CIFAR[name]
    files = [*(layout.train if "train" in parts else ()), layout.test, layout.meta]
    members, source = _cifar_members(layout, data_dir, files)
    digest = hashlib.sha256()
    for file in files:
        digest.update(members[file])
    meta_where = f"{source}: {layout.meta}"
    names = _class_names(
        read_cifar_pickle(members[layout.meta], meta_where),
        layout.names_key,
        layout.num_classes,
        meta_where,
    )

    def part(batch_files: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
        batches = [
            _cifar_batch(
                read_cifar_pickle(members[f], f"{source}: {f}"),
                layout.label_key,
                layout.num_classes,
                f"{source}: {f}",
            )
            for f in batch_files
        ]
        return (
            np.concatenate([b[0] for b in batches]),
            np.concatenate([b[1] for b in batches]),
        )

    x_train, y_train = part(layout.train) if "train" in parts else (None, None)
    x_test, y_test = part((layout.test,))
    return RawImages(x_train, y_train, x_test, y_test, names, digest.hexdigest(), source)


# --- IDX (MNIST, Fashion-MNIST) ---------------------------------------------------------------

IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
MNIST_CLASSES = tuple(str(d) for d in range(10))
FASHION_MNIST_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)


def parse_idx(raw: bytes, magic: int, where: str) -> np.ndarray:
    """The array in IDX bytes ``raw`` whose magic number must be ``magic`` (``0x00000803``
    for images, ``0x00000801`` for labels); a DataError for another magic number, a truncated
    file or trailing bytes."""
    if len(raw) < 4:
        raise DataError(f"{where} is truncated: {len(raw)} bytes, not even an IDX header")
    found = struct.unpack(">I", raw[:4])[0]
    if found != magic:
        raise DataError(
            f"{where}: magic number {found:#010x}, expected {magic:#010x} (unsigned bytes, "
            f"{magic & 0xFF} dimension(s)); not an IDX {'image' if magic == IDX_IMAGES_MAGIC else 'label'} "
            "file, or a damaged one: re-download it"
        )
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{where} is truncated inside its header ({len(raw)} bytes)")
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    expected = int(np.prod(shape, dtype=np.int64))
    if len(raw) - header != expected:
        state = "truncated" if len(raw) - header < expected else "longer than its header says"
        raise DataError(
            f"{where} is {state}: the header promises {' x '.join(map(str, shape))} = "
            f"{expected} values, the file holds {len(raw) - header}; re-download it"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def _read_maybe_gzipped(folder: Path, file: str) -> tuple[bytes, str]:
    """The uncompressed bytes of ``folder/file``, or of ``folder/file.gz`` when only that is
    there, and the path read."""
    plain, packed = folder / file, folder / f"{file}.gz"
    if plain.is_file():
        return plain.read_bytes(), str(plain)
    if packed.is_file():
        try:
            return gzip.decompress(packed.read_bytes()), str(packed)
        except (OSError, EOFError, zlib.error) as err:
            raise DataError(
                f"{packed} is not a readable gzip file ({err}); it may be truncated: re-download it"
            ) from None
    raise MissingImages(f"{plain} (or {packed.name}) not found")


def read_idx_set(folder: Path, parts: tuple[str, ...], class_names: tuple[str, ...]) -> RawImages:
    """An MNIST-layout set of IDX files in ``folder`` (see the module docstring)."""
    digest = hashlib.sha256()
    arrays: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for part in PARTS:
        if part not in parts:
            continue
        images_file, labels_file = IDX_FILES[part]
        raw_images, images_where = _read_maybe_gzipped(folder, images_file)
        raw_labels, labels_where = _read_maybe_gzipped(folder, labels_file)
        digest.update(raw_images)
        digest.update(raw_labels)
        images = parse_idx(raw_images, IDX_IMAGES_MAGIC, images_where)
        labels = parse_idx(raw_labels, IDX_LABELS_MAGIC, labels_where)
        if len(images) != len(labels):
            raise DataError(
                f"{images_where} holds {len(images)} images but {labels_where} holds "
                f"{len(labels)} labels; the files do not belong together"
            )
        if labels.size and labels.max() >= len(class_names):
            raise DataError(f"{labels_where}: labels must lie in 0..{len(class_names) - 1}")
        arrays[part] = (images[:, None].copy(), labels.astype(np.int64))
    x_train, y_train = arrays.get("train", (None, None))
    x_test, y_test = arrays["test"]
    return RawImages(x_train, y_train, x_test, y_test, class_names, digest.hexdigest(), str(folder))


# --- SVHN -------------------------------------------------------------------------------------

SVHN_FILES = {"train": "train_32x32.mat", "test": "test_32x32.mat"}


def read_svhn_mat(raw: bytes, where: str) -> tuple[np.ndarray, np.ndarray]:
    """Images ``(N, 3, 32, 32)`` and digit labels 0..9 from the bytes of an SVHN ``.mat``."""
    from scipy.io import loadmat

    try:
        content = loadmat(io.BytesIO(raw), variable_names=("X", "y"))
    except (ValueError, TypeError, OSError, EOFError, NotImplementedError, zlib.error) as err:
        raise DataError(
            f"{where} is not a readable MATLAB v5 file ({err}); it may be truncated: re-download it"
        ) from None
    if "X" not in content or "y" not in content:
        raise DataError(f"{where} lacks the variables X and y of the SVHN format")
    x, y = content["X"], np.asarray(content["y"]).reshape(-1)
    if x.ndim != 4 or x.shape[2] != 3 or x.dtype != np.uint8:
        raise DataError(f"{where}: X must be uint8 (32, 32, 3, N), found {x.dtype} {x.shape}")
    if len(y) != x.shape[3]:
        raise DataError(f"{where}: {x.shape[3]} images but {len(y)} labels")
    if y.size and not (y.min() >= 1 and y.max() <= 10 and (y == np.round(y)).all()):
        raise DataError(f"{where}: labels must be integers 1..10 (10 is the digit 0)")
    return np.ascontiguousarray(x.transpose(3, 2, 0, 1)), (y.astype(np.int64) % 10)


def read_svhn(data_dir: Path, parts: tuple[str, ...]) -> RawImages:
    """SVHN's ``train_32x32.mat`` and ``test_32x32.mat`` from ``<data_dir>/svhn/``."""
    folder = data_dir / "svhn"
    digest = hashlib.sha256()
    arrays = {}
    for part in PARTS:
        if part not in parts:
            continue
        path = folder / SVHN_FILES[part]
        if not path.is_file():
            raise MissingImages(f"{path} not found")
        raw = path.read_bytes()
        digest.update(raw)
        arrays[part] = read_svhn_mat(raw, str(path))
    x_train, y_train = arrays.get("train", (None, None))
    x_test, y_test = arrays["test"]
    return RawImages(
        x_train, y_train, x_test, y_test, MNIST_CLASSES, digest.hexdigest(), str(folder)
    )


# --- digits -----------------------------------------------------------------------------------


def read_digits(data_dir: Path, parts: tuple[str, ...]) -> RawImages:
    """scikit-learn's 8x8 digits as ``(N, 1, 8, 8)`` uint8 images (``round(v * 255 / 16)``),
    with the train/test partition of the tabular ``digits`` split 0 (stratified 80/20)."""
    from uqbench.data.splits import array_hash
    from uqbench.data.tabular import classification_arrays, classification_split

    x, y, names, _ = classification_arrays("digits")
    split = classification_split("digits", 0, 1, 0.0, 0)
    images = np.rint(x * 255.0 / 16.0).astype(np.uint8).reshape(-1, 1, 8, 8)
    train, test = split.train_index, split.test_index
    return RawImages(
        images[train] if "train" in parts else None,
        y[train] if "train" in parts else None,
        images[test],
        y[test],
        names,
        array_hash(images, y, train, test),
        "scikit-learn (bundled)",
    )


# --- the catalogue ----------------------------------------------------------------------------

_CIFAR_URL = "https://www.cs.toronto.edu/~kriz"
_MNIST_URLS = ("https://ossci-datasets.s3.amazonaws.com/mnist", "http://yann.lecun.com/exdb/mnist")
_FASHION_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com"
_SVHN_URL = "http://ufldl.stanford.edu/housenumbers"


def _idx_downloads(folder: str, bases: tuple[str, ...], md5s: tuple[str, ...]) -> tuple:
    files = [f for part in PARTS for f in IDX_FILES[part]]
    return tuple(
        Download(f"{folder}/{f}.gz", tuple(f"{b}/{f}.gz" for b in bases), m)
        for f, m in zip(files, md5s, strict=True)
    )


IMAGE_SETS: dict[str, ImageSetInfo] = {
    "cifar10": ImageSetInfo(
        "cifar10",
        "CIFAR-10, 50,000 + 10,000 32x32 RGB images, 10 classes "
        "(needs <data_dir>/cifar-10-batches-py or cifar-10-python.tar.gz; --download fetches it)",
        "<data_dir>/cifar-10-batches-py/ (data_batch_1..5, test_batch, batches.meta), "
        "<data_dir>/cifar10/cifar-10-batches-py/, or the archive cifar-10-python.tar.gz in "
        "either place",
        "https://www.cs.toronto.edu/~kriz/cifar.html",
        (
            Download(
                "cifar-10-python.tar.gz",
                (f"{_CIFAR_URL}/cifar-10-python.tar.gz",),
                "c58f30108f718f92721af3b95e74349a",
            ),
        ),
        lambda data_dir, parts: read_cifar("cifar10", data_dir, parts),
    ),
    "cifar100": ImageSetInfo(
        "cifar100",
        "CIFAR-100, 50,000 + 10,000 32x32 RGB images, 100 (fine) classes "
        "(needs <data_dir>/cifar-100-python or cifar-100-python.tar.gz; --download fetches it)",
        "<data_dir>/cifar-100-python/ (train, test, meta), <data_dir>/cifar100/cifar-100-python/, "
        "or the archive cifar-100-python.tar.gz in either place",
        "https://www.cs.toronto.edu/~kriz/cifar.html",
        (
            Download(
                "cifar-100-python.tar.gz",
                (f"{_CIFAR_URL}/cifar-100-python.tar.gz",),
                "eb9058c3a382ffc7106e4002c42a8d85",
            ),
        ),
        lambda data_dir, parts: read_cifar("cifar100", data_dir, parts),
    ),
    "mnist": ImageSetInfo(
        "mnist",
        "MNIST handwritten digits, 60,000 + 10,000 28x28 greyscale images, 10 classes "
        "(needs <data_dir>/mnist/ IDX files; --download fetches them)",
        "<data_dir>/mnist/{train-images-idx3-ubyte, train-labels-idx1-ubyte, "
        "t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte}, each optionally .gz",
        "http://yann.lecun.com/exdb/mnist/",
        _idx_downloads(
            "mnist",
            _MNIST_URLS,
            (
                "f68b3c2dcbeaaa9fbdd348bbdeb94873",
                "d53e105ee54ea40749a09fcbcd1e9432",
                "9fb629c4189551a2d022fa330f9573f3",
                "ec29112dd5afa0611ce80d1b7f02629c",
            ),
        ),
        lambda data_dir, parts: read_idx_set(data_dir / "mnist", parts, MNIST_CLASSES),
    ),
    "fashion_mnist": ImageSetInfo(
        "fashion_mnist",
        "Fashion-MNIST clothing, 60,000 + 10,000 28x28 greyscale images, 10 classes "
        "(needs <data_dir>/fashion_mnist/ IDX files; --download fetches them)",
        "<data_dir>/fashion_mnist/{train-images-idx3-ubyte, train-labels-idx1-ubyte, "
        "t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte}, each optionally .gz",
        "https://github.com/zalandoresearch/fashion-mnist",
        _idx_downloads(
            "fashion_mnist",
            (_FASHION_URL,),
            (
                "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
                "25c81989df183df01b3e8a0aad5dffbe",
                "bef4ecab320f06d8554ea6380940ec79",
                "bb300cfdad3c16e7a12a480ee83cd310",
            ),
        ),
        lambda data_dir, parts: read_idx_set(
            data_dir / "fashion_mnist", parts, FASHION_MNIST_CLASSES
        ),
    ),
    "svhn": ImageSetInfo(
        "svhn",
        "SVHN cropped house-number digits, 73,257 + 26,032 32x32 RGB images, 10 classes "
        "(needs <data_dir>/svhn/{train,test}_32x32.mat; --download fetches them)",
        "<data_dir>/svhn/train_32x32.mat and <data_dir>/svhn/test_32x32.mat",
        "http://ufldl.stanford.edu/housenumbers/",
        (
            Download(
                "svhn/train_32x32.mat",
                (f"{_SVHN_URL}/train_32x32.mat",),
                "e26dedcc434d2e4c54c9b2d4a06d8373",
            ),
            Download(
                "svhn/test_32x32.mat",
                (f"{_SVHN_URL}/test_32x32.mat",),
                "eb5a983be6a315427106f1b164d9cef3",
            ),
        ),
        read_svhn,
    ),
    "digits": ImageSetInfo(
        "digits",
        "scikit-learn 8x8 digits as 1x8x8 uint8 images, 1,437 + 360 (the tabular digits' "
        "split 0), 10 classes (built in)",
        "",
        "https://scikit-learn.org/stable/modules/generated/sklearn.datasets.load_digits.html",
        (),
        read_digits,
        needs_files=False,
    ),
}
ALIASES = {"cifar-10": "cifar10", "cifar-100": "cifar100", "fashion-mnist": "fashion_mnist"}


def missing_message(info: ImageSetInfo, data_dir: str | os.PathLike | None, detail: str) -> str:
    """The error text for a registered set whose files are absent: what was searched, and how
    to get the files."""
    where = resolve_data_dir(data_dir)
    urls = ", ".join(d.urls[0] for d in info.downloads)
    return (
        f"{info.name}: {detail + '. ' if detail else ''}Searched the data directory {where} "
        f"({data_dir_origin(data_dir)}) for {info.layout}. To get the data, either pass "
        f"--download (download=True in Python), which fetches {urls} into {where}, or download "
        f"the files from {info.homepage} yourself; or point --data_dir (or ${ENV_VAR}) at a "
        "directory that holds them."
    )


def read_set(
    name: str, data_dir: str | os.PathLike | None, parts: tuple[str, ...] = PARTS
) -> RawImages:
    """Read registered image set ``name`` from the data directory; a :class:`MissingImages`
    error (saying how to get the files) when they are absent."""
    info = IMAGE_SETS[name]
    try:
        return info.read(resolve_data_dir(data_dir), parts)
    except MissingImages as err:
        raise MissingImages(missing_message(info, data_dir, str(err))) from None


def download_set(name: str, data_dir: str | os.PathLike | None = None) -> Path:
    """Fetch the published files of registered image set ``name`` into the data directory
    (each checked against its MD5; files already there are kept) and return the directory."""
    from uqbench.data.download import fetch_file

    info = IMAGE_SETS[name]
    root = resolve_data_dir(data_dir)
    for item in info.downloads:
        target = root / item.path
        if target.is_file() or (target.suffix == ".gz" and target.with_suffix("").is_file()):
            continue
        fetch_file(
            item.urls,
            target,
            md5=item.md5,
            advice=f"Files fetched so far are kept; run again with --download to resume, or "
            f"download the files from {info.homepage} and put them at {info.layout}.",
        )
    return root
