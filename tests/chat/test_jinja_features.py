"""The Jinja interpreter feature by feature, against jinja2 (pinned) as the reference.

Each case is a small template and its variables. jinja2, configured as transformers configures
it (gen_template_goldens.make_env), renders it here; `outboard template --file` renders it too;
the outputs must be byte-identical, or both must fail (and, for raise_exception, with the same
message).
"""
import copy
import json
import os
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
BUILD = os.environ.get("OB_BUILD", os.path.join(ROOT, "build"))
sys.path.insert(0, HERE)
import gen_template_goldens as gen  # noqa: E402

# jinja2 warns on a template string escape Python no longer likes ("\\q"); the case is deliberate.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

V = {"msgs": [{"role": "system", "content": " Sys "}, {"role": "user", "content": "Hi"},
              {"role": "assistant", "content": "Yo", "tool_calls": [{"name": "f", "arguments": {"a": 1}}]}],
     "d": {"b": 2, "a": 1, "C": 3}, "s": "  Hello World  ", "n": 7, "f": 2.5, "l": [3, 1, 2],
     "words": ["b", "A", "c", "a"], "u": "héllo wörld", "t": True, "none": None,
     "nested": {"x": {"y": [10, 20, {"z": "deep"}]}}}

CASES = [
    # output and literals
    "{{ 'a' }}{{ \"b\" }}{{ 1 }}{{ 1.5 }}{{ true }}{{ none }}{{ [1, 'x'] }}{{ {'k': 'v'} }}",
    "{{ (1, 2) }}{{ (1,) }}{{ () }}{{ 'a' 'b' }}",
    "{{ 1e3 }}{{ 0.1 + 0.2 }}{{ 1/3 }}{{ 10/2 }}{{ 2**10 }}{{ 2**-1 }}{{ 1e16 }}{{ 1e-5 }}{{ 123456789.0 * 1000 }}",
    "{{ 7 // 2 }}{{ -7 // 2 }}{{ 7 % 3 }}{{ -7 % 3 }}{{ 7.5 // 2 }}{{ -7.5 % 2 }}{{ 3 - 5 }}{{ -n }}{{ +n }}",
    "{{ 'ab' * 3 }}{{ [1] * 2 }}{{ 'a' + 'b' }}{{ [1] + [2] }}{{ 1 ~ 'x' ~ none ~ true }}",
    "{{ 1 == 1.0 }}{{ 1 != 2 }}{{ 1 < 2 < 3 }}{{ 'a' < 'b' }}{{ [1,2] < [1,3] }}{{ true == 1 }}",
    "{{ 'ell' in s }}{{ 2 in l }}{{ 'a' in d }}{{ 'z' not in d }}{{ 5 not in l }}",
    "{{ not t }}{{ t and 'yes' }}{{ none or 'fallback' }}{{ 0 or '' }}{{ 'x' if t else 'y' }}{{ 'x' if none }}",
    "{{ s[2:7] }}{{ s[::-1] }}{{ l[-1] }}{{ l[::2] }}{{ u[1:4] }}{{ l[1:] }}{{ s[-3:] }}{{ l[5:] }}",
    "{{ nested.x.y[2].z }}{{ nested['x']['y'][0] }}{{ msgs[0].role }}{{ msgs[1]['content'] }}",
    # undefined
    "[{{ missing }}][{{ d.missing }}][{{ missing is defined }}][{{ missing is undefined }}]",
    "{% for x in missing %}{{ x }}{% else %}empty{% endfor %}{{ missing|length }}{{ missing|default('dflt') }}",
    "{{ d.missing|default('z') }}{{ none|default('z') }}{{ ''|default('z', true) }}{{ 0|d('q', boolean=true) }}",
    "{{ missing.attr }}",
    "{{ missing + 1 }}",
    "{{ missing == missing }}{{ missing != 1 }}{{ 'a' ~ missing ~ 'b' }}{% if not missing %}ok{% endif %}",
    # whitespace control
    "a\n  {% if t %}\n    b\n  {% endif %}\nc\n",
    "a  {%- if t -%}  b  {%- endif -%}  c",
    "x {{- ' y ' -}} z\n{{ 'w' }}\n",
    "  {# comment #}\nline\n{#- c2 -#}  end",
    "{% raw %}{{ not rendered }}{% endraw %}\n{%+ if t %}kept{% endif %}",
    "{% for i in l %}\n  {{ i }}\n{% endfor %}\n",
    "{%- for m in msgs %}\n    {%- if m.role == 'user' %}\n{{ m.content }}\n    {%- endif %}\n{%- endfor %}",
    "text\r\nwith\rCR\n{{ 'x' }}\n\n",
    # control flow
    "{% if n > 10 %}a{% elif n > 5 %}b{% else %}c{% endif %}",
    "{% for i in l %}{{ loop.index }}{{ loop.index0 }}{{ loop.first }}{{ loop.last }}{{ loop.length }}{{ loop.revindex }}{{ loop.revindex0 }};{% endfor %}",
    "{% for i in l %}{{ loop.previtem }}-{{ loop.nextitem }}-{{ loop.cycle('a', 'b') }};{% endfor %}",
    "{% for i in range(10) %}{% if i == 2 %}{% continue %}{% endif %}{% if i == 5 %}{% break %}{% endif %}{{ i }}{% endfor %}",
    "{% for i in l if i > 1 %}{{ i }}{{ loop.length }}{% endfor %}",
    "{% for k, v in d.items() %}{{ k }}={{ v }},{% endfor %}{% for k in d %}{{ k }}{% endfor %}",
    "{% for a in [[1, 2], [3, 4]] %}{% for b in a %}{{ loop.depth }}{{ b }}{% endfor %}{{ loop.index }}{% endfor %}",
    "{% for c in 'héllo' %}{{ c }}|{% endfor %}",
    "{% set x = 1 %}{% for i in l %}{% set x = i %}{% endfor %}{{ x }}",
    "{% set ns = namespace(x=0, found=false) %}{% for i in l %}{% set ns.x = ns.x + i %}{% endfor %}{{ ns.x }}{{ ns.found }}",
    "{% set a, b = 1, 2 %}{{ a }}{{ b }}{% set t2 = (3, 4) %}{% set c, e = t2 %}{{ c + e }}",
    "{% set block %}inner {{ n }}{% endset %}[{{ block }}]{% set b2 | upper %}up{% endset %}{{ b2 }}",
    "{% macro greet(name, punct='!') %}Hello {{ name }}{{ punct }}{% endmacro %}{{ greet('Bob') }}{{ greet('A', punct='?') }}",
    "{% macro wrap() %}<{{ caller() }}>{% endmacro %}{% call wrap() %}body {{ n }}{% endcall %}",
    "{% macro item(x) %}[{{ caller(x * 2) }}]{% endmacro %}{% call(v) item(3) %}v={{ v }}{% endcall %}",
    "{% macro rec(k) %}{{ k }}{% if k > 0 %}{{ rec(k - 1) }}{% endif %}{% endmacro %}{{ rec(3) }}",
    "{% filter upper %}shout {{ s }}{% endfilter %}",
    "{% generation %}gen {{ n }}{% endgeneration %}",
    # filters
    "{{ s|trim }}|{{ s|length }}|{{ s|lower }}|{{ s|upper }}|{{ 'hello wORLD'|title }}|{{ 'hELLO'|capitalize }}",
    "{{ u|upper }}{{ u|length }}{{ u|title }}",
    "{{ l|join(', ') }}|{{ l|first }}|{{ l|last }}|{{ l|sort }}|{{ l|sort(reverse=true) }}|{{ l|reverse|list }}|{{ l|sum }}|{{ l|min }}|{{ l|max }}",
    "{{ words|sort }}{{ words|sort(case_sensitive=true) }}{{ words|unique|list }}{{ words|map('upper')|list }}",
    "{{ d|dictsort }}{{ d|dictsort(reverse=true) }}{{ d|items|list }}{{ d.keys()|list }}{{ d.values()|list }}",
    "{{ msgs|selectattr('role', 'equalto', 'user')|list|length }}{{ msgs|rejectattr('role', 'eq', 'user')|map(attribute='role')|join(',') }}",
    "{{ msgs|selectattr('tool_calls')|list|length }}{{ msgs|selectattr('tool_calls', 'defined')|map(attribute='role')|first }}",
    "{{ l|select('odd')|list }}{{ l|reject('even')|list }}{{ l|select('greaterthan', 1)|list }}{{ [0, 1, '', 'a']|select|list }}",
    "{{ msgs|map(attribute='missing', default='-')|join }}{{ nested|attr('x') }}",
    "{{ d|tojson }}{{ msgs|tojson }}{{ u|tojson }}{{ 'q\"\\\\\\n\\t'|tojson }}{{ none|tojson }}{{ f|tojson }}",
    "{{ nested|tojson(indent=2) }}{{ d|tojson(sort_keys=true) }}{{ l|tojson(separators=(',', ':')) }}{{ u|tojson(ensure_ascii=true) }}",
    "{{ '42'|int + 1 }}{{ '4.7'|int }}{{ 'x'|int }}{{ 'x'|int(7) }}{{ 3.9|int }}{{ '2.5'|float }}{{ 3|float }}{{ true|int }}",
    "{{ 2.5|round }}{{ 3.5|round }}{{ 2.675|round(2) }}{{ 7|round }}{{ 2.1|round(0, 'ceil') }}{{ 2.9|round(method='floor') }}{{ -3|abs }}{{ -2.5|abs }}",
    "{{ 'a-b-c'|replace('-', '+') }}{{ 'aaa'|replace('a', 'b', 2) }}{{ n|string ~ '!' }}{{ l|string }}{{ d|length }}{{ l|count }}",
    "{{ 'line1\nline2\n\nline4'|indent }}|{{ 'a\nb'|indent(2, true) }}|{{ 'a\n\nb\n'|indent(width='> ', blank=true) }}",
    "{{ '<a href=\"x\">&</a>'|e }}{{ '<b>'|safe }}{{ 'one two  three'|wordcount }}{{ [1, 2, 3, 4, 5]|batch(2)|list }}{{ [1, 2, 3]|batch(2, 0)|list }}",
    "{{ l|list }}{{ 'abc'|list }}{{ d|list }}{{ 'abc'|first }}{{ 'abc'|reverse }}{{ d|first }}",
    # tests
    "{{ 1 is number }}{{ true is number }}{{ true is integer }}{{ 1 is integer }}{{ 1.0 is float }}{{ 'a' is string }}{{ d is mapping }}{{ l is sequence }}{{ 'a' is sequence }}{{ d is sequence }}",
    "{{ l is iterable }}{{ 1 is iterable }}{{ none is none }}{{ t is true }}{{ t is false }}{{ t is boolean }}{{ 1 is boolean }}{{ none is not none }}",
    "{{ 3 is odd }}{{ 4 is even }}{{ 9 is divisibleby 3 }}{{ 9 is divisibleby(2) }}{{ 'a' is in 'abc' }}{{ 2 is in l }}{{ 1 is eq 1 }}{{ 'a' is equalto 'a' }}",
    "{{ 'abc' is lower }}{{ 'ABC' is upper }}{{ d.keys is callable }}{{ range is callable }}{{ missing is not defined }}{{ 1 is ne 2 }}{{ 2 is gt 1 }}{{ 2 is ge 2 }}{{ 1 is lt 2 }}{{ 1 is le 0 }}",
    # methods
    "{{ s.strip() }}|{{ s.lstrip() }}|{{ s.rstrip() }}|{{ 'xxhixx'.strip('x') }}|{{ s.split() }}|{{ 'a,b,,c'.split(',') }}|{{ 'a b c'.split(' ', 1) }}|{{ 'a b c'.rsplit(' ', 1) }}",
    "{{ s.startswith('  He') }}{{ s.endswith('x') }}{{ 'abc'.startswith(('x', 'a')) }}{{ s.lower() }}{{ s.upper() }}{{ s.replace('l', 'L') }}{{ 'hello'.title() }}{{ 'hello'.capitalize() }}",
    "{{ 'hello'.find('l') }}{{ 'hello'.rfind('l') }}{{ 'hello'.find('z') }}{{ 'hello'.count('l') }}{{ '-'.join(['a', 'b']) }}{{ 'a\nb\r\nc'.splitlines() }}{{ '123'.isdigit() }}{{ 'ab'.isalpha() }}",
    "{{ d.get('a') }}{{ d.get('z') }}{{ d.get('z', 'dflt') }}{{ d.items()|list }}{{ d.keys()|list }}{{ d.values()|list }}{{ 'prefix_x'.removeprefix('prefix_') }}",
    "{% set x = [1] %}{% set _ = x.append(2) %}{{ x }}{{ x.pop() }}{{ x }}{{ [3, 1, 2].index(1) }}{% set y = {'a': 1} %}{% set _ = y.update({'b': 2}) %}{{ y }}",
    "{{ d['items'] is defined }}{{ d.items is callable }}{{ msgs[0].content.strip() }}{{ msgs[1].content.lower() }}",
    # globals
    "{{ range(3)|list }}{{ range(1, 7, 2)|list }}{{ range(5, 0, -2)|list }}{{ dict(a=1, b='x') }}{{ namespace(a=1).a }}",
    "{{ strftime_now('%Y-%m-%d %d %b %Y') }}",
    "{{ raise_exception('custom failure: ' ~ n) }}",
    "before{% if n == 7 %}{{ raise_exception('seven') }}{% endif %}after",
    # errors at render time
    "{{ 1 + 'a' }}",
    "{{ 'a' < 1 }}",
    "{{ 1 / 0 }}",
    "{{ none.attr }}",
    "{{ n() }}",
    "{{ l[missing] }}",
    # more whitespace edges
    "\t {%- if t %}\n\t\tx\n\t {% endif -%}\n  y",
    "a {% if t %}b{% endif %}\n  {# c #}  \n{% if t %}\n{% endif %}d",
    "{%- raw -%}\n  raw {{ x }}  \n{%- endraw -%}\n  after",
    "{% for i in l -%}\n{{ i }}\n{%- endfor %}\n\n{{ 'end' }}",
    "  {{ 'v' }}\n  {% set q = 1 %}\n{{ q }}  \n",
    "{{ 'x' }}\n{% if t %}  {{ 'y' }}{% endif %}\n",
    "{%\n  if t\n%}multi\nline{%\nendif\n%}",
    "line1\n    {%+ if t %}plus{% endif %}\n",
    "{#\n multi\n line #}\n{{- ' x' }}",
    # more values
    "{{ ['é', '\\x01', \"a'b\"] }}{{ {1: 'a', 'b': none, 'c': true, 'd': 1.0} }}{{ {1: 2}|tojson }}",
    "{% macro m(a, b=a ~ '!') %}{{ a }}{{ b }}{% endmacro %}{{ m('x') }}{{ m('x', 'y') }}{{ m(b='q', a='p') }}",
    "{{ l|map('string')|join('-') }}{{ ['1', '2']|map('int')|sum }}{{ msgs|map(attribute='role')|unique|list }}",
    "{{ (l|sort)[0] }}{{ l|length > 2 }}{{ -1 * 3 }}{{ 2 ** 3 ** 2 }}{{ (2 ** 3) ** 2 }}{{ 10 - 2 - 3 }}{{ 2 * 3 + 4 }}",
    "{{ d.a + d['b'] }}{{ d.get('C') }}{% if d.x is not defined and d.a %}ok{% endif %}",
    "{% set x = 'a' %}{% if x in ['a', 'b'] %}in{% endif %}{% if x is string and x|length == 1 %}one{% endif %}",
    "{{ s.strip().split(' ')|map('lower')|join('_') }}{{ u.split('é') }}{{ ' x '.strip() == 'x' }}",
    "{% for m in msgs %}{{ loop.index }}:{{ m.role }}{{ ',' if not loop.last }}{% endfor %}",
    "{{ 'a\\nb' }}|{{ 'tab\\there' }}|{{ '\\u00e9\\U0001F600\\x41' }}|{{ 'back\\\\slash' }}|{{ 'unknown\\q' }}",
    "{{ none is none and missing is undefined }}{{ [] is sequence }}{{ {} is mapping }}{{ '' is string }}",
    "{{ l[0:10:3] }}{{ 'abcdef'[-2:] }}{{ 'abcdef'[:-2] }}{{ 'abcdef'[::-2] }}{{ 'abcdef'[4:1:-1] }}{{ l[:] }}",
    "{{ '%s-%d' % ('a', 3) }}{{ '%05.2f|%x|%r|%%' % (3.14159, 255, 'q') }}{{ 'no args' % d }}{{ '%s' % l }}{{ '%i' % 2.7 }}",
    "{{ '%s %s' % ('only one',) }}",
    "[{{ '%6s|%-6s|%.2s|%-8.3s|%5r' % ('ab', 'cd', 'héllo', 'wxyz', 'q') }}][{{ '%-+6d|%+.3f|% d|%#x' % (42, 2.5, 7, 255) }}]",
    # floats beyond long long under %d: the exact digits of the truncated value
    "{{ '%d|%5d|%-32d|' % (2.2e29, 1e30, -3e20) }}",
    "{{ 'x' % 1 }}",
    "{% with a = 1, b = n + 1, n = 0 %}{{ a }}{{ b }}{% set c = 3 %}{{ c }}{% endwith %}[{{ a }}{{ c }}]{{ '%s=%d'|format('k', 4) }}",
    # jinja2 odds and ends
    "{{ 'x' ~ 1.0 ~ 1e100 ~ -0.0 ~ 1.5e-7 ~ 100000000000000000000.0 }}",
    "{% set d2 = {'k': [1, {'z': none}], 'q': \"it's\"} %}{{ d2 }}{{ [\"a'b\", 'c\"d', 'e\\'f\"'] }}",
    "{% if msgs[0]['role'] == 'system' %}{% set loop_messages = msgs[1:] %}{% else %}{% set loop_messages = msgs %}{% endif %}{{ loop_messages|length }}",
    "{{ msgs[-1].tool_calls[0].arguments|tojson }}{% for tc in msgs[-1].tool_calls %}{{ tc.arguments.a }}{% endfor %}",
    "{{ '%s' }}{{ 'a' if 'b' in 'abc' and not none else 'c' }}{{ (n > 5) and (n < 10) }}{{ n is number and n > 1 }}",
    # strftime_now returns the whole text, whatever the format's length; datetime's own codes
    "{{ strftime_now('%Y' * 100000)|length }}{{ strftime_now('%a %d %b' * 300)[-30:] }}[{{ strftime_now('%z|%Z|%f|%%|%') }}][{{ strftime_now('') }}]",
    # values that contain themselves print as Python prints them; JSON refuses them
    "{% set x = [1] %}{% set _ = x.append(x) %}{% set d = {} %}{% set _ = d.update({'me': d}) %}{{ x }}{{ d }}{{ x == x }}{{ [x, d] }}{{ (x,) }}",
    "{% set x = [] %}{% set _ = x.append(x) %}{{ x|tojson }}",
    # a chain one link under the nesting limit (a longer one is refused; jinja2 fails at a few hundred)
    "{{ 1" + " + 1" * 199 + " }}{{ s" + "|trim" * 150 + " }}{{ n" + " - 1" * 150 + " }}",
    # dicts past the size where they are hashed: numbers that compare equal are one key
    "{% set d = {} %}{% for i in range(20) %}{% set _ = d.update({i: i * i}) %}{% endfor %}{{ d[7] }}{{ d.get(19) }}{{ 3 in d }}{{ 3.0 in d }}{{ true in d }}{{ d|length }}{{ d.pop(5) }}{{ d.get(6) }}{{ d.get(5) }}{{ d|list }}{% set _ = d.clear() %}{{ d }}{% set _ = d.update({1: 2}) %}{{ d }}",
    "{% set d = {} %}{% for i in range(20) %}{% set _ = d.update({(i, 'x'): i}) %}{% endfor %}{{ d[(3, 'x')] }}{{ (4, 'x') in d }}{{ (4, 'y') in d }}{{ {1: 'a', 1.0: 'b', true: 'c'} }}{{ (1,) * 2 }}{{ (1, 2).index(2) }}",
    "{% set d = {} %}{% for i in range(100) %}{% set _ = d.update({'k' ~ (99 - i): i}) %}{% endfor %}{{ d|tojson }}{{ d|tojson(sort_keys=true) }}",
    # sort (stable, reversed too) and unique
    "{{ [1, 1.0, true, '1', 2, 2.0]|unique|list }}{{ [(1, 'a'), (0, 'b'), (1, 'c'), (0, 'd')]|sort(attribute='0', reverse=true) }}{{ ['b', 'A', 'a', 'B']|sort }}{{ ['b', 'A', 'a', 'B']|sort(reverse=true) }}{{ range(30)|reverse|sort|list }}",
    # string slices and searches
    "{{ 'héllo wörld'[1:8:2] }}|{{ 'héllo'[::-1] }}|{{ 'héllo'[-2::-2] }}|{{ 'abc'[5:1] }}|{{ 'héllo'[1:-1] }}|{{ 'héllo'[10:] }}|{{ 'héllo'[-10:2] }}|{{ 'abcdef'[4::-3] }}",
    "{{ ('a' * 30 ~ 'b' ~ 'a' * 30 ~ 'b').rfind('a' * 20) }}|{{ ('ab' * 40).rfind('ab' * 10) }}|{{ ('ab' * 40).find('ba' * 10) }}|{{ ('ab' * 40).count('ab' * 9) }}|{{ 'aaaa'.count('aa') }}|{{ 'abc'.count('') }}|{{ 'abc'.rfind('') }}|{{ 'héllo'.rfind('l') }}{{ ('x' ~ '-' * 20 ~ 'y' ~ '-' * 20 ~ 'z').rsplit('-' * 20, 1) }}{{ ('-' * 50).rsplit('-' * 20) }}",
    # unknown filters and tests: an error when compiled outside an if statement or a
    # conditional expression, else only when evaluated; loop, macro and block bodies are frames
    # of their own even inside an if
    "{% if false %}{{ x | nosuchfilter }}{% endif %}{% if false and 1 is nosuchtest %}x{% endif %}ok",
    "{% if t %}{{ 1 | nosuchfilter }}{% endif %}",
    "{{ 1 | nosuchfilter }}",
    "{{ 'a' if t else (1 | nosuch) }}{{ (1 | nosuch) if false else 'b' }}{{ 'c' if 1 is nosuchtest }}",
    "{% if false %}{% for i in l %}{{ i | nosuch }}{% endfor %}{% endif %}ok",
    "{% if false %}{% macro m() %}{{ 1 | nosuch }}{% endmacro %}{% endif %}ok",
    "{% if false %}{% set x = 1 | nosuch %}{% elif t %}y{% else %}{{ 2 is nosuchtest }}{% endif %}ok",
    "{% for i in l if i is nosuchtest %}{{ i }}{% endfor %}",
    "{% if false %}{% filter nosuch %}x{% endfilter %}{% endif %}ok",
    # from_json (json.loads, registered on the jinja2 side): DeepSeek V3.2's use of it, values of
    # every JSON type, key order, a repeated key, and what it refuses
    "{% for tc in msgs[2].tool_calls %}{% set args = '{\"city\": \"Paris\", \"n\": 3, \"deep\": {\"l\": [1, null]}}' %}{% if args is string %}{% set args = args | from_json %}{% endif %}{% for key, val in args.items() %}<{{ key }} string=\"{{ val is string }}\">{% if val is string %}{{ val }}{% else %}{{ val | tojson }}{% endif %}</{{ key }}>{% endfor %}{% endfor %}",
    "{% set a = '{\"z\": [1, 2.5, \"x\", null, true, false], \"a\": {\"k\": \"v\"}, \"z\": 0}' | from_json %}{{ a.z }}{{ a['a'].k }}{% for k in a %}{{ k }}{% endfor %}{{ a | tojson }}{{ a | length }}",
    "{{ '3' | from_json + 1 }}|{{ '\"s\"' | from_json }}|{{ 'null' | from_json is none }}|{{ '[1, [2]]' | from_json | length }}|{{ '1e2' | from_json }}|{{ ' -0.5 ' | from_json }}|{{ '\"h\\u00e9\"' | from_json }}|{{ '[]' | from_json }}{{ '{}' | from_json }}",
    "{{ '{bad' | from_json }}",
    "{{ '[1] [2]' | from_json }}",
    "{{ n | from_json }}",
    "{{ l | from_json }}",
    # repeating an empty sequence any number of times is empty at once
    "{{ ('' * 1000000000000000000)|length }}{{ ([] * 1000000000000000000)|length }}{{ ('ab' * 3) * 2 }}{{ (1, 2) * 2 }}{{ 'x' * -1 }}",
    # strings built by ~ and + grow in place; the shorter ones they grew from stay as they were
    "{% set a = 'x' ~ 'y' %}{% set b = a ~ '1' %}{% set c = a ~ '2' %}{{ a }}{{ b }}{{ c }}|{% set s = 'ab' ~ 'c' %}{% set t = s ~ 'd' %}{% set u = s ~ 'e' %}{% set v = t ~ t %}{{ s }} {{ t }} {{ u }} {{ v }}|{% set ns = namespace(a='', b='') %}{% for i in range(50) %}{% set ns.a = ns.a ~ i %}{% set ns.b = ns.b + ns.a[-1:] %}{% endfor %}{{ ns.a }}|{{ ns.b }}",
]


def outboard_render(tmp_path, source, variables):
    tpath = tmp_path / "t.jinja"
    tpath.write_bytes(source.encode())
    cpath = tmp_path / "c.json"
    cpath.write_text(json.dumps({"messages": [], **variables}, ensure_ascii=False))
    return subprocess.run([os.path.join(BUILD, "outboard"), "template", "--file", str(tpath),
                           "--input", str(cpath), "--now", str(gen.NOW)], capture_output=True,
                          timeout=60)


@pytest.mark.parametrize("idx", range(len(CASES)))
def test_case(tmp_path, idx):
    source = CASES[idx]
    kind, text = gen.render(source, {"messages": [], **copy.deepcopy(V)}, None, None,
                            mutable=".append(" in source or ".update(" in source)
    proc = outboard_render(tmp_path, source, V)
    if kind == "ok":
        assert proc.returncode == 0, proc.stderr.decode(errors="replace")
        assert proc.stdout.decode() == text
    else:
        assert proc.returncode == 1, f"jinja2 failed ({kind}: {text}); outboard printed {proc.stdout!r}"
        assert b"t.jinja:" in proc.stderr  # the message names the template and position
        if kind == "raise":
            assert text in proc.stderr.decode()
