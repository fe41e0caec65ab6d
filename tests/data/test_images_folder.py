"""Image-folder trees given by path (a directory, .zip, .tar, .tar.gz; PNG and JPEG; RGB,
greyscale and mixed), their names, hashes and errors, and the decode cache."""

from __future__ import annotations

import hashlib
import io
import re
import subprocess
import sys

import numpy as np
import pytest
from image_fakes import encode, fake_tree, isolate, write_tree
from PIL import Image

from uqbench import data
from uqbench.data import DataError, image_folder


@pytest.fixture(autouse=True)
def cache(monkeypatch, tmp_path):
    """The decode cache folder, inside tmp_path."""
    return isolate(monkeypatch, tmp_path)


def check_loaded(d, fake, channels=3):
    assert d.x_train.dtype.is_floating_point is False and d.x_train.is_contiguous()
    assert d.image_shape == (channels, *fake.x_train.shape[2:])
    np.testing.assert_array_equal(d.x_train.numpy(), fake.x_train)
    np.testing.assert_array_equal(d.x_test.numpy(), fake.x_test)
    np.testing.assert_array_equal(d.y_train.numpy(), fake.y_train)
    np.testing.assert_array_equal(d.y_test.numpy(), fake.y_test)
    assert d.class_names == tuple(fake.class_names)


@pytest.mark.parametrize(
    ("kind", "file"), [("dir", "tree"), ("zip", "t.zip"), ("tar", "t.tar"), ("tar.gz", "t.tgz")]
)
@pytest.mark.parametrize("root", ["", "myset"])
def test_png_trees_load_exactly(tmp_path, kind, file, root):
    fake = fake_tree(root=root)
    path = write_tree(tmp_path / file, fake.members, kind)
    d = data.get_images(str(path))
    check_loaded(d, fake)
    # classes are sorted by name (code point order), images by file name
    assert d.class_names == ("Dog", "ant", "cat")
    expected_name = root or {"dir": "tree", "zip": "t", "tar": "t", "tar.gz": "t"}[kind]
    assert d.name == expected_name and d.source == str(path)
    assert len(d.data_hash) == 64


def test_archive_hash_is_the_sha256_of_its_bytes(tmp_path):
    path = write_tree(tmp_path / "set.tar.gz", fake_tree(root="r").members, "tar.gz")
    assert data.get_images(path).data_hash == hashlib.sha256(path.read_bytes()).hexdigest()


def test_directory_hash_follows_the_documented_recipe(tmp_path):
    fake = fake_tree()
    path = write_tree(tmp_path / "tree", fake.members)
    (path / "README.txt").write_text("not part of the data")
    digest = hashlib.sha256()
    for name in sorted(fake.members):
        content = fake.members[name]
        digest.update(name.encode() + b"\0" + len(content).to_bytes(8, "big") + content)
    assert data.get_images(path).data_hash == digest.hexdigest()


def test_greyscale_trees_have_one_channel(tmp_path):
    fake = fake_tree(grey=True)
    path = write_tree(tmp_path / "g.zip", fake.members, "zip")
    check_loaded(data.get_images(path), fake, channels=1)


def test_one_colour_image_makes_the_set_rgb_with_grey_images_repeated(tmp_path):
    fake = fake_tree(grey=True, size=(4, 4))
    colour = np.random.default_rng(9).integers(0, 256, (4, 4, 3), dtype=np.uint8)
    fake.members["test/cat/zz_colour.png"] = encode(colour, "PNG")
    d = data.get_images(write_tree(tmp_path / "mixed", fake.members))
    assert d.image_shape == (3, 4, 4)
    grey = fake.x_train[0, 0]
    for c in range(3):
        np.testing.assert_array_equal(d.x_train[0, c].numpy(), grey)
    last_cat = np.flatnonzero(d.y_test.numpy() == d.class_names.index("cat"))[-1]
    np.testing.assert_array_equal(d.x_test[last_cat].numpy(), colour.transpose(2, 0, 1))


def test_alpha_and_palette_images_are_converted_to_rgb(tmp_path):
    rgba = np.random.default_rng(1).integers(0, 256, (5, 5, 4), dtype=np.uint8)
    members = {}
    for part in ("train", "test"):
        for label in ("a", "b"):  # two classes: one would be refused
            buffer = io.BytesIO()
            Image.fromarray(rgba, "RGBA").save(buffer, format="PNG")
            members[f"{part}/{label}/rgba.png"] = buffer.getvalue()
            buffer = io.BytesIO()
            Image.fromarray(rgba[:, :, :3]).convert("P").save(buffer, format="PNG")
            members[f"{part}/{label}/palette.png"] = buffer.getvalue()
    d = data.get_images(write_tree(tmp_path / "alpha", members))
    assert d.image_shape == (3, 5, 5)
    palette = Image.open(io.BytesIO(members["train/a/palette.png"])).convert("RGB")
    np.testing.assert_array_equal(d.x_train[0].numpy(), np.asarray(palette).transpose(2, 0, 1))
    np.testing.assert_array_equal(d.x_train[1].numpy(), rgba[:, :, :3].transpose(2, 0, 1))


@pytest.mark.parametrize("grey", [False, True])
def test_jpeg_trees_load_within_compression_error(tmp_path, grey):
    fake = fake_tree(fmt="JPEG", grey=grey, size=(8, 8), seed=5)
    d = data.get_images(write_tree(tmp_path / "jpeg.tar", fake.members, "tar"))
    assert d.image_shape == ((1,) if grey else (3,)) + (8, 8)
    np.testing.assert_array_equal(d.y_train.numpy(), fake.y_train)
    # each image is what Pillow decodes from the bytes written
    first = sorted(m for m in fake.members if m.startswith("train/Dog/"))[0]
    decoded = np.asarray(Image.open(io.BytesIO(fake.members[first])))
    expected = decoded[None] if grey else decoded.transpose(2, 0, 1)
    np.testing.assert_array_equal(d.x_train[0].numpy(), expected)
    # and close to the smooth images encoded at quality 95
    error = np.abs(d.x_train.numpy().astype(int) - fake.x_train.astype(int))
    assert error.mean() < 2 and error.max() <= 12


def test_the_first_decode_fills_the_cache_and_the_second_reads_it(tmp_path, cache, monkeypatch):
    fake = fake_tree(root="c")
    path = write_tree(tmp_path / "c.zip", fake.members, "zip")
    first = data.get_images(path)
    files = list(cache.iterdir())
    assert [f.name for f in files] == [f"{first.data_hash}-v1.npz"]

    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded again although the cache holds the images")

    monkeypatch.setattr(image_folder, "decode_chunk", no_decoding)
    monkeypatch.setattr(image_folder, "decode_image", no_decoding)
    second = data.get_images(path)
    check_loaded(second, fake)
    assert second.name == "c" and second.data_hash == first.data_hash


def test_a_corrupt_cache_file_is_ignored_and_rebuilt(tmp_path, cache):
    fake = fake_tree()
    path = write_tree(tmp_path / "t.tar", fake.members, "tar")
    d = data.get_images(path)
    cached = cache / f"{d.data_hash}-v1.npz"
    cached.write_bytes(cached.read_bytes()[:200])
    with pytest.warns(RuntimeWarning, match="ignoring the unreadable image cache file"):
        check_loaded(data.get_images(path), fake)
    np.load(cached)  # rebuilt: a valid file again
    assert not [p for p in cache.iterdir() if p.name.endswith(".part")]


def test_the_cache_can_be_moved_or_turned_off(tmp_path, monkeypatch, cache):
    path = write_tree(tmp_path / "t.tar", fake_tree().members, "tar")
    data.get_images(path, cache_dir=tmp_path / "elsewhere")
    assert len(list((tmp_path / "elsewhere").iterdir())) == 1 and not cache.exists()
    data.get_images(path, use_cache=False)
    monkeypatch.setenv("UQBENCH_IMAGE_CACHE", "off")
    data.get_images(path)
    assert not cache.exists()
    assert image_folder.cache_folder() is None


def test_default_cache_folder_is_under_xdg_cache_home(tmp_path, monkeypatch):
    monkeypatch.delenv("UQBENCH_IMAGE_CACHE")
    assert image_folder.cache_folder() == tmp_path / "xdg-cache" / "uqbench" / "decoded"


def test_worker_processes_decode_the_same_images(tmp_path, monkeypatch):
    fake = fake_tree(train_per_class=4)
    path = write_tree(tmp_path / "w.zip", fake.members, "zip")
    monkeypatch.setenv("UQBENCH_DECODE_WORKERS", "2")
    check_loaded(data.get_images(path, use_cache=False), fake)


def test_a_bad_image_found_by_a_worker_is_a_clear_error(tmp_path, monkeypatch):
    fake = fake_tree()
    fake.members["test/cat/img01.PNG"] = b"\x89PNG\r\n\x1a\n broken"
    path = write_tree(tmp_path / "w.zip", fake.members, "zip")
    monkeypatch.setenv("UQBENCH_DECODE_WORKERS", "2")
    with pytest.raises(DataError, match=r"test/cat/img01\.PNG cannot be decoded"):
        data.get_images(path, use_cache=False)


def test_the_caller_main_module_is_never_imported_by_the_workers(tmp_path):
    """A script without an ``if __name__ == "__main__"`` guard (or read from stdin) must not
    be re-run by the decoding workers."""
    path = write_tree(tmp_path / "w.zip", fake_tree().members, "zip")
    script = (
        "import os; os.environ['UQBENCH_DECODE_WORKERS'] = '2'\n"
        "from uqbench import data\n"
        f"print('RUN', data.get_images({str(path)!r}, use_cache=False).x_train.shape[0])\n"
    )
    done = subprocess.run(
        [sys.executable, "-"], input=script, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("RUN") == 1 and "RUN 9" in done.stdout
    assert "worker processes failed" not in done.stderr


# --- errors ---------------------------------------------------------------------------------------


def test_mixed_sizes_name_the_file(tmp_path):
    fake = fake_tree(size=(6, 5))
    fake.members["train/ant/odd.png"] = encode(np.zeros((7, 5, 3), np.uint8), "PNG")
    with pytest.raises(DataError, match=r"train/ant/odd\.png is 5x7 .* first image is 5x6"):
        data.get_images(write_tree(tmp_path / "m", fake.members))


def test_an_empty_class_folder_is_an_error(tmp_path):
    path = write_tree(tmp_path / "e", fake_tree().members)
    (path / "test" / "empty").mkdir()
    with pytest.raises(DataError, match=r"class folder test/empty/ holds no images"):
        data.get_images(path)


def test_an_empty_class_folder_in_a_tar_is_an_error(tmp_path):
    import tarfile

    path = write_tree(tmp_path / "e.tar", fake_tree(root="r").members, "tar")
    with tarfile.open(path, "a") as archive:
        info = tarfile.TarInfo("r/train/nothing")
        info.type = tarfile.DIRTYPE
        archive.addfile(info)
    with pytest.raises(DataError, match=r"r/train/nothing/ holds no images"):
        data.get_images(path)


def test_a_class_without_training_images_is_an_error(tmp_path):
    fake = fake_tree()
    fake.members["test/zebra/z.png"] = encode(np.zeros((6, 5, 3), np.uint8), "PNG")
    with pytest.raises(DataError, match="zebra have test images but no folder in train/"):
        data.get_images(write_tree(tmp_path / "z", fake.members))


@pytest.mark.parametrize("kind", ["dir", "tar.gz"])
def test_a_single_class_tree_is_refused_naming_the_folder_and_class(tmp_path, kind):
    # one class would train to accuracy 1.0, NLL 0 and AUROC 0.5: a wrong result, not a run
    path = write_tree(
        tmp_path / ("one" if kind == "dir" else "one.tar.gz"),
        fake_tree(classes=("cat",)).members,
        kind,
    )
    with pytest.raises(DataError, match=r"one.*needs at least two classes, found 1 \(cat\)"):
        data.get_images(path)


def test_a_class_without_test_images_is_an_error(tmp_path):
    fake = fake_tree()
    fake.members = {k: v for k, v in fake.members.items() if not k.startswith("test/cat/")}
    with pytest.raises(DataError, match=r"class\(es\) cat have no test images"):
        data.get_images(write_tree(tmp_path / "c", fake.members))


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("train/ant/notes.txt", r"train/ant/notes\.txt is not a PNG or JPEG"),
        ("train/stray.png", r"train/stray\.png is not inside a class folder"),
        ("train/ant/deeper/x.png", r"nested too deep"),
    ],
)
def test_files_out_of_place_are_errors(tmp_path, extra, message):
    fake = fake_tree()
    fake.members[extra] = encode(np.zeros((6, 5, 3), np.uint8), "PNG")
    with pytest.raises(DataError, match=message):
        data.get_images(write_tree(tmp_path / "x.zip", fake.members, "zip"))


def test_hidden_files_and_macos_folders_are_skipped(tmp_path):
    fake = fake_tree()
    fake.members["train/ant/.DS_Store"] = b"junk"
    fake.members["__MACOSX/train/ant/._img00.png"] = b"junk"
    fake.members["README.md"] = b"hello"
    check_loaded(data.get_images(write_tree(tmp_path / "h.zip", fake.members, "zip")), fake)


def test_a_corrupt_image_is_an_error_naming_it(tmp_path):
    fake = fake_tree()
    fake.members["train/cat/img00.png"] = fake.members["train/cat/img00.png"][:40]
    with pytest.raises(DataError, match=r"train/cat/img00\.png cannot be decoded"):
        data.get_images(write_tree(tmp_path / "c.tar", fake.members, "tar"), use_cache=False)


def test_sixteen_bit_images_are_refused(tmp_path):
    fake = fake_tree(size=(4, 4))
    buffer = io.BytesIO()
    Image.fromarray(np.full((4, 4), 40000, dtype=np.uint16)).save(buffer, format="PNG")
    fake.members["train/cat/deep.png"] = buffer.getvalue()
    with pytest.raises(DataError, match=r"deep\.png has Pillow mode I"):
        data.get_images(write_tree(tmp_path / "d", fake.members))


def test_a_truncated_archive_is_an_error(tmp_path):
    path = write_tree(tmp_path / "t.tar.gz", fake_tree().members, "tar.gz")
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(DataError, match=r"t\.tar\.gz cannot be decompressed"):
        data.get_images(path)
    zipped = write_tree(tmp_path / "t.zip", fake_tree().members, "zip")
    zipped.write_bytes(zipped.read_bytes()[:-30])
    with pytest.raises(DataError, match=r"t\.zip is not a readable zip archive"):
        data.get_images(zipped)


def test_an_archive_without_the_layout_is_an_error(tmp_path):
    members = {"images/a/x.png": encode(np.zeros((2, 2, 3), np.uint8), "PNG")}
    with pytest.raises(DataError, match=r"not an image-folder tree.*top-level entries: images"):
        data.get_images(write_tree(tmp_path / "n.zip", members, "zip"))
    official = {"cifar-10-batches-py/test_batch": b"x"}
    with pytest.raises(DataError, match=r"official cifar10 archive: load it by name \(cifar10\)"):
        data.get_images(write_tree(tmp_path / "cifar-10-python.tar.gz", official, "tar.gz"))
    only_train = {k: v for k, v in fake_tree().members.items() if k.startswith("train/")}
    with pytest.raises(DataError, match="both train/ and test/"):
        data.get_images(write_tree(tmp_path / "o.zip", only_train, "zip"))


def test_paths_that_are_not_image_trees_are_clear_errors(tmp_path):
    (tmp_path / "plain").mkdir()
    with pytest.raises(DataError, match="is a folder but not an image-folder tree"):
        data.get_images(tmp_path / "plain")
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(DataError, match="is a file but not an image-folder tree"):
        data.get_images(tmp_path / "notes.txt")
    with pytest.raises(DataError, match=re.escape(f"{tmp_path / 'nope'} does not exist")):
        data.get_images(tmp_path / "nope")
