"""Image-folder trees given by path: a directory or an archive (``.zip``, ``.tar``, ``.tar.gz`` /
``.tgz``, ``.tar.bz2``, ``.tar.xz``) laid out as

    [<root>/]train/<class>/<image>      [<root>/]test/<class>/<image>

with PNG or JPEG images (``.png``, ``.jpg``, ``.jpeg``, any case), decoded with Pillow.

Conventions:

- **Name**: the root folder when the tree sits in one (``cifar10/train/...`` is ``cifar10``),
  else the directory's or archive's name without its extension.
- **Classes** are the class folders of ``train/`` and ``test/``, sorted by name; images within a
  class are sorted by file name. Every class needs training images; an empty class folder,
  a file directly in ``train/`` or ``test/``, a deeper folder or a file that is not a PNG/JPEG
  is an error naming it. Hidden files (``.DS_Store``, ``._*``) and ``__MACOSX/`` are skipped;
  entries beside ``train/`` and ``test/`` (a README, a ``val/`` folder) are ignored.
- **Channels**: greyscale images (Pillow modes ``1``, ``L``, ``LA``) give a 1-channel set when
  every image is greyscale; if any image is colour, the set is RGB and greyscale images are
  converted by repeating their channel (as Pillow's ``convert("RGB")`` does). Alpha is
  dropped; palette, CMYK and YCbCr images are converted to RGB; 16-bit and float images are an
  error. All images must share one size (an error names the first that does not).
- **data_hash**: for an archive, the SHA-256 of its bytes; for a directory, the SHA-256 over the
  image files in sorted order of their relative paths, of each path (UTF-8), a zero byte, the
  file's length (8 bytes, big-endian) and its bytes.
- **Cache**: decoding tens of thousands of images takes seconds, so the decoded arrays are kept
  in ``<cache>/<data_hash>-v1.npz`` (written atomically; an unreadable file is ignored and
  rebuilt). ``<cache>`` is the ``cache_dir`` argument, else ``$UQBENCH_IMAGE_CACHE``, else
  ``$XDG_CACHE_HOME/uqbench/decoded`` (``~/.cache/uqbench/decoded``); ``use_cache=False`` or
  ``UQBENCH_IMAGE_CACHE=off`` disables it. The first decode of a large set runs in worker
  processes, one per CPU up to 16 (``$UQBENCH_DECODE_WORKERS`` sets how many; 1 decodes in
  this process): fresh interpreters fed through a pipe, so the caller's script is never
  re-imported (no ``if __name__ == "__main__"`` guard needed).
- **Memory**: an archive is read whole (its bytes, then the unpacked tar), which suits sets of
  small images such as CIFAR (a 19 MiB archive, 92 MiB unpacked, 184 MiB decoded).
"""

from __future__ import annotations

import bz2
import concurrent.futures
import contextlib
import gzip
import hashlib
import io
import lzma
import os
import pickle
import subprocess
import sys
import tarfile
import tempfile
import warnings
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np

from uqbench.data.image_formats import PARTS, RawImages
from uqbench.data.paths import DataError

ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
LAYOUT = "[<root>/]train/<class>/<image> and [<root>/]test/<class>/<image> (PNG or JPEG)"
CACHE_ENV = "UQBENCH_IMAGE_CACHE"
WORKERS_ENV = "UQBENCH_DECODE_WORKERS"
CACHE_VERSION = 1
PARALLEL_MIN_IMAGES = 4096  # below this, starting worker processes costs more than it saves
MAX_WORKERS = 16
# top-level folders of the official archives read by name instead (image_formats)
OFFICIAL_FOLDERS = {"cifar-10-batches-py": "cifar10", "cifar-100-python": "cifar100"}
GREY_MODES = ("1", "L", "LA", "La")
COLOUR_MODES = ("RGB", "RGBA", "RGBa", "RGBX", "CMYK", "YCbCr", "P", "PA", "LAB", "HSV")


# --- finding the tree ---------------------------------------------------------------------------


def is_archive(path: str | os.PathLike) -> bool:
    """Whether ``path``'s name ends like an archive this module reads."""
    return str(path).lower().endswith(ARCHIVE_SUFFIXES)


def _strip_archive_suffix(name: str) -> str:
    for suffix in sorted(ARCHIVE_SUFFIXES, key=len, reverse=True):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


def _holds_parts(folder: Path) -> bool:
    return all((folder / part).is_dir() for part in PARTS)


def _tree_root(folder: Path) -> Path | None:
    """``folder`` or its only subfolder, whichever holds ``train/`` and ``test/``."""
    if _holds_parts(folder):
        return folder
    subfolders = [p for p in folder.iterdir() if p.is_dir() and not _hidden(p.name)]
    if len(subfolders) == 1 and _holds_parts(subfolders[0]):
        return subfolders[0]
    return None


def is_image_folder(path: str | os.PathLike) -> bool:
    """Whether ``path`` is an archive file or a directory in the image-folder layout."""
    path = Path(path).expanduser()
    if path.is_file():
        return is_archive(path)
    return path.is_dir() and _tree_root(path) is not None


def _hidden(part: str) -> bool:
    return part.startswith(".") or part == "__MACOSX"


# --- listing entries ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Listing:
    """Every regular file (relative POSIX path -> bytes) and folder of a tree."""

    files: dict[str, bytes]
    folders: set[str]


def _decompress_tar(raw: bytes, where: Path) -> bytes:
    try:
        if raw[:2] == b"\x1f\x8b":
            return gzip.decompress(raw)
        if raw[:3] == b"BZh":
            return bz2.decompress(raw)
        if raw[:6] == b"\xfd7zXZ\x00":
            return lzma.decompress(raw)
    except (OSError, EOFError, zlib.error, lzma.LZMAError, ValueError) as err:
        raise DataError(
            f"{where} cannot be decompressed ({err}); it may be truncated: copy it again"
        ) from None
    return raw


def _list_archive(path: Path, raw: bytes) -> _Listing:
    files: dict[str, bytes] = {}
    folders: set[str] = set()

    def add(name: str, is_dir: bool, content: bytes | None) -> None:
        parts = [p for p in PurePosixPath(name).parts if p not in ("", ".")]
        if not parts or any(_hidden(p) for p in parts) or ".." in parts:
            return
        key = "/".join(parts)
        if is_dir:
            folders.add(key)
        else:
            files[key] = content if content is not None else b""
        for i in range(1, len(parts)):
            folders.add("/".join(parts[:i]))

    if path.name.lower().endswith(".zip"):
        try:
            with zipfile.ZipFile(io.BytesIO(raw)) as archive:
                for info in archive.infolist():
                    content = None if info.is_dir() else archive.read(info)
                    add(info.filename, info.is_dir(), content)
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as err:
            raise DataError(
                f"{path} is not a readable zip archive ({err}); it may be truncated: copy it again"
            ) from None
        return _Listing(files, folders)
    data = _decompress_tar(raw, path)
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as archive:
            for member in archive:
                if member.isdir():
                    add(member.name, True, None)
                elif member.isfile():
                    start = member.offset_data
                    if start + member.size > len(data):
                        raise tarfile.ReadError(f"member {member.name} runs past the end")
                    add(member.name, False, data[start : start + member.size])
    except tarfile.TarError as err:
        raise DataError(
            f"{path} is not a readable tar archive ({err}); it may be truncated: copy it again"
        ) from None
    return _Listing(files, folders)


def _list_directory(path: Path) -> _Listing:
    files: dict[str, bytes] = {}
    folders: set[str] = set()
    for current, subfolders, names in os.walk(path):
        subfolders[:] = sorted(d for d in subfolders if not _hidden(d))
        relative = Path(current).relative_to(path).as_posix()
        prefix = "" if relative == "." else f"{relative}/"
        folders.update(f"{prefix}{d}" for d in subfolders)
        for name in names:
            if not _hidden(name):
                files[f"{prefix}{name}"] = b""  # read later, only the files of the tree
    return _Listing(files, folders)


# --- the layout ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Tree:
    """Where the tree sits in the listing, its classes, and each part's (path, label) list in
    the final order."""

    root: str
    class_names: tuple[str, ...]
    parts: dict[str, list[tuple[str, int]]]


def _layout(listing: _Listing, where: Path) -> _Tree:
    tops = {k.split("/", 1)[0] for k in [*listing.folders, *listing.files]}
    if {"train", "test"} <= listing.folders:
        root = ""
    else:
        candidates = [t for t in tops if f"{t}/train" in listing.folders]
        if len(candidates) == 1 and f"{candidates[0]}/test" in listing.folders:
            root = candidates[0]
        else:
            found = ", ".join(sorted(tops)[:10]) or "nothing"
            official = sorted(tops & set(OFFICIAL_FOLDERS))
            hint = (
                f"; it looks like the official {OFFICIAL_FOLDERS[official[0]]} archive: load it "
                f"by name ({OFFICIAL_FOLDERS[official[0]]}) with --data_dir set to its folder"
                if official
                else ""
            )
            raise DataError(
                f"{where} is not an image-folder tree: it needs {LAYOUT}, with both train/ and "
                f"test/ (its top-level entries: {found}){hint}"
            )
    prefix = f"{root}/" if root else ""
    classes: dict[str, dict[str, list[str]]] = {part: {} for part in PARTS}
    for folder in listing.folders:
        if not folder.startswith(prefix):
            continue
        bits = folder[len(prefix) :].split("/")
        if bits[0] in PARTS and len(bits) == 2:
            classes[bits[0]].setdefault(bits[1], [])
        elif bits[0] in PARTS and len(bits) > 2:
            raise DataError(
                f"{where}: folder {folder}/ is nested too deep; images go in "
                f"{prefix}{bits[0]}/<class>/ ({LAYOUT})"
            )
    for file in sorted(listing.files):
        if not file.startswith(prefix):
            continue
        bits = file[len(prefix) :].split("/")
        if bits[0] not in PARTS or len(bits) == 1:
            continue
        if len(bits) != 3:
            raise DataError(
                f"{where}: {file} is not inside a class folder; images go in "
                f"{prefix}{bits[0]}/<class>/<image> ({LAYOUT})"
            )
        if not bits[2].lower().endswith(IMAGE_SUFFIXES):
            raise DataError(
                f"{where}: {file} is not a PNG or JPEG file (by its extension: "
                f"{', '.join(IMAGE_SUFFIXES)}, any case); remove it or convert it"
            )
        classes[bits[0]].setdefault(bits[1], []).append(file)
    for part in PARTS:
        for name, files in classes[part].items():
            if not files:
                raise DataError(
                    f"{where}: the class folder {prefix}{part}/{name}/ holds no images; "
                    "remove it or add its images"
                )
    names = sorted(set(classes["train"]) | set(classes["test"]))
    if not names:
        raise DataError(f"{where}: {prefix}train/ holds no class folders ({LAYOUT})")
    untrained = [n for n in names if n not in classes["train"]]
    if untrained:
        raise DataError(
            f"{where}: class(es) {', '.join(untrained)} have test images but no folder in "
            f"{prefix}train/; every class needs training images"
        )
    label = {n: i for i, n in enumerate(names)}
    parts = {
        part: [(f, label[c]) for c in names for f in sorted(classes[part].get(c, []))]
        for part in PARTS
    }
    return _Tree(root, tuple(names), parts)


# --- decoding -----------------------------------------------------------------------------------


def decode_image(
    where: str, content: bytes, size: tuple[int, int] | None = None
) -> tuple[np.ndarray, bool]:
    """One PNG/JPEG as uint8 ``(H, W)`` when it is greyscale, else ``(H, W, 3)`` RGB, and
    whether it was greyscale; ``size`` = (width, height) the image must have."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(content), formats=("PNG", "JPEG")) as image:
            width, height = image.size
            if size is not None and (width, height) != size:
                raise DataError(
                    f"{where} is {width}x{height} (width x height), but the set's first image "
                    f"is {size[0]}x{size[1]}; all images of a set must share one size: resize "
                    "them first"
                )
            image.load()
            if image.mode in GREY_MODES:
                grey = image if image.mode == "L" else image.convert("L")
                return np.frombuffer(grey.tobytes(), np.uint8).reshape(height, width), True
            if image.mode in COLOUR_MODES:
                rgb = image if image.mode == "RGB" else image.convert("RGB")
                return np.frombuffer(rgb.tobytes(), np.uint8).reshape(height, width, 3), False
            raise DataError(
                f"{where} has Pillow mode {image.mode} (16-bit or floating point); save it as "
                "8-bit greyscale or RGB"
            )
    except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError) as err:
        if isinstance(err, DataError):
            raise
        raise DataError(f"{where} cannot be decoded as PNG or JPEG ({err}); replace it") from None


def decode_chunk(
    items: list[tuple[str, bytes]], size: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """Decode ``(name, bytes)`` images of one size into ``(n, H, W, 3)`` uint8 (a greyscale
    image's channel repeated three times, as Pillow's ``convert("RGB")`` does) and an ``(n,)``
    "was greyscale" mask (runs in worker processes)."""
    pixels = np.empty((len(items), size[1], size[0], 3), dtype=np.uint8)
    grey = np.empty(len(items), dtype=bool)
    for i, (where, content) in enumerate(items):
        array, grey[i] = decode_image(where, content, size)
        pixels[i] = array[:, :, None] if grey[i] else array
    return pixels, grey


def _worker_count(num_images: int) -> int:
    configured = os.environ.get(WORKERS_ENV, "").strip()
    if configured:
        try:
            count = int(configured)
        except ValueError:
            raise DataError(
                f"${WORKERS_ENV} must be a whole number of worker processes, got {configured!r}"
            ) from None
        return max(count, 1)
    if num_images < PARALLEL_MIN_IMAGES:
        return 1
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(cpus or 1, MAX_WORKERS))


def serve_decode() -> None:
    """A decoding worker: reads a pickled ``(items, size)`` from standard input and writes the
    pickled ``("ok", (pixels, grey))`` of :func:`decode_chunk`, or ``("error", message)``."""
    items, size = pickle.load(sys.stdin.buffer)
    try:
        result: tuple = ("ok", decode_chunk(items, size))
    except DataError as err:
        result = ("error", str(err))
    pickle.dump(result, sys.stdout.buffer, protocol=pickle.HIGHEST_PROTOCOL)
    sys.stdout.buffer.flush()


def _run_worker(chunk: list[tuple[str, bytes]], size: tuple[int, int]) -> tuple:
    """Decode ``chunk`` in a fresh Python process running :func:`serve_decode`."""
    package_parent = str(Path(__file__).resolve().parents[2])
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_parent, env.get("PYTHONPATH")) if p)
    command = "from uqbench.data.image_folder import serve_decode; serve_decode()"
    done = subprocess.run(
        [sys.executable, "-c", command],
        input=pickle.dumps((chunk, size), protocol=pickle.HIGHEST_PROTOCOL),
        capture_output=True,
        env=env,
        check=False,
    )
    if done.returncode != 0:
        tail = done.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
        raise OSError(f"decoding worker exited with status {done.returncode}: {tail[0]}")
    status, value = pickle.loads(done.stdout)
    if status == "error":
        raise DataError(value)
    return value


def _decode_all(
    items: list[tuple[str, bytes]], size: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """Decode every image: in worker processes when there are many (each a fresh interpreter
    fed through a pipe, so the caller's main module is never re-imported), else, or when the
    workers cannot run, in this process."""
    workers = _worker_count(len(items))
    if workers > 1 and sys.executable:
        chunks = list(_chunks(items, workers))
        try:
            with concurrent.futures.ThreadPoolExecutor(len(chunks)) as pool:
                results = list(pool.map(lambda chunk: _run_worker(chunk, size), chunks))
            return np.concatenate([r[0] for r in results]), np.concatenate([r[1] for r in results])
        except (OSError, pickle.UnpicklingError, EOFError) as err:
            warnings.warn(
                f"decoding in worker processes failed ({err}); decoding in this process",
                RuntimeWarning,
                stacklevel=3,
            )
    return decode_chunk(items, size)


def _chunks(items: list[tuple[str, bytes]], count: int) -> Iterator[list[tuple[str, bytes]]]:
    step = max(1, -(-len(items) // count))
    for start in range(0, len(items), step):
        yield items[start : start + step]


# --- the cache ----------------------------------------------------------------------------------


def cache_folder(cache_dir: str | os.PathLike | None = None) -> Path | None:
    """Where decoded image folders are cached (see the module docstring); None when disabled."""
    if cache_dir is not None and os.fspath(cache_dir):
        return Path(cache_dir).expanduser()
    configured = os.environ.get(CACHE_ENV, "").strip()
    if configured.lower() in ("off", "0", "none", "false", "no"):
        return None
    if configured:
        return Path(configured).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "uqbench" / "decoded"


def _cache_path(folder: Path, data_hash: str) -> Path:
    return folder / f"{data_hash}-v{CACHE_VERSION}.npz"


def _read_cache(path: Path) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], tuple, str] | None:
    """``(parts, class_names, root)`` from a cache file, or None when it is absent or unusable
    (a warning says so for an unusable one, which is then rebuilt)."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as content:
            arrays = {k: content[k] for k in content.files}
        names = tuple(str(n) for n in arrays["class_names"])
        root = str(arrays["root"])
        parts = {}
        for part in PARTS:
            x, y = arrays[f"x_{part}"], arrays[f"y_{part}"]
            if x.dtype != np.uint8 or x.ndim != 4 or y.dtype != np.int64 or y.shape != x.shape[:1]:
                raise ValueError(f"{part} arrays have the wrong type or shape")
            if y.size and not (y.min() >= 0 and y.max() < len(names)):
                raise ValueError(f"{part} labels out of range")
            parts[part] = (x, y)
        if parts["train"][0].shape[1:] != parts["test"][0].shape[1:]:
            raise ValueError("train and test images differ in shape")
    except Exception as err:  # any damage to the file means: decode again
        warnings.warn(
            f"ignoring the unreadable image cache file {path} ({type(err).__name__}: {err}); "
            "decoding the images again",
            RuntimeWarning,
            stacklevel=4,
        )
        return None
    return parts, names, root


def _write_cache(path: Path, raw: RawImages, root: str) -> None:
    """Write the decoded arrays atomically; a cache that cannot be written only warns."""
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
        with os.fdopen(fd, "wb") as handle:
            np.savez(
                handle,
                x_train=raw.x_train,
                y_train=raw.y_train,
                x_test=raw.x_test,
                y_test=raw.y_test,
                class_names=np.array(raw.class_names, dtype=str),
                root=np.array(root, dtype=str),
            )
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as err:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        warnings.warn(
            f"could not write the image cache file {path} ({err}); the next load decodes "
            f"again (set ${CACHE_ENV} to a writable folder, or to off)",
            RuntimeWarning,
            stacklevel=4,
        )


# --- reading ------------------------------------------------------------------------------------


def _directory_hash(path: Path, listing: _Listing, root: str) -> tuple[str, dict[str, bytes]]:
    """Read the image files of the tree (train/ and test/) and hash them (module docstring)."""
    prefix = f"{root}/" if root else ""
    digest = hashlib.sha256()
    contents = {}
    for file in sorted(listing.files):
        bits = file[len(prefix) :].split("/") if file.startswith(prefix) else []
        if len(bits) < 2 or bits[0] not in PARTS:
            continue
        content = (path / file).read_bytes()
        contents[file] = content
        digest.update(file.encode())
        digest.update(b"\0")
        digest.update(len(content).to_bytes(8, "big"))
        digest.update(content)
    return digest.hexdigest(), contents


def read_image_folder(
    path: str | os.PathLike,
    *,
    cache_dir: str | os.PathLike | None = None,
    use_cache: bool = True,
) -> tuple[str, RawImages]:
    """``(name, images)`` of the image-folder tree at ``path`` (see the module docstring)."""
    path = Path(path).expanduser()
    if path.is_file():
        raw_bytes = path.read_bytes()
        data_hash = hashlib.sha256(raw_bytes).hexdigest()
        listing = None
        default_name = _strip_archive_suffix(path.name)
    elif path.is_dir():
        raw_bytes = None
        listing = _list_directory(path)
        root_path = _tree_root(path)
        if root_path is None:
            raise DataError(f"{path} is not an image-folder tree: it needs {LAYOUT}")
        root = "" if root_path == path else root_path.name
        data_hash, contents = _directory_hash(path, listing, root)
        listing = _Listing(contents, listing.folders)
        default_name = path.resolve().name
    else:
        raise DataError(f"{path} does not exist; give an image-folder directory or archive")
    folder = cache_folder(cache_dir) if use_cache else None
    cached = _read_cache(_cache_path(folder, data_hash)) if folder is not None else None
    if cached is not None:
        parts, names, root = cached
        raw = RawImages(*parts["train"], *parts["test"], names, data_hash, str(path))
        return root or default_name, raw
    if listing is None:
        listing = _list_archive(path, raw_bytes)
    tree = _layout(listing, path)
    items = {
        part: [(f"{path}: {f}", listing.files[f]) for f, _ in tree.parts[part]] for part in PARTS
    }
    everything = items["train"] + items["test"]
    first_pixels, _ = decode_image(*everything[0])
    size = (first_pixels.shape[1], first_pixels.shape[0])
    pixels, grey = _decode_all(everything, size)
    channels = 1 if grey.all() else 3
    images = np.ascontiguousarray(pixels[..., :channels].transpose(0, 3, 1, 2))
    num_train = len(items["train"])
    labels = {part: np.array([c for _, c in tree.parts[part]], dtype=np.int64) for part in PARTS}
    raw = RawImages(
        images[:num_train],
        labels["train"],
        images[num_train:],
        labels["test"],
        tree.class_names,
        data_hash,
        str(path),
    )
    if folder is not None:
        _write_cache(_cache_path(folder, data_hash), raw, tree.root)
    return tree.root or default_name, raw
