"""Flags shared by the baseline scripts, defined once (absl flags are process-global).

A baseline script lists the flags it reads in ``FLAGS_USED``: the runner (``uqbench run``) refuses
flags outside that list, and ``flags.txt`` records exactly those, so several baselines can be
imported into one process (tests, the demo) without ``DuplicateFlagError`` or leaking flags.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import TypeVar

import torch
from absl import flags

T = TypeVar("T")
RecipeT = TypeVar("RecipeT")

DATASET = flags.DEFINE_string(
    "dataset", None, "Data set name (see `uqbench list`) or path to a folder in a supported layout."
)
DATA_DIR = flags.DEFINE_string(
    "data_dir", None, "Data directory; default $UQBENCH_DATA_DIR, else ~/.cache/uqbench/data."
)
DOWNLOAD = flags.DEFINE_bool(
    "download", False, "Fetch missing benchmark files from their public source into --data_dir."
)
SPLIT = flags.DEFINE_string("split", "all", "Which standard split to run: an index, or 'all'.")
OUTPUT_DIR = flags.DEFINE_string(
    "output_dir", None, "Run directory to write; default runs/<method>/<dataset>-<time>."
)
OVERWRITE = flags.DEFINE_bool("overwrite", False, "Replace an existing --output_dir.")
SEED = flags.DEFINE_integer("seed", 0, "Random seed (initialisation, minibatch order, dropout).")
EPOCHS = flags.DEFINE_integer("epochs", None, "Training epochs; default: the method's protocol.")
BATCH_SIZE = flags.DEFINE_integer("batch_size", None, "Minibatch size; default: the tuned value.")
LEARNING_RATE = flags.DEFINE_float(
    "learning_rate",
    None,
    "Learning rate (Adam for the uci/ baselines; peak SGD rate of the --schedule for image/); "
    "default: the tuned value (uci/) or the protocol's (image/).",
)
HIDDEN = flags.DEFINE_integer(
    "hidden", None, "Hidden units of the one-layer MLP; default: the data set's (50, protein 100)."
)
DEVICE = flags.DEFINE_string(
    "device",
    None,
    "Device: cpu, cuda, cuda:N or auto (CUDA when available); default: the method's "
    "(cpu for the small regression networks, auto for images).",
)
QUIET = flags.DEFINE_bool(
    "quiet",
    False,
    "No progress output; the result table and the run directory's path are still printed.",
)
THREADS = flags.DEFINE_integer(
    "threads",
    None,
    "CPU threads for torch (torch.set_num_threads); default: torch's choice (usually one per "
    "core). Give 1 (or cores / runs) when several runs share a machine.",
    lower_bound=1,
)
MC_SAMPLES = flags.DEFINE_integer(
    "mc_samples", None, "Monte-Carlo dropout samples at test time; default: the method's."
)
NUM_MEMBERS = flags.DEFINE_integer(
    "num_members", None, "Ensemble members (per split); default: the method's."
)

REGRESSION_FLAGS = (
    DATASET,
    DATA_DIR,
    DOWNLOAD,
    SPLIT,
    OUTPUT_DIR,
    OVERWRITE,
    SEED,
    EPOCHS,
    BATCH_SIZE,
    LEARNING_RATE,
    HIDDEN,
    DEVICE,
    THREADS,
    QUIET,
)


# Image classification (uqbench.baselines.image.*). Unset values come from the --protocol.
MODEL = flags.DEFINE_string(
    "model",
    None,
    "Network (see `uqbench list models`), e.g. lenet, resnet20, wrn28_10, wrn16_4; or your own "
    "as package.module:factory (called with num_classes, in_channels, image_size and, if it "
    "takes it, dropout_rate; returns an nn.Module mapping normalised images to logits). Text "
    "baselines: textcnn (default), transformer, or your encoder as package.module:factory "
    "(called with vocab_size, max_length, pad_id and, if it takes it, dropout_rate; returns an "
    "nn.Module mapping token ids (B, L) to vectors (B, D)).",
)
PROTOCOL = flags.DEFINE_enum(
    "protocol",
    "auto",
    ["auto", "ub", "fast", "cpu", "cpu32"],
    "Tuned defaults: ub (Uncertainty Baselines' WRN-28-10 CIFAR recipe), fast (a short GPU "
    "schedule), cpu (small images such as digits), cpu32 (32x32 colour images such as CIFAR-10 "
    "on a CPU, about 3 minutes); auto: ub for wrn models, on a CPU cpu32 for colour images of "
    "32+ pixels and cpu for others, else fast.",
)
VALIDATION_FRACTION = flags.DEFINE_float(
    "validation_fraction",
    None,
    "Part of the training set held out (stratified) for validation: temperature scaling and "
    "validation metrics use it; the test set is touched once, for the reported numbers. "
    "Default: the protocol's (0 for ub, which trains on every training image as Uncertainty "
    "Baselines does; 0.1 otherwise).",
)
TRAIN_SUBSET = flags.DEFINE_integer(
    "train_subset",
    None,
    "Train on this many training images (after the validation carve-out and "
    "--holdout_classes), stratified by class; the same images for every --seed. For CPU-sized "
    "runs on large sets; default: every training image.",
)
WEIGHT_DECAY = flags.DEFINE_float(
    "weight_decay", None, "SGD weight decay; default: the protocol's."
)
SCHEDULE = flags.DEFINE_enum(
    "schedule",
    None,
    ["step", "onecycle", "cosine"],
    "Learning-rate schedule; default: the protocol's.",
)
WARMUP_EPOCHS = flags.DEFINE_float(
    "warmup_epochs", None, "Linear learning-rate warm-up; default: the protocol's."
)
LABEL_SMOOTHING = flags.DEFINE_float(
    "label_smoothing", None, "Label smoothing in [0, 1); default: the protocol's."
)
TEST_FLIPS = flags.DEFINE_bool(
    "test_flips", None, "Average the logits of each test image and its mirror image."
)
OOD = flags.DEFINE_list(
    "ood",
    ["uniform_noise"],
    "OOD sets to evaluate: uniform_noise, gaussian_noise, pairs (the named pairs whose files exist, "
    "e.g. cifar10 -> svhn, cifar100), a data set name or a path to an image set.",
)
CORRUPTIONS = flags.DEFINE_list(
    "corruptions",
    [],
    "CIFAR-10-C corruptions to evaluate: all, or names such as gaussian_noise,fog (uqbench list "
    "corruptions); writes corrupted/<type>/<severity>/{accuracy,nll,ece} and UB's means.",
)
CORRUPTION_SEVERITIES = flags.DEFINE_list(
    "corruption_severities", ["1", "2", "3", "4", "5"], "Corruption severities (1 to 5)."
)
CORRUPTION_IMAGES = flags.DEFINE_integer(
    "corruption_images",
    1000,
    "Corrupt this many test images (a class-stratified subset fixed by seed 0, the same for "
    "every method); 0 for the whole test set.",
)
CIFAR10C_DIR = flags.DEFINE_string(
    "cifar10c_dir",
    None,
    "A CIFAR-10-C folder (<type>.npy, labels.npy): read the corrupted images from it instead of "
    "corrupting the test set here (needs the official CIFAR-10 test order).",
)
HOLDOUT_CLASSES = flags.DEFINE_list(
    "holdout_classes",
    [],
    "Classes (indices or names) left out of training; their test images become the OOD set "
    "'holdout'.",
)
TEMPERATURE_SCALING = flags.DEFINE_bool(
    "temperature_scaling",
    False,
    "Fit a temperature on the validation set (needs --validation_fraction > 0; the ub "
    "protocol's default is 0) and report the scaled predictions.",
)
PRECISION = flags.DEFINE_enum(
    "precision", "auto", ["auto", "fp32", "bf16"], "bf16 autocast (auto: on CUDA only)."
)
COMPILE = flags.DEFINE_bool("compile", False, "torch.compile the network (worth it on a GPU).")
EVAL_BATCH_SIZE = flags.DEFINE_integer("eval_batch_size", 1000, "Batch size for evaluation.")
RESUME = flags.DEFINE_bool(
    "resume",
    False,
    "Continue a killed run of the same --output_dir and flags from its last finished epoch "
    "(state saved beside the output as .<name>.training/); starts afresh if there is none.",
)

IMAGE_FLAGS = (
    DATASET,
    DATA_DIR,
    DOWNLOAD,
    OUTPUT_DIR,
    OVERWRITE,
    RESUME,
    SEED,
    MODEL,
    PROTOCOL,
    EPOCHS,
    BATCH_SIZE,
    LEARNING_RATE,
    WEIGHT_DECAY,
    SCHEDULE,
    WARMUP_EPOCHS,
    LABEL_SMOOTHING,
    TEST_FLIPS,
    VALIDATION_FRACTION,
    TRAIN_SUBSET,
    OOD,
    HOLDOUT_CLASSES,
    CORRUPTIONS,
    CORRUPTION_SEVERITIES,
    CORRUPTION_IMAGES,
    CIFAR10C_DIR,
    TEMPERATURE_SCALING,
    DEVICE,
    PRECISION,
    COMPILE,
    EVAL_BATCH_SIZE,
    THREADS,
    QUIET,
)


# Text classification (uqbench.baselines.text.*). Unset values come from the model's recipe.
VOCAB_SIZE = flags.DEFINE_integer(
    "vocab_size",
    4096,
    "Vocabulary built from the training texts: at most this many entries (special tokens and "
    "characters, then words by frequency).",
)
MAX_LENGTH = flags.DEFINE_integer(
    "max_length", 64, "Tokens kept per text (longer texts are cut); the transformer's positions."
)
TOKENIZER = flags.DEFINE_string(
    "tokenizer",
    None,
    "A Hugging Face tokenizer.json to use instead of building a vocabulary (e.g. a pretrained "
    "encoder's, with --model=package.module:factory); it needs a [PAD] or <pad> token.",
)
TEXT_FLAGS = (
    DATASET,
    DATA_DIR,
    OUTPUT_DIR,
    OVERWRITE,
    RESUME,
    SEED,
    MODEL,
    VOCAB_SIZE,
    MAX_LENGTH,
    TOKENIZER,
    EPOCHS,
    BATCH_SIZE,
    LEARNING_RATE,
    WEIGHT_DECAY,
    WARMUP_EPOCHS,
    VALIDATION_FRACTION,
    TEMPERATURE_SCALING,
    DEVICE,
    PRECISION,
    EVAL_BATCH_SIZE,
    THREADS,
    QUIET,
)


def value_or(holder: flags.FlagHolder, default: T) -> T:
    """The flag's value if it was given (even 0 or an empty value), else ``default``."""
    return default if holder.value is None else holder.value


# Where a run writes is not part of its configuration: flags.txt records these as comments, so
# `--flagfile=RUN/flags.txt` re-runs into a fresh directory (or the --output_dir given after it).
NOT_REPLAYED = ("output_dir", "overwrite", "resume")


def serialize(holders: Iterable[flags.FlagHolder]) -> list[str]:
    """``--name=value`` lines for these flags, usable as a flagfile: unset flags and
    ``NOT_REPLAYED`` ones (``--output_dir``, ``--overwrite``) are written as comments."""
    lines = []
    for holder in holders:
        flag = flags.FLAGS[holder.name]
        if flag.value is None:
            lines.append(f"# --{flag.name} unset (default used)")
        elif flag.name in NOT_REPLAYED:
            lines.append(f"# {flag.serialize()}  (not replayed by --flagfile)")
        else:
            lines.append(flag.serialize())
    return lines


def recipe_with_flags(recipe: RecipeT) -> RecipeT:
    """``recipe`` with the training flags given (unset flags keep its values); another
    ``--epochs`` without ``--warmup_epochs`` keeps the warm-up's share of training."""
    if EPOCHS.value is not None and WARMUP_EPOCHS.value is None:
        fraction = recipe.warmup_epochs / recipe.epochs
        recipe = recipe.with_overrides(warmup_epochs=fraction * max(1, EPOCHS.value))
    return recipe.with_overrides(
        epochs=EPOCHS.value,
        batch_size=BATCH_SIZE.value,
        learning_rate=LEARNING_RATE.value,
        weight_decay=WEIGHT_DECAY.value,
        schedule=SCHEDULE.value,
        warmup_epochs=WARMUP_EPOCHS.value,
        label_smoothing=LABEL_SMOOTHING.value,
        test_flips=TEST_FLIPS.value,
    ).check()


def apply_threads() -> int:
    """``torch.set_num_threads(--threads)`` when the flag is given; returns the thread count."""
    if THREADS.value is not None:
        torch.set_num_threads(THREADS.value)
    return torch.get_num_threads()


def parse_splits(value: str, num_splits: int) -> list[int]:
    """``'all'`` -> every split; ``'3'`` or ``'0,4,7'`` -> those; anything else is a clear error."""
    if value.strip().lower() == "all":
        return list(range(num_splits))
    try:
        splits = [int(part) for part in value.split(",")]
    except ValueError:
        raise ValueError(f"--split={value!r}: use 'all', an index, or indices like 0,3,5") from None
    bad = [s for s in splits if not 0 <= s < num_splits]
    if bad:
        raise ValueError(f"--split={value}: split {bad[0]} does not exist (0 to {num_splits - 1})")
    return splits


def default_output_dir(method: str, dataset: str) -> Path:
    """``runs/<method>/<dataset>-<YYYYmmdd-HHMMSS>`` under the current directory."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S-%f")
    return Path("runs") / method / f"{Path(dataset).name}-{stamp}"
