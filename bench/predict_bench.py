#!/usr/bin/env python3
"""Predicted vs measured speed of `outboard plan` for four placements of one synthetic model.

Calibrates once (`outboard plan --calibrate`, into a private config folder), then for the
placements all-host, half, half with the host's prompt products streamed to the device
(--stream-weights 2) and all-device asks `outboard plan --json` for the predicted prefill and
decode tok/s, and measures them with `outboard bench` under the same flags. It also reports
what `--stream-weights auto` decides for the half placement under that calibration. Rounds
alternate the order of the placements; each round gives a predicted/measured ratio per
placement and figure, and the table reports the median of those ratios. With --write the table
replaces the section of BENCHMARKS.md between the markers below.

    python3 bench/predict_bench.py [--build build] [--device vulkan:0] [--link 3]
        [--layers 2] [--prompt 128] [--gen 16] [--rounds 3] [--threads 2] [--write]
"""
import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BEGIN = "<!-- predict_bench begin -->"
END = "<!-- predict_bench end -->"


def run(cmd, env):
    out = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit("failed: %s\n%s" % (" ".join(cmd), out.stderr))
    return out.stdout


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--device", default="vulkan:0")
    ap.add_argument("--link", default="3")
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--type", default="q4_0")
    ap.add_argument("--prompt", type=int, default=128)
    ap.add_argument("--gen", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--write", action="store_true")
    a = ap.parse_args()
    ob = os.path.join(a.build, "outboard")
    tmp = tempfile.mkdtemp(prefix="predict-bench-")
    env = dict(os.environ, XDG_CONFIG_HOME=tmp)
    env.pop("OUTBOARD_CALIBRATION", None)
    model = os.path.join(tmp, "synth.gguf")
    synth = [ob, "synth", "--shape", "tiny", "--layers", str(a.layers), "--type", a.type,
             "-o", model]
    run(synth, env)
    common = ["--device", a.device, "--link-emulate", a.link, "--threads", str(a.threads)]
    calibrate = [ob, "plan", "--calibrate", "--types", a.type, "--batch", str(a.prompt)] + common
    print("calibrating:", " ".join(calibrate), file=sys.stderr)
    run(calibrate, env)
    half = a.layers // 2
    # (layers on the device, --stream-weights): the streamed one ships the host layers'
    # weights for every prompt chunk
    placements = [(0, "off"), (half, "off"), (half, "2"), (a.layers, "off")]
    pred = {}
    for g, stream in placements:
        plan = [ob, "plan", "-m", model, "--gpu-layers", str(g), "--batch", str(a.prompt),
                "--stream-weights", stream, "--json"] + common
        p = json.loads(run(plan, env))["predicted"]
        if not p["calibrated"]:
            sys.exit("placement %d: prediction not calibrated: %s" % (g, p["basis"]))
        pred[(g, stream)] = (p["prefill_tps"], p["decode_tps"])
    auto = json.loads(run([ob, "plan", "-m", model, "--gpu-layers", str(half), "--batch",
                           str(a.prompt), "--json"] + common, env))
    auto_line = "`--stream-weights auto` for the half placement: %s (stream_min_tok %d)." % (
        auto["stream_why"], auto["stream_min_tok"])
    ratios = {g: ([], []) for g in placements}
    measured = {g: ([], []) for g in placements}
    for r in range(a.rounds):
        order = placements if r % 2 == 0 else placements[::-1]
        for g, stream in order:
            bench = [ob, "bench", "-m", model, "-p", str(a.prompt), "-n", str(a.gen), "-r",
                     "1", "-t", str(a.threads), "--gpu-layers", str(g), "--device", a.device,
                     "--link-emulate", a.link, "--stream-weights", stream, "--json"]
            g = (g, stream)
            rows = json.loads(run(bench, env))
            pp = next(x["median_ts"] for x in rows if x["test"].startswith("pp"))
            tg = next(x["median_ts"] for x in rows if x["test"].startswith("tg"))
            measured[g][0].append(pp)
            measured[g][1].append(tg)
            ratios[g][0].append(pred[g][0] / pp)
            ratios[g][1].append(pred[g][1] / tg)
            print("round %d, %d layers on the device, streaming %s: pp %.2f (predicted %.2f), "
                  "tg %.2f (predicted %.2f)" % (r + 1, g[0], g[1], pp, pred[g][0], tg,
                                                pred[g][1]), file=sys.stderr)
    names = {(0, "off"): "all host", (half, "off"): "half", (half, "2"): "half, streamed",
             (a.layers, "off"): "all device"}
    lines = ["| placement | layers on device | predicted pp%d tok/s | measured | ratio | "
             "predicted tg%d tok/s | measured | ratio |" % (a.prompt, a.gen),
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for g in placements:
        rp, rt = statistics.median(ratios[g][0]), statistics.median(ratios[g][1])
        lines.append("| %s | %d of %d | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f |" % (
            names[g], g[0], a.layers, pred[g][0], statistics.median(measured[g][0]),
            rp, pred[g][1], statistics.median(measured[g][1]), rt))
    within = sum(abs(statistics.median(ratios[g][k]) - 1) <= 0.15
                 for g in placements for k in (0, 1))
    lines += ["", "Within 15%% of measured: %d of %d figures." % (within, 2 * len(placements)),
              "", auto_line]
    table = "\n".join(lines)
    print(table)
    if a.write:
        cmd = "python3 bench/predict_bench.py " + " ".join(sys.argv[1:])
        section = "\n".join([
            BEGIN,
            "Machine: %s, %d logical cores (/proc/cpuinfo), shared with other builds and "
            "tests; load average at the end %.1f." % (cpu_name(), os.cpu_count(),
                                                      os.getloadavg()[0]),
            "",
            "Command: `%s`" % cmd.strip(),
            "",
            "Model: `outboard synth --shape tiny --layers %d --type %s` (llama, 256 wide). "
            "Calibration: `%s` (binary path shortened). Each ratio is predicted / measured, "
            "the median of %d rounds alternating the order of the placements; each round is "
            "one `outboard bench -r 1` (one warm-up run, one timed run) per placement." % (
                a.layers, a.type, " ".join(["outboard"] + calibrate[1:]), a.rounds),
            "",
            table,
            END])
        path = os.path.join(ROOT, "BENCHMARKS.md")
        text = open(path).read()
        if BEGIN in text:
            text = text[:text.index(BEGIN)] + section + text[text.index(END) + len(END):]
        else:
            text = text.rstrip("\n") + "\n\n## Speed prediction: `outboard plan` vs measured\n\n" \
                + section + "\n"
        open(path, "w").write(text)


if __name__ == "__main__":
    main()
