"""A real `outboard serve` with its layers split between the CPU and a Vulkan device (Mesa's
lavapipe in CI): `--device vulkan:0 --gpu-layers 1` on a synthetic llama file answers greedy
requests as the CPU alone does, its startup line names the placement, and /metrics counts the
hidden-state copies between the two backends; a mixture-of-experts model runs there with its
experts on the host (streaming a prompt's busy experts to the device when asked) or on the
device;
--device-policy gpu-required refuses a model left to the CPU. Skipped where no Vulkan device
is listed.
"""
import json
import os
import subprocess
import time

import gguf
import pytest

from test_serve_batching import metric
from test_serve_http import OUTBOARD, Server


def vulkan_listed():
    out = subprocess.run([OUTBOARD, "devices"], capture_output=True, text=True).stdout
    return any(line.lstrip().startswith("vulkan:0") for line in out.splitlines())


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    if not vulkan_listed():
        pytest.skip("no Vulkan device listed by `outboard devices`")
    path = tmp_path_factory.mktemp("device") / "llama.gguf"
    subprocess.run([OUTBOARD, "synth", "--arch", "llama", "--shape", "tiny", "--type", "f16",
                    "-o", str(path)], check=True, capture_output=True)
    return str(path)


def complete(s, prompt):
    body = {"prompt": prompt, "max_tokens": 6, "temperature": 0}
    status, raw, _ = s.request("POST", "/v1/completions", body, timeout=120)
    assert status == 200, raw
    return json.loads(raw)["choices"][0]["text"]


def cpu_answer(tiny, prompt):
    """The CPU-only server's greedy answer: what a split placement must also give."""
    cpu = Server("--spec", "off", model=tiny)
    try:
        return complete(cpu, prompt)
    finally:
        cpu.stop()


def placement(s):
    status, raw, _ = s.request("GET", "/health")
    assert status == 200, raw
    return json.loads(raw)["models"][0]["placement"]


def wait_for_device(s, seconds):
    deadline = time.time() + seconds
    while "vulkan" not in placement(s) and time.time() < deadline:
        time.sleep(0.2)
    assert "vulkan: layers 1-1" in placement(s)


def test_split_server_answers_as_the_cpu_and_counts_its_copies(tiny):
    prompts = ["Once upon a time", "The cat sat on the mat and"]
    cpu = Server("--spec", "off", model=tiny)
    try:
        want = [complete(cpu, p) for p in prompts]
    finally:
        cpu.stop()
    # lavapipe's compiled shaders keep per-thread buffers to the end, which LeakSanitizer
    # cannot attribute (as in tests/vulkan); its other checks stay on
    s = Server("--spec", "off", "--device", "vulkan:0", "--gpu-layers", "1", model=tiny,
               env={"LSAN_OPTIONS": "detect_leaks=0"})
    try:
        got = [complete(s, p) for p in prompts]
        copies = metric(s, "outboard_hidden_copies_total")
        nbytes = metric(s, "outboard_hidden_copy_bytes_total")
    finally:
        _, out, _ = s.stop()
    assert got == want
    # one copy per forward pass (each prompt in one pass, then a pass per later token), each
    # of whole F32 hidden rows, at least one
    row = 4 * gguf.GGUFReader(tiny).fields["llama.embedding_length"].parts[-1][0]
    assert copies >= len(prompts) and nbytes > 0, (copies, nbytes)
    assert nbytes % row == 0 and nbytes // row >= copies, (copies, nbytes, row)
    assert "cpu: layers 0-" in out and ", vulkan: layers " in out, out


def test_streamed_prompt_answers_as_the_cpu(tiny):
    """--stream-weights 2: prompts of two tokens or more run the CPU's layer's matrix products
    on the device, each weight shipped over an emulated 3 GB/s link; greedy answers are the CPU
    alone's, /health names the streaming in force, and /metrics counts the products and the
    bytes of weights shipped (the decode steps, one row each, stream nothing)."""
    prompts = ["Once upon a time", "The cat sat on the mat and"]
    cpu = Server("--spec", "off", model=tiny)
    try:
        want = [complete(cpu, p) for p in prompts]
    finally:
        cpu.stop()
    s = Server("--spec", "off", "--device", "vulkan:0", "--gpu-layers", "1",
               "--stream-weights", "2", "--link-emulate", "3", model=tiny,
               env={"LSAN_OPTIONS": "detect_leaks=0"})
    try:
        status, raw, _ = s.request("GET", "/health")
        h = json.loads(raw)["models"][0]
        assert h["streaming"]["min_tokens"] == 2, h
        assert "as asked" in h["streaming"]["why"], h
        assert "passes of 2+ rows stream the cpu's products to vulkan" in h["placement"], h
        got = [complete(s, p) for p in prompts]
        products = metric(s, "outboard_streamed_products_total")
        weights = metric(s, "outboard_streamed_weight_bytes_total")
    finally:
        _, out, _ = s.stop()
    assert got == want
    # one layer on the CPU: its 7 products per prompt, each prompt one pass
    assert products == 7 * len(prompts), products
    assert weights > 0 and weights % len(prompts) == 0, weights
    assert "stream the cpu's products" in out, out


def test_device_lost_mid_stream_moves_to_the_cpu(tiny):
    """The device is lost in the middle of a stream (OB_VK_LOSE_AFTER: a submit reports
    VK_ERROR_DEVICE_LOST, as a pulled cable does): the model moves to the CPU, the stream goes
    on and ends as the CPU alone writes it, later requests succeed, and /metrics counts it."""
    openai = pytest.importorskip("openai")
    prompt = "Once upon a time"
    want = cpu_answer(tiny, prompt)
    s = Server("--spec", "off", "--device", "vulkan:0", "--gpu-layers", "1", model=tiny,
               env={"LSAN_OPTIONS": "detect_leaks=0", "OB_VK_LOSE_AFTER": "4"})
    try:
        client = openai.OpenAI(base_url=s.url + "/v1", api_key="unused", max_retries=0)
        parts = []
        for chunk in client.completions.create(model="llama", prompt=prompt, max_tokens=6,
                                               temperature=0, stream=True):
            parts.extend(c.text or "" for c in chunk.choices)
        assert "".join(parts) == want
        assert complete(s, prompt) == want
        assert metric(s, "outboard_devices_lost_total") == 1
        assert s.request("GET", "/health")[0] == 200
    finally:
        _, _, err = s.stop()
    assert "VK_ERROR_DEVICE_LOST" in err and "move to what remains" in err, err[-2000:]


def test_watch_devices_moves_back_after_loss(tiny):
    """--watch-devices: the device is lost mid-stream (OB_VK_LOSE_AFTER), the model moves to
    the CPU and the stream ends there; once the server is idle it finds the device again and
    moves the layers back (the injected loss fires once, as a driver reset ends): /health
    names the split placement again, the next answer is the CPU's greedy text, and the hidden
    state crosses to the device again."""
    prompt = "Once upon a time"
    want = cpu_answer(tiny, prompt)
    s = Server("--spec", "off", "--device", "vulkan:0", "--gpu-layers", "1", "--watch-devices",
               model=tiny, env={"LSAN_OPTIONS": "detect_leaks=0", "OB_VK_LOSE_AFTER": "4"})

    try:
        assert complete(s, prompt) == want  # lost during this one, finished on the CPU
        assert metric(s, "outboard_devices_lost_total") == 1
        wait_for_device(s, 60)
        copies = metric(s, "outboard_hidden_copies_total")
        assert complete(s, prompt) == want
        assert metric(s, "outboard_hidden_copies_total") > copies
    finally:
        _, _, err = s.stop()
    assert "move to what remains" in err and "the device is there" in err, err[-2000:]


def test_watch_devices_picks_up_a_device_attached_later(tiny):
    """--watch-devices with a device that is not there at start (OB_VK_ATTACH_AFTER_S: every
    listing is empty for the first seconds, as before a card is plugged in): the server starts
    on the CPU instead of failing, answers there, and at an idle moment after the device shows
    up moves the asked-for layers to it; the answers stay the CPU's greedy text and the hidden
    state then crosses to the device."""
    prompt = "Once upon a time"
    want = cpu_answer(tiny, prompt)
    s = Server("--spec", "off", "--device", "vulkan:0", "--gpu-layers", "1", "--watch-devices",
               model=tiny, env={"LSAN_OPTIONS": "detect_leaks=0", "OB_VK_ATTACH_AFTER_S": "12"})

    try:
        assert placement(s).startswith("cpu"), placement(s)
        assert complete(s, prompt) == want
        assert metric(s, "outboard_hidden_copies_total") == 0
        wait_for_device(s, 90)
        assert complete(s, prompt) == want
        assert metric(s, "outboard_hidden_copies_total") > 0
    finally:
        _, _, err = s.stop()
    assert "serving on the CPU until the device is there" in err, err[-2000:]
    assert "the device is there: its layers move" in err, err[-2000:]


def test_watch_devices_needs_a_device(tiny):
    p = subprocess.run([OUTBOARD, "serve", "-m", tiny, "--port", "0", "--watch-devices"],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode != 0 and "--watch-devices" in p.stderr, p.stderr


def test_gpu_required_policy(tiny):
    """--device-policy gpu-required serves a model a GPU took and refuses one left to the
    CPU, naming the placement."""
    s = Server("--device", "vulkan:0", "--device-policy", "gpu-required", model=tiny,
               env={"LSAN_OPTIONS": "detect_leaks=0"})
    try:
        assert s.request("GET", "/health")[0] == 200
    finally:
        s.stop()
    p = subprocess.run([OUTBOARD, "serve", "-m", tiny, "--port", "0", "--device", "vulkan:0",
                        "--gpu-layers", "0", "--device-policy", "gpu-required"],
                       capture_output=True, text=True, timeout=60,
                       env=dict(os.environ, LSAN_OPTIONS="detect_leaks=0"))
    assert p.returncode != 0 and "no GPU took the model (cpu: layers 0-" in p.stderr, p.stderr


def test_moe_model_with_experts_on_the_host_answers_as_the_cpu(tiny, tmp_path):
    """A mixture-of-experts model (synthetic qwen3moe) on the Vulkan device with --experts
    host: its layers run there with their MoE blocks on the host, and it answers the official
    OpenAI client as the CPU alone does; the startup line says where the blocks run and
    /metrics counts their rows crossing. By default the experts fit and run on the device,
    with the same answer and nothing crossing."""
    openai = pytest.importorskip("openai")
    path = str(tmp_path / "qwen3moe.gguf")
    subprocess.run([OUTBOARD, "synth", "--arch", "qwen3moe", "--shape", "tiny", "--type", "q8_0",
                    "-o", path], check=True, capture_output=True)
    prompt = "Once upon a time"

    def ask(s):
        client = openai.OpenAI(base_url=s.url + "/v1", api_key="unused", max_retries=0)
        r = client.completions.create(model="qwen3moe", prompt=prompt, max_tokens=8,
                                      temperature=0)
        return r.choices[0].text

    def serve(*flags):
        """The answer, the named counters of /metrics and the startup output of a server."""
        s = Server("--spec", "off", *flags, model=path, env={"LSAN_OPTIONS": "detect_leaks=0"})
        try:
            got = ask(s)
            names = ("outboard_hidden_copies_total", "outboard_streamed_weight_bytes_total",
                     "outboard_streamed_expert_weight_bytes_total")
            counts = {n: metric(s, n) for n in names}
        finally:
            _, out, _ = s.stop()
        return got, counts, out

    want, _, _ = serve()
    got, counts, out = serve("--device", "vulkan:0", "--experts", "host")
    assert got == want
    # every layer on the device: no hidden-state copy, a MoE output copy per layer per pass
    assert counts["outboard_hidden_copies_total"] >= 2 * 8, counts
    assert "vulkan: layers 0-1 (MoE blocks on the cpu)" in out, out
    # auto: the experts fit, so they run on the device with their layers; nothing crosses
    got, counts, out = serve("--device", "vulkan:0")
    assert got == want
    assert counts["outboard_hidden_copies_total"] == 0, counts
    assert "vulkan: layers 0-1" in out and "MoE blocks on the cpu" not in out, out
    # the prompt's experts that the routing gave 2+ rows run on the device, each shipping its
    # three matrices (Q8_0, 512 rows of 256 or 256 of 512: 139,264 bytes each); same answer
    got, counts, out = serve("--device", "vulkan:0", "--experts", "host", "--stream-weights", "2",
                             "--link-emulate", "3")
    experts = counts["outboard_streamed_expert_weight_bytes_total"]
    assert got == want
    assert experts > 0 and experts % 139264 == 0, counts
    assert experts == counts["outboard_streamed_weight_bytes_total"], counts
    assert "passes of 2+ rows stream the cpu's products to vulkan" in out, out


def test_bad_device_flags_are_refused(tiny):
    for args in (["--device", "warp"], ["--gpu-layers", "-3"], ["--experts", "sideways"],
                 ["--device-policy", "gpu-required"], ["--device-policy", "maybe"]):
        p = subprocess.run([OUTBOARD, "serve", "-m", tiny, "--port", "0", *args],
                           capture_output=True, text=True, timeout=30)
        assert p.returncode != 0 and args[0] in p.stderr, p.stderr
