"""The AVX-VNNI kernels (src/**/*_avxvnni.c) as built: the objects the library's dispatch runs on
a CPU with AVX-VNNI and no AVX-512 must hold only VEX-encoded code. Their tests run the EVEX twins
(*_avxvnni_evex.o, the same source) on CPUs with AVX-512 VNNI, so this is what shows that the
production objects would run where the twins could not: objdump (binutils) disassembles them and
every VPDPBUSD must be the VEX form, with no EVEX instruction, zmm register, mask register or
register 16-31 anywhere. The twins must show the EVEX form, so the check can tell them apart.
"""
import glob
import os
import platform
import re
import shutil
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("OB_BUILD", os.path.join(ROOT, "build"))

pytestmark = pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"),
                                reason="the AVX-VNNI kernels are x86-64 only")

# Bytes that may precede an instruction's opcode without making it something else: segment
# overrides and address size. An EVEX instruction starts with 0x62 (BOUND, its old meaning, does
# not exist in 64-bit mode); legacy 66/F2/F3/REX prefixes before it would make it invalid.
PASS_PREFIXES = {"26", "2e", "36", "3e", "64", "65", "67"}
HIGH_REGISTER = re.compile(r"%[xyz]mm(1[6-9]|2[0-9]|3[01])\b")


def sources():
    return sorted(os.path.relpath(p, ROOT)
                  for p in glob.glob(os.path.join(ROOT, "src", "**", "*_avxvnni.c"), recursive=True))


def disassemble(obj):
    """(raw bytes, instruction text) of every instruction in obj."""
    if not os.path.exists(obj):
        pytest.fail(f"{obj} is not built (run make)")
    out = subprocess.run(["objdump", "-d", "--insn-width=16", obj], capture_output=True,
                         text=True, check=True).stdout
    insns = []
    for line in out.splitlines():
        parts = line.split("\t")
        if len(parts) >= 3 and re.fullmatch(r"\s*[0-9a-f]+:", parts[0]):
            insns.append((parts[1].split(), "\t".join(parts[2:]).strip()))
    return insns


def is_evex(raw):
    i = 0
    while i < len(raw) and raw[i] in PASS_PREFIXES:
        i += 1
    return i < len(raw) and raw[i] == "62"


def obj_path(src, suffix):
    return os.path.join(BUILD, "obj", src[:-len(".c")] + suffix)


@pytest.fixture(scope="module", autouse=True)
def need_objdump():
    if not shutil.which("objdump"):
        pytest.skip("objdump (binutils) not found")


def test_there_are_avxvnni_sources():
    assert sources(), "no src/**/*_avxvnni.c"


@pytest.mark.parametrize("src", sources())
def test_production_object_is_vex_only(src):
    insns = disassemble(obj_path(src, ".o"))
    dots = [text for _, text in insns if "vpdpbusd" in text]
    assert dots, f"{src}: no vpdpbusd"
    bad = [text for text in dots if not text.startswith("{vex} vpdpbusd")]
    assert not bad, f"{src}: vpdpbusd not in VEX form: {bad[:3]}"
    for raw, text in insns:
        assert not is_evex(raw), f"{src}: EVEX instruction {' '.join(raw)}  {text}"
        assert "{evex}" not in text and "%zmm" not in text, f"{src}: {text}"
        assert not re.search(r"%k[0-7]\b", text), f"{src}: mask register in {text}"
        assert not HIGH_REGISTER.search(text), f"{src}: register 16-31 in {text}"


@pytest.mark.parametrize("src", sources())
def test_evex_twin_is_told_apart(src):
    insns = disassemble(obj_path(src, "_evex.o"))
    dots = [raw for raw, text in insns if "vpdpbusd" in text]
    assert dots and all(is_evex(raw) for raw in dots), f"{src}: the twin's vpdpbusd is not EVEX"
