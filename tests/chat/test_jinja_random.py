"""Random expressions (fixed seed) rendered by jinja2 and by `outboard template`: same text, or
both fail. Complements the hand-written cases in test_jinja_features.py with operator, filter
and method combinations nobody thought to write down.
"""
import copy
import json
import os
import random
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
BUILD = os.environ.get("OB_BUILD", os.path.join(ROOT, "build"))
sys.path.insert(0, HERE)
import gen_template_goldens as gen  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

VARS = {"i": 7, "j": -3, "x": 2.5, "s": " Hello, World ", "e": "", "l": [3, 1, 2],
        "ls": ["b", "A", "c"], "d": {"k": 1, "a": "v", "n": None}, "t": True, "f": False,
        "n": None, "u": "héllo", "m": [{"role": "user", "c": "hi"}, {"role": "tool", "c": None}]}

ATOMS = ["i", "j", "x", "s", "e", "l", "ls", "d", "t", "f", "n", "u", "m", "undefined_name",
         "0", "1", "-2", "3.0", "0.5", "'ab'", "'a,b'", "''", "[]", "[1, 'a']", "{}",
         "{'q': 2}", "none", "true", "false", "d.k", "d.a", "d.zz", "m[0].role", "l[0]", "l[-1]",
         "s[1:4]", "l[::-1]", "u[1:]", "(1, 2)"]
BINOPS = ["+", "-", "*", "/", "//", "%", "~", "==", "!=", "<", ">=", "and", "or", "in", "not in"]
# jinja2 returns generators from some filters (lazy: an error inside shows only when consumed,
# and printing one shows its address), so those are always followed by |list, as templates do.
FILTERS = ["length", "upper", "lower", "trim", "first", "last", "join(',')", "sort",
           "reverse|list", "list", "string", "int", "float", "abs", "round", "default('D')",
           "tojson", "unique|list", "sum", "title", "capitalize", "count", "items|list",
           "dictsort", "min", "max", "replace('l', 'L')", "select('odd')|list",
           "map('string')|list", "batch(2)|list", "wordcount", "indent(2)",
           "selectattr('role')|list", "map(attribute='role')|list", "reject|list"]
TESTS = ["defined", "undefined", "none", "string", "number", "integer", "float", "mapping",
         "sequence", "iterable", "odd", "even", "true", "false", "boolean", "in([1, 2])",
         "divisibleby(2)", "eq(1)", "lower", "upper"]
METHODS = ["upper()", "lower()", "strip()", "split()", "split(',')", "startswith('H')",
           "endswith('d')", "get('k')", "get('z', 0)", "keys()", "values()", "items()",
           "replace('l', '')", "title()", "count('l')", "find('l')", "rstrip()", "lstrip(' H')"]


def expr(rng, depth=0):
    r = rng.random()
    if depth > 2 or r < 0.25:
        return rng.choice(ATOMS)
    if r < 0.45:
        return f"({expr(rng, depth + 1)} {rng.choice(BINOPS)} {expr(rng, depth + 1)})"
    if r < 0.65:
        return f"({expr(rng, depth + 1)}|{rng.choice(FILTERS)})"
    if r < 0.75:
        neg = rng.choice(["", "not "])
        return f"({expr(rng, depth + 1)} is {neg}{rng.choice(TESTS)})"
    if r < 0.85:
        return f"({expr(rng, depth + 1)}).{rng.choice(METHODS)}"
    if r < 0.92:
        return f"({expr(rng, depth + 1)} if {expr(rng, depth + 1)} else {expr(rng, depth + 1)})"
    return f"(not {expr(rng, depth + 1)})"


def cases(count=250, seed=1234):
    rng = random.Random(seed)
    return ["{{ " + expr(rng) + " }}" for _ in range(count)]


CASES = cases()


@pytest.fixture(scope="module")
def conv_path(tmp_path_factory):
    p = tmp_path_factory.mktemp("conv") / "c.json"
    p.write_text(json.dumps({"messages": [], **VARS}, ensure_ascii=False))
    return str(p)


@pytest.mark.parametrize("idx", range(len(CASES)))
def test_random_expression(tmp_path, conv_path, idx):
    source = CASES[idx]
    kind, text = gen.render(source, {"messages": [], **copy.deepcopy(VARS)}, None, None)
    tpath = tmp_path / "t.jinja"
    tpath.write_text(source)
    proc = subprocess.run([os.path.join(BUILD, "outboard"), "template", "--file", str(tpath),
                           "--input", conv_path], capture_output=True, timeout=60)
    if kind == "ok":
        assert proc.returncode == 0, (source, proc.stderr.decode(errors="replace"))
        assert proc.stdout.decode() == text, source
    else:
        assert proc.returncode == 1, (source, kind, text, proc.stdout)
