"""Split GGUF sets (NAME-00001-of-0000N.gguf ...) load as one model: checked against llama.cpp,
which reads the same set (llama-cpp-python, pinned), and with parts missing or mixed up."""
import os
import shutil
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from test_pull import OUTBOARD, STORIES, split_set  # noqa: E402

PROMPT = "Once upon a time"


def run(model, n=12):
    return subprocess.run([OUTBOARD, "run", "-m", model, "-p", PROMPT, "-n", str(n), "--temp",
                           "0", "--threads", "1"], capture_output=True, text=True, timeout=120)


@pytest.fixture
def parts(tmp_path):
    if not os.path.exists(STORIES):
        pytest.skip("shared models missing")
    return split_set(STORIES, str(tmp_path / "stories"), 3)


def test_a_set_generates_what_llama_cpp_generates_from_it(parts):
    llama_cpp = pytest.importorskip("llama_cpp")
    ref = llama_cpp.Llama(parts[0], n_ctx=64, seed=0, verbose=False)
    want = ref(PROMPT, max_tokens=12, temperature=0)["choices"][0]["text"]
    r = run(parts[0])
    assert r.returncode == 0, r.stderr
    assert r.stdout.rstrip("\n") == PROMPT + want
    assert r.stdout == run(STORIES).stdout  # and what the file it was split from generates


def test_a_missing_part_is_named(parts):
    os.remove(parts[2])
    r = run(parts[0])
    assert r.returncode == 1 and parts[2] in r.stderr and "No such file" in r.stderr


def test_a_later_part_given_first_says_which_to_load(parts):
    r = run(parts[1])
    assert r.returncode == 1
    assert "part 2 of a 3-part split model" in r.stderr and "-00001-of-00003.gguf" in r.stderr


def test_a_part_of_another_set_is_refused(parts, tmp_path):
    other = split_set(STORIES, str(tmp_path / "other"), 2)
    shutil.copy(other[1], parts[1])  # split.no 1 of 2 where 1 of 3 belongs
    r = run(parts[0])
    assert r.returncode == 1 and "split.no 1 of 2, expected 1 of 3" in r.stderr


def test_a_set_whose_first_part_is_renamed_is_refused(parts, tmp_path):
    lone = tmp_path / "renamed.gguf"
    shutil.copy(parts[0], lone)
    r = run(str(lone))
    assert r.returncode == 1 and "does not end in -00001-of-00003.gguf" in r.stderr
