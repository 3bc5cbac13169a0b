"""The outboard binary against hostile command lines: each case once reproduced a defect.

- Files named by flags are read by one reader with a size limit per use: /dev/zero as -f,
  --file, --system-file, --template or --input (and as standard input) fails at once with the
  limit, the flag and the file named, instead of growing until killed.
- A directory given where a file is read is refused by name (it used to tokenize as "").
- A named pipe given as the model is refused within 2 s (the open used to block forever);
  so are directories, devices, empty and truncated files, each with a clear message.
- Every numeric option is parsed strictly: "abc", "1x", "", overflow, NaN and out-of-range
  values exit with status 2 and a message naming the flag (they used to run as 0 or a prefix).
- --detokenize ids past int32 or the vocabulary are named; --ctx above the trained context is
  warned about before anything is allocated.

Most cases need no model: the error comes first. Those that do use stories260K (OB_SHARED).
"""
import os
import subprocess

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
BUILD = os.environ.get("OB_BUILD", os.path.join(ROOT, "build"))
SHARED = os.environ.get("OB_SHARED", os.path.join(ROOT, "..", "shared"))
OUTBOARD = os.path.join(BUILD, "outboard")
NO_MODEL = "/nonexistent/never-opened.gguf"  # where the error must come before the model


@pytest.fixture(scope="module")
def stories():
    path = os.path.join(SHARED, "models", "stories260K.gguf")
    if not os.path.exists(path):
        pytest.skip(f"{path} absent (OB_SHARED)")
    return path


def outboard(*args, stdin=subprocess.DEVNULL, timeout=10):
    """Runs the binary; a hang shows as subprocess.TimeoutExpired, which fails the test."""
    return subprocess.run([OUTBOARD, *map(str, args)], stdin=stdin, capture_output=True,
                          text=True, errors="replace", timeout=timeout)


@pytest.fixture()
def conv(tmp_path):
    path = tmp_path / "conv.json"
    path.write_text('{"messages": [{"role": "user", "content": "hi"}]}')
    return str(path)


@pytest.fixture()
def jinja(tmp_path):
    path = tmp_path / "t.jinja"
    path.write_text("{% for m in messages %}{{ m.content }}{% endfor %}")
    return str(path)


# ---- size limits ----------------------------------------------------------------------------

LIMIT_CASES = [
    # (argv after the binary, flag, limit in MiB)
    (["run", "-m", NO_MODEL, "-f", "/dev/zero"], "-f", 64),
    (["tokenize", "-m", NO_MODEL, "-f", "/dev/zero"], "--file", 64),
    (["tokenize", "-m", NO_MODEL, "--file", "/dev/zero"], "--file", 64),
    (["chat", "-m", NO_MODEL, "--system-file", "/dev/zero"], "--system-file", 16),
    (["chat", "-m", NO_MODEL, "--template", "/dev/zero"], "--template", 16),
    (["template", "--file", "/dev/zero", "--input", "/nonexistent.json"], "--file", 16),
]


@pytest.mark.parametrize("args,flag,mib", LIMIT_CASES, ids=lambda x: " ".join(x)
                         if isinstance(x, list) else str(x))
def test_dev_zero_stops_at_the_limit(args, flag, mib):
    proc = outboard(*args)
    assert proc.returncode == 1, proc.stderr
    assert f"{flag} /dev/zero: larger than {mib} MiB ({mib << 20} bytes), the limit for {flag}" \
        in proc.stderr, proc.stderr


def test_conversation_input_is_limited(jinja):
    proc = outboard("template", "--file", jinja, "--input", "/dev/zero")
    assert proc.returncode == 1
    assert "--input /dev/zero: larger than 64 MiB" in proc.stderr, proc.stderr


@pytest.mark.parametrize("args", [
    ["run", "-m", NO_MODEL, "-f", "-"],
    ["tokenize", "-m", NO_MODEL, "-f", "-"],
    ["template", "--file", "-", "--input", "/nonexistent.json"],
], ids=lambda a: a[0])
def test_stdin_has_the_same_limit(args):
    with open("/dev/zero", "rb") as zero:
        proc = outboard(*args, stdin=zero)
    assert proc.returncode == 1
    assert "- (standard input): larger than" in proc.stderr, proc.stderr


def test_stdin_refused_where_chat_reads_messages():
    proc = outboard("chat", "-m", NO_MODEL, "--system-file", "-")
    assert proc.returncode == 1
    assert "standard input is not accepted for --system-file" in proc.stderr, proc.stderr


def test_chat_load_is_limited(stories):
    proc = subprocess.run([OUTBOARD, "chat", "-m", stories, "--threads", "1"],
                          input="/load /dev/zero\n", capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr  # the chat goes on after a failed /load
    assert "/load /dev/zero: larger than 64 MiB" in proc.stderr, proc.stderr


# ---- directories and other kinds of file ----------------------------------------------------

DIR_CASES = [
    (["tokenize", "-m", NO_MODEL, "-f", "{dir}"], "--file"),
    (["run", "-m", NO_MODEL, "-f", "{dir}"], "-f"),
    (["chat", "-m", NO_MODEL, "--system-file", "{dir}"], "--system-file"),
    (["chat", "-m", NO_MODEL, "--template", "{dir}"], "--template"),
    (["template", "--file", "{dir}", "--input", "/nonexistent.json"], "--file"),
]


@pytest.mark.parametrize("args,flag", DIR_CASES, ids=lambda x: " ".join(x)
                         if isinstance(x, list) else str(x))
def test_directory_is_refused(tmp_path, args, flag):
    proc = outboard(*[a.format(dir=tmp_path) for a in args])
    assert proc.returncode == 1, proc.stderr
    assert f"{flag} {tmp_path}: not a regular file (a directory)" in proc.stderr, proc.stderr


def test_conversation_directory_is_refused(tmp_path, jinja):
    proc = outboard("template", "--file", jinja, "--input", tmp_path)
    assert proc.returncode == 1
    assert f"--input {tmp_path}: not a regular file (a directory)" in proc.stderr, proc.stderr


# ---- model files that are not model files ---------------------------------------------------

@pytest.fixture()
def fifo(tmp_path):
    path = tmp_path / "model.gguf"
    os.mkfifo(path)
    return str(path)


FIFO_CASES = [
    ["info", "{m}"],
    ["run", "-m", "{m}", "-p", "hi"],
    ["chat", "-m", "{m}"],
    ["tokenize", "-m", "{m}", "hi"],
    ["template", "-m", "{m}", "--input", "/nonexistent.json"],
    ["bench", "-m", "{m}", "-p", "1", "-n", "1", "-r", "1"],
    ["eval", "-m", "{m}", "--tokens", "1"],
    ["quantize", "{m}", "{out}", "Q8_0"],
    ["synth", "--vocab", "{m}", "-o", "{out}"],
]


@pytest.mark.parametrize("args", FIFO_CASES, ids=lambda a: a[0])
def test_fifo_model_fails_at_once(tmp_path, fifo, args):
    out = tmp_path / "out.gguf"
    proc = outboard(*[a.format(m=fifo, out=out) for a in args], timeout=2)
    assert proc.returncode == 1, proc.stderr
    assert f"{fifo}: not a regular file (a named pipe)" in proc.stderr, proc.stderr
    assert not out.exists()


def test_not_a_model_file(tmp_path):
    empty = tmp_path / "empty.gguf"
    empty.write_bytes(b"")
    short = tmp_path / "short.gguf"
    short.write_bytes(b"GGUF\x03\x00")
    cases = [
        ("/dev/zero", "/dev/zero: not a regular file (a character device)"),
        ("/dev/null", "/dev/null: not a regular file (a character device)"),
        (str(tmp_path), f"{tmp_path}: not a regular file (a directory)"),
        (str(empty), f"{empty}: truncated at byte offset 0"),
        (str(short), f"{short}: truncated at byte offset 4"),
    ]
    for path, message in cases:
        for args in (["info", path], ["run", "-m", path, "-p", "hi"]):
            proc = outboard(*args, timeout=5)
            assert proc.returncode == 1, (args, proc.stderr)
            assert message in proc.stderr, (args, proc.stderr)


# ---- numbers --------------------------------------------------------------------------------

M = NO_MODEL
NUMBER_CASES = [
    # (argv after the binary, the words the message must hold)
    (["run", "-m", M, "-p", "x", "-n", "abc"], "-n: 'abc' is not an integer"),
    (["run", "-m", M, "-p", "x", "-n", "1x"], "-n: '1x' is not an integer"),
    (["run", "-m", M, "-p", "x", "-n", "-1"], "-n: -1 is outside [0, 16777216]"),
    (["run", "-m", M, "-p", "x", "-n", ""], "-n: '' is not an integer"),
    (["run", "-m", M, "-p", "x", "-n", " 5"], "-n: ' 5' is not an integer"),
    (["run", "-m", M, "-p", "x", "-n", "99999999999999999999"], "-n: 99999999999999999999 is "
     "outside"),
    (["run", "-m", M, "-p", "x", "-n"], "-n needs a value"),
    (["run", "-m", M, "-p", "x", "--temp", "nan"], "--temp: 'nan' is not a number"),
    (["run", "-m", M, "-p", "x", "--temp", "inf"], "--temp: 'inf' is not a number"),
    (["run", "-m", M, "-p", "x", "--temp", "1e999"], "--temp: 1e999 is outside [0, 100]"),
    (["run", "-m", M, "-p", "x", "--temp", "-1"], "--temp: -1 is outside [0, 100]"),
    (["run", "-m", M, "-p", "x", "--top-k", "4x"], "--top-k: '4x' is not an integer"),
    (["run", "-m", M, "-p", "x", "--top-k", "2147483648"], "--top-k: 2147483648 is outside"),
    (["run", "-m", M, "-p", "x", "--top-p", "1.5"], "--top-p: 1.5 is outside (0, 1]"),
    (["run", "-m", M, "-p", "x", "--top-p", "0"], "--top-p: 0 is outside (0, 1]"),
    (["run", "-m", M, "-p", "x", "--min-p", "abc"], "--min-p: 'abc' is not a number"),
    (["run", "-m", M, "-p", "x", "--repeat-penalty", "0"], "--repeat-penalty: 0 is outside "
     "(0, 100]"),
    (["run", "-m", M, "-p", "x", "--seed", "-1"], "--seed: '-1' is not a non-negative integer"),
    (["run", "-m", M, "-p", "x", "--seed", "18446744073709551616"], "--seed: "
     "18446744073709551616 is outside"),
    (["run", "-m", M, "-p", "x", "--ctx", "16777217"], "--ctx: 16777217 is outside "
     "[0, 16777216]"),
    (["run", "-m", M, "-p", "x", "--ctx", "1k"], "--ctx: '1k' is not an integer"),
    (["run", "-m", M, "-p", "x", "--threads", "-2"], "--threads: -2 is outside [0, 1024]"),
    (["run", "-m", M, "-p", "x", "--device", "gpu"], "--device: 'gpu': expected cpu, cuda"),
    (["run", "-m", M, "--tokens", "1,x"], "--tokens: 'x' is not a token id"),
    (["run", "-m", M, "--tokens", "9223372036854775808"], "--tokens: id 9223372036854775808 is "
     "outside"),
    (["chat", "-m", M, "-n", "-2"], "-n: -2 is outside [-1, 16777216]"),
    (["chat", "-m", M, "-n", "lots"], "-n: 'lots' is not an integer"),
    (["chat", "-m", M, "--temp", "0.5.1"], "--temp: '0.5.1' is not a number"),
    (["chat", "-m", M, "--ctx"], "--ctx needs a value"),
    (["bench", "-m", M, "-p", "abc"], "-p: 'abc' is not an integer"),
    (["bench", "-m", M, "-n", "1e3"], "-n: '1e3' is not an integer"),
    (["bench", "-m", M, "-r", "0"], "-r: 0 is outside [1, 10000]"),
    (["bench", "-m", M, "-t", "x"], "-t: 'x' is not an integer"),
    (["eval", "-m", M, "--tokens", "1", "--chunk", "-1"], "--chunk: -1 is outside"),
    (["eval", "-m", M, "--tokens", "1", "--ctx", "abc"], "--ctx: 'abc' is not an integer"),
    (["eval", "-m", M, "--tokens", "1", "--threads", "1.5"], "--threads: '1.5' is not an "
     "integer"),
    (["eval", "-m", M, "--tokens", "1", "--batch", ""], "--batch: '' is not an integer"),
    (["quantize", "-t", "0", "a", "b", "Q8_0"], "-t: 0 is outside [1, 64]"),
    (["quantize", "--threads", "two", "a", "b", "Q8_0"], "--threads: 'two' is not an integer"),
    (["synth", "-o", "x.gguf", "--seed", "abc"], "--seed: 'abc' is not a non-negative"),
    (["synth", "-o", "x.gguf", "--swa", "-5"], "--swa: -5 is outside [0, 16777216]"),
    (["tokenize", "-m", M, "--bench", "abc", "x"], "--bench: 'abc' is not an integer"),
    (["tokenize", "-m", M, "--bench", "-1", "x"], "--bench: -1 is outside [0, 1000000]"),
    (["template", "--file", "t", "--input", "c", "--now", "abc"], "--now: 'abc' is not an "
     "integer"),
    (["template", "--file", "t", "--input", "c", "--now", "1e9"], "--now: '1e9' is not an "
     "integer"),
    (["template", "--file", "t", "--input", "c", "--now"], "--now needs a value"),
    (["info", "--kv"], "MODEL.gguf is required"),
    (["info", "--tensorz", "x.gguf"], "unknown option '--tensorz'"),
]


@pytest.mark.parametrize("args,words", NUMBER_CASES,
                         ids=[" ".join(a) for a, _ in NUMBER_CASES])
def test_bad_numbers_exit_2_naming_the_flag(args, words):
    proc = outboard(*args)
    assert proc.returncode == 2, proc.stderr
    first = proc.stderr.splitlines()[0]
    assert first == f"outboard {args[0]}: {words}" or (first.startswith(f"outboard {args[0]}: ")
                                                      and words in first), proc.stderr
    assert "usage" in proc.stderr


def test_control_bytes_stay_on_one_line():
    proc = outboard("run", "-m", M, "-p", "x", "-n", "1\n2\x1b[31m")
    assert proc.returncode == 2
    assert proc.stderr.splitlines()[0] == "outboard run: -n: '1?2?[31m' is not an integer"


def test_detokenize_ids_out_of_range(stories):
    for ids, words in [("9223372036854775808", "id 9223372036854775808 is outside [0, 511]"),
                       ("2147483648", "id 2147483648 is outside [0, 511]"),
                       ("[1, 512]", "id 512 is outside [0, 511]"),
                       ("-1", "id -1 is outside"),
                       ("1 two", "'two' is not a token id")]:
        proc = outboard("tokenize", "-m", stories, "--detokenize", "--", ids)
        assert proc.returncode == 1, (ids, proc.stderr)
        assert f"outboard tokenize: --detokenize: {words}" in proc.stderr, proc.stderr
    proc = outboard("tokenize", "-m", stories, "--detokenize", "[]")
    assert proc.returncode == 0 and proc.stdout == "\n"


def test_ctx_above_training_is_warned(stories):
    proc = outboard("run", "-m", stories, "-p", "Once", "-n", "2", "--ctx", "100000",
                    "--threads", "1", timeout=60)
    lines = proc.stderr.splitlines()
    warning = [l for l in lines if "warning: --ctx 100000" in l]
    assert warning, proc.stderr
    assert "above the 2048 tokens the model was trained on" in warning[0]
    assert "KV cache would take up to" in warning[0]
    # the library may refuse such a context itself; either way nothing ran past it silently
    assert proc.returncode in (0, 1), proc.stderr


def test_directory_tokenizes_nothing_any_more(tmp_path, stories):
    proc = outboard("tokenize", "-m", stories, "-f", tmp_path)
    assert proc.returncode == 1 and "not a regular file (a directory)" in proc.stderr
    assert proc.stdout == ""


# ---- output order ---------------------------------------------------------------------------

def test_run_text_ends_its_line_before_the_speed_line(stories):
    """stdout and stderr on one pipe: the generated text's line ends before the speed line
    starts, as a terminal shows it."""
    proc = subprocess.run([OUTBOARD, "run", "-m", stories, "-p", "Once upon a time", "-n", "8",
                           "--threads", "1"], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=30)
    assert proc.returncode == 0, proc.stdout
    lines = proc.stdout.splitlines()
    assert lines[-1].startswith("prompt: ") and "| generated: 8 tokens" in lines[-1], lines
    assert lines[-2].startswith("Once upon a time"), lines
    assert "prompt: " not in lines[-2]
