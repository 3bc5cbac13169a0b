"""The plan in force on a real `outboard serve`: the startup line and /health carry the speed
ob_plan_predict gives the placement, from the calibration file (here one written by hand, so
the figures can be checked against a hand calculation), and /health adds the speed the engine
measured on its own passes once requests have run. A corrupt calibration file is ignored with
the reason in /health, and the server serves all the same.

The hand calculation (tests/model/plan_predict_test.c works out the same shapes): the tiny
synthetic llama in Q8_0 reads 2 x 835,584 bytes of layers and 70,448 of head per decoded
token; a prompt chunk of 512 rows takes 2 x 786,432 x 512 multiply-adds in the layers' matrix
products, 66,304 in the head (only the chunk's last row wants logits) and 2 x 512 x 513 / 2 x
256 x 2 in attention.
"""
import json
import math
import os
import subprocess

import pytest

from test_serve_http import OUTBOARD, Server

DECODE_S = 100e-6 + 2 * 200e-6 + (2 * 835584 + 70448) / 1e9
PREFILL_S = 1e-3 + 2 * 2e-3 + (2 * 786432 * 512 + 66304 + 2 * 512 * 513 // 2 * 256 * 2) / 1e10


def host_key():
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                return "cpu " + line.split(":", 1)[1].strip()
    return "cpu CPU"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    d = tmp_path_factory.mktemp("plan")
    path = d / "tiny.gguf"
    subprocess.run([OUTBOARD, "synth", "--shape", "tiny", "--type", "q8_0", "-o", str(path)],
                   check=True, capture_output=True)
    return d, str(path)


def health(s):
    status, raw, _ = s.request("GET", "/health")
    assert status == 200, raw
    return json.loads(raw)["models"][0]


def test_predicted_and_measured_speed(tiny):
    d, model = tiny
    cal = d / "calibration"
    # one thread (the test server's --threads 1); Q8_0 costs chosen by hand
    cal.write_text("outboard-calibration\t1\n"
                   "backend\t%s\t1\t10\n"
                   "type\tQ8_0\t100\t200\t1\t1000\t2000\t10\n" % host_key())
    s = Server("--spec", "off", model=model, env={"OUTBOARD_CALIBRATION": str(cal)})
    try:
        h = health(s)
        assert h["placement"] == "cpu: layers 0-1"
        p = h["predicted"]
        assert p["calibrated"] is True, p
        assert p["decode_tps"] == pytest.approx(1 / DECODE_S, rel=1e-6)
        assert p["prefill_tps"] == pytest.approx(512 / PREFILL_S, rel=1e-6)
        assert h["measured"] == {"prefill_tps": None, "decode_tps": None}
        body = {"prompt": "Once upon a time", "max_tokens": 8, "temperature": 0}
        status, raw, _ = s.request("POST", "/v1/completions", body, timeout=60)
        assert status == 200, raw
        m = health(s)["measured"]
        assert m["prefill_tps"] > 0 and m["decode_tps"] > 0, m
    finally:
        _, out, _ = s.stop()
    line = "predicted %.1f tok/s prefill, %.1f tok/s decode" % (512 / PREFILL_S, 1 / DECODE_S)
    assert line in out, out


def test_corrupt_calibration_ignored(tiny):
    d, model = tiny
    cal = d / "corrupt"
    cal.write_text("outboard-calibration\t1\nbackend\t%s\t1\t10\ntype\tQ8_0\t100\n" % host_key())
    s = Server("--spec", "off", model=model, env={"OUTBOARD_CALIBRATION": str(cal)})
    try:
        p = health(s)["predicted"]
        assert p["calibrated"] is False and "ignored" in p["basis"] and "line 3" in p["basis"], p
        assert p["decode_tps"] > 0
        body = {"prompt": "Hello", "max_tokens": 2}
        assert s.request("POST", "/v1/completions", body, timeout=60)[0] == 200
    finally:
        _, out, _ = s.stop()
    assert "(uncalibrated)" in out, out


def test_calibrate_writes_figures_the_plan_then_uses(tiny):
    """`outboard plan --calibrate` end to end on the CPU: it times real passes of its synthetic
    models and writes the host's figures (read bandwidth, and per-pass, per-layer and rate
    figures for decode and prefill, all positive), and `outboard plan` on a model of that type
    is then calibrated. The figures' values are the benchmark's business (BENCHMARKS.md)."""
    d, model = tiny
    cal = d / "measured"
    env = dict(os.environ, OUTBOARD_CALIBRATION=str(cal))
    r = subprocess.run([OUTBOARD, "plan", "--calibrate", "--types", "q8_0", "--batch", "32",
                        "--threads", "1"], env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    lines = [l.split("\t") for l in cal.read_text().splitlines()]
    assert lines[0] == ["outboard-calibration", "1"], lines
    backend = [l for l in lines if l[0] == "backend"]
    assert backend and backend[0][1] == host_key() and backend[0][2] == "1", lines
    assert float(backend[0][3]) > 0, lines
    q8 = [l for l in lines if l[0] == "type" and l[1] == "Q8_0"]
    assert q8 and len(q8[0]) == 8, lines
    figures = [float(x) for x in q8[0][2:]]
    assert all(math.isfinite(x) and x >= 0 for x in figures), figures
    assert figures[2] > 0 and figures[5] > 0, figures  # the decode and prefill rates
    r = subprocess.run([OUTBOARD, "plan", "-m", model, "--threads", "1", "--batch", "32",
                        "--json"], env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    p = json.loads(r.stdout)["predicted"]
    assert p["calibrated"] is True and p["basis"] == "calibrated", p
    assert p["decode_tps"] > 0 and p["prefill_tps"] > 0, p
