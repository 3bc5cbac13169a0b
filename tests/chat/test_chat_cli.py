"""`outboard chat` driven over a pipe (each stdin line a user message, replies on stdout).

Against the references (pinned):
- every prompt the chat renders (--show-prompt) equals jinja2 rendering the GGUF's own
  tokenizer.chat_template (read with the gguf package), configured as transformers does;
- every greedy reply equals llama.cpp's (llama-cpp-python) greedy decoding of that same prompt,
  tokenized by llama.cpp, with the same stop rule (an end-of-generation token, or -n tokens);
- the tokens a turn evaluates are those past the longest common prefix of the cache (previous
  prompt + reply, tokenized by llama.cpp) and the new prompt;
- a conversation written by /save renders with `outboard template` as jinja2 renders it.
Mechanics (/reset, /load, Ctrl-C mid-answer, the fallback template, a too-small context) run on
stories260K, which has no chat template, and on SmolLM2 where an answer must be long enough.
"""
import functools
import json
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
BUILD = os.environ.get("OB_BUILD", os.path.join(ROOT, "build"))
SHARED = os.environ.get("OB_SHARED", os.path.join(ROOT, "..", "shared"))
OUTBOARD = os.path.join(BUILD, "outboard")
SMOLLM2 = os.path.join(ROOT, "models", "SmolLM2-135M-Instruct.Q4_1.gguf")
BAND = 0.02  # near tie: top-2 gap under 2% of the logit range (see tests/model/test_smollm2.py)

sys.path.insert(0, HERE)
import gen_template_goldens as gen  # noqa: E402

PROMPT_RE = re.compile(r"--- prompt \((\d+) tokens\) ---\n(.*?)\n--- end of prompt ---\n", re.S)
TURN_RE = re.compile(r"chat: turn (\d+): prompt (\d+) tokens \((\d+) cached, (\d+) evaluated")
IDS_RE = re.compile(r"chat: reply ids:([ \d]*)\n")


@pytest.fixture(scope="module")
def smollm2():
    if not os.path.exists(SMOLLM2):
        pytest.skip(f"{SMOLLM2} absent: run scripts/fetch-smollm2.sh")
    return SMOLLM2


@pytest.fixture(scope="module")
def stories():
    path = os.path.join(SHARED, "models", "stories260K.gguf")
    if not os.path.exists(path):
        pytest.skip(f"{path} absent (OB_SHARED)")
    return path


def chat(model, lines, *args, timeout=300, status=0):
    """Runs `outboard chat` on piped lines; status: the exit status expected (1 when a turn
    is expected to go unanswered)."""
    proc = subprocess.run([OUTBOARD, "chat", "-m", model, "--threads", "2", *map(str, args)],
                          input="".join(line + "\n" for line in lines), capture_output=True,
                          text=True, timeout=timeout)
    assert proc.returncode == status, proc.stderr
    return proc


@functools.lru_cache(maxsize=None)
def gguf_template(model):
    """The template and BOS/EOS texts from the gguf package's reader, once per file: it parses
    every key, a big vocabulary's strings one by one (seconds per call)."""
    import gguf

    reader = gguf.GGUFReader(model)

    def field(key):
        f = reader.fields.get(key)
        return None if f is None else f.contents()

    tokens = field("tokenizer.ggml.tokens")
    bos, eos = field("tokenizer.ggml.bos_token_id"), field("tokenizer.ggml.eos_token_id")
    return (field("tokenizer.chat_template"), tokens[bos] if bos is not None else None,
            tokens[eos] if eos is not None else None)


def jinja(model, messages, add_generation_prompt):
    source, bos, eos = gguf_template(model)
    kind, text = gen.render(source, {"messages": messages,
                                     "add_generation_prompt": add_generation_prompt}, bos, eos)
    assert kind == "ok", text
    return text


def llama_greedy(llm, prompt_ids, n):
    """llama.cpp greedy decoding: (ids, the step and gap/range where a near tie occurred)."""
    import llama_cpp

    llm.reset()
    llm.eval(prompt_ids)
    out, ties = [], []
    for step in range(n):
        logits = np.array(llm.scores[llm.n_tokens - 1])
        top2 = np.sort(logits)[-2:]
        if top2[1] - top2[0] < BAND * (logits.max() - logits.min()):
            ties.append(step)
        tok = int(np.argmax(logits))
        if llama_cpp.llama_vocab_is_eog(llm._model.vocab, tok):
            break
        out.append(tok)
        if step + 1 < n:
            llm.eval([tok])
    return out, ties


def test_smollm2_prompts_and_replies_match_references(smollm2, tmp_path):
    llama_cpp = pytest.importorskip("llama_cpp")
    n = 32
    system = "You are a helpful assistant. Answer briefly."
    users = ["What is the capital of France?", "And of Germany?", "Name a river that flows "
             "through both countries."]
    saved = tmp_path / "conv.json"
    proc = chat(smollm2, users + [f"/save {saved}"], "--temp", 0, "-n", n, "--ctx", 1024,
                "--system", system, "--show-prompt", "--verbose")
    prompts = PROMPT_RE.findall(proc.stderr)
    turns = TURN_RE.findall(proc.stderr)
    ids = [[int(t) for t in m.split()] for m in IDS_RE.findall(proc.stderr)]
    assert len(prompts) == len(turns) == len(ids) == 3, proc.stderr
    messages = json.loads(saved.read_text())["messages"]
    assert [m["role"] for m in messages] == ["system"] + ["user", "assistant"] * 3
    assert messages[0]["content"] == system
    assert [messages[1 + 2 * i]["content"] for i in range(3)] == users

    # One thread: llama.cpp's workers spin, which costs dearly on a busy two-core machine.
    llm = llama_cpp.Llama(model_path=smollm2, n_ctx=1024, n_threads=1, logits_all=True,
                          verbose=False)
    cache = []
    compared = 0
    for i, ((count, text), turn) in enumerate(zip(prompts, turns)):
        # The prompt: jinja2 over the same messages (our replies as the conversation kept them).
        assert text == jinja(smollm2, messages[: 2 + 2 * i], True), f"turn {i + 1}"
        ref_ids = llm.tokenize(text.encode(), add_bos=True, special=True)
        assert int(count) == len(ref_ids), f"turn {i + 1}: prompt tokens"
        # Prompt-cache reuse: only what follows the common prefix with the cache is evaluated.
        common = 0
        while common < min(len(cache), len(ref_ids)) and cache[common] == ref_ids[common]:
            common += 1
        common = min(common, len(ref_ids) - 1)
        assert int(turn[3]) == len(ref_ids) - common, f"turn {i + 1}: evaluated tokens"
        # The reply: llama.cpp greedy on the same prompt.
        want, ties = llama_greedy(llm, ref_ids, n)
        got = ids[i]
        if got != want:
            first = next(k for k in range(min(len(got), len(want)) + 1)
                         if k >= min(len(got), len(want)) or got[k] != want[k])
            assert first in ties, f"turn {i + 1}: replies part at token {first}: {got} vs {want}"
            # The conversation goes on with outboard's reply (the prompts above are rendered
            # from the saved messages), so later turns stay comparable.
            print(f"turn {i + 1}: parted at a near tie (token {first}); going on with ours")
            want = got
        reply = llm.detokenize(want).decode()
        assert messages[2 + 2 * i]["content"] == reply.strip(), f"turn {i + 1}"
        cache = ref_ids + want[: n - 1] if len(want) == n else ref_ids + want
        compared += 1
    llm.close()
    assert compared >= 2
    assert int(turns[1][3]) < int(turns[1][1]) // 2  # the second turn reused most of its prompt

    # /save: the file renders with `outboard template` as jinja2 renders it.
    out = subprocess.run([OUTBOARD, "template", "-m", smollm2, "--input", str(saved)],
                         capture_output=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.decode() == jinja(smollm2, messages, False)


def test_fallback_template_reset_save_load(stories, tmp_path):
    saved = tmp_path / "saved.json"
    proc = chat(stories, ["Hello there", "How are you?", f"/save {saved}", "/reset",
                          "Tell me a story", f"/load {saved}", "Go on"],
                "--temp", 0, "-n", 6, "--system", "Be kind.", "--show-prompt")
    assert "has no chat template" in proc.stderr and "ChatML" in proc.stderr
    prompts = [p[1] for p in PROMPT_RE.findall(proc.stderr)]
    assert len(prompts) == 4
    sys_part = "<|im_start|>system\nBe kind.<|im_end|>\n"
    assert prompts[0] == sys_part + "<|im_start|>user\nHello there<|im_end|>\n" \
        "<|im_start|>assistant\n"
    assert prompts[1].startswith(prompts[0]) and "How are you?" in prompts[1]
    # After /reset only the system prompt is left.
    assert prompts[2] == sys_part + "<|im_start|>user\nTell me a story<|im_end|>\n" \
        "<|im_start|>assistant\n"
    # /load continues the saved conversation.
    saved_msgs = json.loads(saved.read_text())["messages"]
    assert [m["role"] for m in saved_msgs] == ["system", "user", "assistant", "user",
                                               "assistant"]
    assert "Tell me a story" not in prompts[3]
    assert prompts[3].startswith(prompts[1]) and prompts[3].endswith(
        "<|im_start|>user\nGo on<|im_end|>\n<|im_start|>assistant\n")
    assert len(proc.stdout.splitlines()) >= 4
    assert "saved 5 messages" in proc.stderr and "loaded 5 messages" in proc.stderr


THINK_TEMPLATE = """{%- for m in messages %}<|im_start|>{{ m.role }}
{{ m.content }}<|im_end|>
{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant
<think>
{% endif %}"""


def test_reasoning_kept_apart(stories, tmp_path):
    """A template whose generation prompt opens <think>: everything the model writes before
    </think> is reasoning, so stdout gets an empty reply, stderr the reasoning, and the saved
    conversation keeps it in reasoning_content, out of content."""
    tmpl = tmp_path / "think.jinja"
    tmpl.write_text(THINK_TEMPLATE)
    saved = tmp_path / "think.json"
    proc = chat(stories, ["Hello", f"/save {saved}"], "--template", tmpl, "--temp", 0, "-n", 6,
                "--verbose")
    assert "output format hermes" in proc.stderr
    assert proc.stdout == "\n"
    reply = json.loads(saved.read_text())["messages"][1]
    assert reply["content"] == "" and reply["reasoning_content"]
    assert reply["reasoning_content"] in proc.stderr


def test_context_overflow(stories):
    long_line = " ".join(["word"] * 300)
    lines = [f"Message number {i} is about a cat and a dog." for i in range(6)]
    # the long message goes unanswered, which a script sees in the exit status
    proc = chat(stories, lines[:3] + [long_line] + lines[3:], "--temp", 0, "-n", 8, "--ctx",
                96, "--show-prompt", status=1)
    assert "does not fit" in proc.stderr and "context holds 96" in proc.stderr
    assert "dropped the" in proc.stderr
    prompts = PROMPT_RE.findall(proc.stderr)
    assert len(prompts) == 6  # every message but the long one was answered
    assert all(int(count) <= 96 - 8 for count, _ in prompts)
    assert "Message number 5" in prompts[-1][1] and "Message number 0" not in prompts[-1][1]
    # No reply limit: the answer runs into the end of the context, and the next turn makes room.
    proc = chat(stories, ["Once upon a time", "And then?"], "--temp", 0, "--ctx", 64,
                "--show-prompt", "--verbose")
    assert proc.stderr.count("the context is full (64 tokens)") >= 1
    assert "dropped the 2 oldest messages" in proc.stderr
    turns = TURN_RE.findall(proc.stderr)
    assert len(turns) == 2 and all(int(t[1]) < 64 for t in turns)


def test_sigint_stops_the_answer(smollm2, tmp_path):
    saved = tmp_path / "after.json"
    p = subprocess.Popen([OUTBOARD, "chat", "-m", smollm2, "--threads", "2", "--temp", "0",
                          "-n", "400", "--ignore-eos"], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    p.stdin.write(b"Write a long story about a dragon who learns to fly.\n")
    p.stdin.flush()
    first = os.read(p.stdout.fileno(), 64)  # the answer is streaming
    assert first
    p.send_signal(signal.SIGINT)
    time.sleep(0.2)
    out, err = p.communicate(input=f"/save {saved}\n".encode(), timeout=600)
    assert p.returncode == 0, err.decode()
    assert b"interrupted" in err
    msgs = json.loads(saved.read_text())["messages"]
    assert [m["role"] for m in msgs] == ["user", "assistant"]
    partial = msgs[1]["content"]
    assert partial and len(partial) < 1500  # far from 400 tokens: it stopped early
    assert (first + out).decode(errors="replace").strip().startswith(partial[:20])


def test_bad_input(stories, tmp_path):
    proc = subprocess.run([OUTBOARD, "chat", "-m", str(tmp_path / "missing.gguf")],
                          input="", capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and "missing.gguf" in proc.stderr
    proc = subprocess.run([OUTBOARD, "chat", "-m", stories, "--template",
                           str(tmp_path / "none.jinja")], input="", capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 1 and "none.jinja" in proc.stderr
    bad = tmp_path / "bad.jinja"
    bad.write_text("{% for m in messages %}{{ m.content | nosuchfilter }}{% endfor %}")
    proc = subprocess.run([OUTBOARD, "chat", "-m", stories, "--template", str(bad)], input="",
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and "bad.jinja:1:" in proc.stderr, proc.stderr
    failing = tmp_path / "failing.jinja"  # fails only while rendering a second message
    failing.write_text("{% for m in messages %}{{ m.content + (loop.index0 if loop.index0 > 1 "
                       "else '') }}{% endfor %}")
    proc = chat(stories, ["Hello", "Again", "/help"], "--template", failing, "-n", 4,
                "--show-prompt", status=1)
    assert "the template failed" in proc.stderr and "failing.jinja" in proc.stderr
    assert "/reset" in proc.stderr  # the chat went on: /help answered
    assert len(PROMPT_RE.findall(proc.stderr)) == 1
    raising = tmp_path / "raise.jinja"
    raising.write_text("{% if messages|length > 1 %}{{ raise_exception('only one message') }}"
                       "{% endif %}{{ messages[0].content }}")
    proc = chat(stories, ["Hello", "Again"], "--template", raising, "-n", 4, "--show-prompt",
                status=1)
    assert "only one message" in proc.stderr
    assert len(PROMPT_RE.findall(proc.stderr)) == 1  # the first answered, the second refused
    assert "unknown command" in chat(stories, ["/nosuch"]).stderr


def test_terminal_editing_and_history(stories, tmp_path):
    """On a terminal (a pty): prompts, cursor keys, history, Ctrl-W/A/E/C/D, UTF-8 editing."""
    pty = pytest.importorskip("pty")
    import select

    saved = tmp_path / "typed.json"
    tmpl = tmp_path / "think.jinja"
    tmpl.write_text(THINK_TEMPLATE)
    pid, fd = pty.fork()
    if pid == 0:
        os.environ["TERM"] = "xterm"
        os.environ.pop("NO_COLOR", None)
        os.execv(OUTBOARD, [OUTBOARD, "chat", "-m", stories, "--temp", "0", "-n", "4",
                            "--threads", "1", "--template", str(tmpl)])

    def read_for(seconds):
        out, end = b"", time.time() + seconds
        while time.time() < end:
            if select.select([fd], [], [], 0.05)[0]:
                try:
                    out += os.read(fd, 65536)
                except OSError:
                    break
        return out

    def until_prompt(limit=60):
        """Reads until a fresh prompt follows a new row (the line was taken), so keys never
        arrive while an answer runs and the terminal is not in raw mode."""
        out, end = b"", time.time() + limit
        while time.time() < end:
            out += read_for(0.05)
            tail = out[out.rfind(b"\n"):] if b"\n" in out else b""
            if b"\x1b[1m> " in tail or b"\x1b[1m. " in tail:
                break
        return out

    banner = until_prompt()
    keys = [b"abc\x1b[D\x1b[DX\r",                    # left, left, insert: aXbc
            b"\x1b[A\r",                               # up: the same line again
            b"hello world\x17there\r",                 # Ctrl-W drops "world"
            b"junk\x03",                               # Ctrl-C clears a typed line
            b"xy\x01Z\x05W\x7f\r",                     # Ctrl-A, Ctrl-E, backspace: Zxy
            "été".encode() + b"\x1b[D\x1b[D\x7f\r",    # a two-byte character deleted whole
            b"line one \\\r", b"line two\r",           # a continued message
            f"/save {saved}\r".encode()]
    screen = b""
    for k in keys:
        os.write(fd, k)
        screen += until_prompt()
    os.write(fd, b"\x03")  # Ctrl-C at an empty prompt leaves
    screen += read_for(0.5)
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    assert b"/help" in banner
    users = [m["content"] for m in json.loads(saved.read_text())["messages"]
             if m["role"] == "user"]
    assert users == ["aXbc", "aXbc", "hello there", "Zxy", "té", "line one \nline two"]
    assert b"^C" in screen
    assert b"\x1b[2m" in screen  # the reasoning, dimmed


def test_default_model_builtin_gemma_template(tmp_path):
    """The default model (Gemma 3 270M) carries no template: the chat says it uses the built-in
    Gemma 3 one, renders as jinja2 renders the maker's template, sends one BOS (the template
    writes it and the vocabulary would add it: llama.cpp strips the text one) and answers as
    llama.cpp's greedy decoding does."""
    llama_cpp = pytest.importorskip("llama_cpp")
    model = os.environ.get("OB_DEFAULT_MODEL",
                           os.path.join(ROOT, "models", "gemma-3-270m-q4_k_m.gguf"))
    if not os.path.exists(model):
        pytest.skip(f"{model} absent: run scripts/fetch-default-model.sh")
    from test_template_golden import GEMMA3

    n = 8
    proc = chat(model, ["What is the capital of France?"], "--temp", 0, "-n", n, "--ctx", 256,
                "--show-prompt", "--verbose", "--system", "Answer in one word.")
    assert "using the built-in Gemma 3 template" in proc.stderr
    (count, text), = PROMPT_RE.findall(proc.stderr)
    _, bos, eos = gguf_template(model)
    kind, want = gen.render(GEMMA3, {"messages": [
        {"role": "system", "content": "Answer in one word."},
        {"role": "user", "content": "What is the capital of France?"}],
        "add_generation_prompt": True}, bos, eos)
    assert kind == "ok" and text == want
    llm = llama_cpp.Llama(model_path=model, n_ctx=256, n_threads=1, logits_all=True,
                          verbose=False)
    ids = llm.tokenize(text[len(bos):].encode(), add_bos=True, special=True)
    assert int(count) == len(ids) and ids.count(llm.token_bos()) == 1
    want_ids, ties = llama_greedy(llm, ids, n)
    llm.close()
    got = [int(t) for t in IDS_RE.findall(proc.stderr)[0].split()]
    print("outboard", got, "llama.cpp", want_ids)
    if got != want_ids:
        first = next(k for k in range(len(got) + 1)
                     if k >= min(len(got), len(want_ids)) or got[k] != want_ids[k])
        assert first in ties, f"replies part at token {first}: {got} vs {want_ids}"
