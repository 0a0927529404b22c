"""Fixtures: tiny MNIST/EMNIST idx files in torchvision's layout, and small trained models; markers.

`slow` and `browser` are given here to tests whose files do not mark them themselves, so that
`pytest -m "not slow and not notebook and not browser"` (`make test-quick`) runs in about a minute.
"""

from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent

# Tests that take seconds each: they read the full test files to re-measure a shipped checkpoint,
# start the command line or the web server in a new Python, or build huge images. Listed here
# because their files are shared with work in progress; `make test` runs them all.
SLOW = {
    "test_predict.py": (
        "test_the_shipped_checkpoint_reproduces_its_recorded_accuracy",
        "test_the_shipped_case_checkpoint_reproduces_its_recorded_accuracy",
        "test_the_shipped_line_reader_reproduces_its_recorded_error_rate",
        "test_a_closed_pipe_ends_the_command_quietly",
        "test_a_file_name_that_is_not_utf8_is_escaped_and_the_next_files_answered",
        "test_a_full_disk_on_stdout_gives_one_sentence",
        "test_a_jpeg_with_damaged_exif_does_not_stop_the_others",
        "test_an_output_that_is_not_finite_is_refused_never_shown",
        "test_cli_answers_from_any_folder_with_relative_paths",
        "test_cli_bad_inputs_do_not_stop_the_others",
        "test_cli_case_sensitive_json_keys_stay_the_same",
        "test_cli_huge_image",
        "test_cli_json_with_the_default_checkpoint",
        "test_cli_text_output",
        "test_cli_wrong_checkpoint",
    ),
    "test_checkpoint.py": (
        "test_a_save_killed_for_real_leaves_a_scratch_file_the_next_save_removes",
        "test_two_million_class_names_are_refused_before_any_model_is_built",
    ),
    "test_webapp_server.py": (
        "test_a_port_in_use_is_one_sentence",
        "test_a_port_out_of_range_is_one_sentence",
        "test_chunked_or_missing_length_is_refused_with_411",
        "test_help_shows_the_defaults",
        "test_pictures_over_16_megapixels_are_refused_before_decoding",
        "test_slow_bodies_do_not_delay_drawings",
        "test_the_server_runs_with_few_malloc_arenas_and_few_threads",
    ),
    "test_crnn.py": (
        "test_a_tiny_crnn_learns_to_read_a_few_lines",
        "test_train_lines_is_seeded_mixes_its_parts_and_keeps_the_best",
    ),
    "test_model_training.py": ("test_same_seed_same_numbers",),
    "test_fuzz_inputs.py": (
        "test_every_damaged_file_is_prepared_or_refused_in_one_sentence",
        "test_predict_many_answers_every_damaged_file",
    ),
    "test_preprocess.py": ("test_a_59_megapixel_rgba_png_is_prepared_in_bounded_memory",),
}
BROWSER_FILES = ("test_browser.py",)


@pytest.hookimpl(tryfirst=True)  # before pytest's own -m selection
def pytest_collection_modifyitems(config, items):
    for item in items:
        name = Path(str(item.fspath)).name
        if name in BROWSER_FILES:
            item.add_marker(pytest.mark.browser)
        if getattr(item, "originalname", None) in SLOW.get(name, ()):
            item.add_marker(pytest.mark.slow)


def write_idx(path, array):
    """Write a uint8 array as an idx file, the format of the MNIST and EMNIST files."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(header + array.tobytes())


def blob(rng, top_heavy=False):
    """A 28x28 character-like image: a bright blob of random size and place."""
    img = np.zeros((28, 28), np.uint8)
    h, w = rng.integers(8, 22), rng.integers(4, 22)
    y, x = rng.integers(0, 28 - h), rng.integers(0, 28 - w)
    img[y : y + h, x : x + w] = 255
    if top_heavy:
        img[y : y + 2, x : x + w] = 255
    return img


def make_dataset_root(root, n_mnist=40, n_emnist=52, seed=0):
    """A data root holding small but valid MNIST and EMNIST Letters idx files."""
    rng = np.random.default_rng(seed)
    for prefix, n in (("train", n_mnist), ("t10k", n_mnist // 2)):
        write_idx(root / "MNIST" / "raw" / f"{prefix}-images-idx3-ubyte", np.stack([blob(rng) for _ in range(n)]))
        write_idx(root / "MNIST" / "raw" / f"{prefix}-labels-idx1-ubyte", np.arange(n) % 10)
    for split, n in (("train", n_emnist), ("test", n_emnist // 2)):
        upright = np.stack([blob(rng) for _ in range(n)])
        # Stored transposed, exactly like the real EMNIST files.
        write_idx(root / "EMNIST" / "raw" / f"emnist-letters-{split}-images-idx3-ubyte", upright.transpose(0, 2, 1))
        write_idx(root / "EMNIST" / "raw" / f"emnist-letters-{split}-labels-idx1-ubyte", np.arange(n) % 26 + 1)
    return root


@pytest.fixture
def data_dir(tmp_path):
    return make_dataset_root(tmp_path / "data")


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory):
    """An untrained baseline saved as a checkpoint: enough to test plumbing, not accuracy."""
    from helpers.checkpoint import save_checkpoint
    from helpers.model import build_model

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pt"
    save_checkpoint(path, build_model("baseline"), "baseline", metrics={"overall_acc": 0.0})
    return path
