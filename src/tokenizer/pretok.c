/*
 * Byte-level BPE pre-tokenizers: tokenizer.ggml.pre names the model family, and the family
 * fixes a list of regular expressions that cut the text into pieces before merging. These are
 * the patterns the models' own tokenizer.json files publish, in the form llama.cpp runs them
 * (its adapted spelling of case-insensitive groups and lookaheads, so results agree with it).
 *
 * Each expression is applied in turn to every piece the previous one left, as its own subject
 * (so lookaheads and '$' stop at the piece's end); the text between matches stays a piece too.
 * PCRE2 runs the patterns with Unicode properties (UTF + UCP), JIT-compiled when available.
 * Invalid UTF-8 is read leniently and unreadable bytes become U+FFFD first, as the reference
 * does, so the regex engine only ever sees valid UTF-8.
 */
#include "core/alloc.h"
#include "core/err.h"
#include "tokenizer/tok_impl.h"

#include <stdio.h>
#include <string.h>

/* ---- pattern sets ----------------------------------------------------------------------- */

#define CONTRACTIONS "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])"
#define GPT2_RE "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)"
#define LLAMA3_RE                                                                              \
    CONTRACTIONS "|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"   \
                 "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
#define QWEN2_RE                                                                               \
    CONTRACTIONS "|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"        \
                 "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
#define UPPER_THEN_LOWER "((?=[\\p{L}])([^a-z]))*((?=[\\p{L}])([^A-Z]))+"
#define UPPER_RUN "((?=[\\p{L}])([^a-z]))+((?=[\\p{L}])([^A-Z]))*"
#define DS3_RE                                                                                 \
    "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\\r\\n\\p{L}\\p{P}\\p{S}]?"        \
    "[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"

/* Latin, Greek, Cyrillic, ... letter ranges DeepSeek LLM's tokenizer.json lists by hand. */
#define DEEPSEEK_LETTERS                                                                       \
    "\\s?[A-Za-z\\x{B5}\\x{C0}-\\x{D6}\\x{D8}-\\x{F6}\\x{F8}-\\x{1BA}\\x{1BC}-\\x{1BF}" \
    "\\x{1C4}-\\x{293}\\x{295}-\\x{2AF}\\x{370}-\\x{373}\\x{376}\\x{377}\\x{37B}-\\x{37D}" \
    "\\x{37F}\\x{386}\\x{388}-\\x{38A}\\x{38C}\\x{38E}-\\x{3A1}\\x{3A3}-\\x{3F5}\\x{3F7}-" \
    "\\x{481}\\x{48A}-\\x{52F}\\x{531}-\\x{556}\\x{10A0}-\\x{10C5}\\x{13A0}-\\x{13F5}" \
    "\\x{13F8}-\\x{13FD}\\x{1C90}-\\x{1CBA}\\x{1CBD}-\\x{1CBF}\\x{1D00}-\\x{1D2B}\\x{1D6B}-" \
    "\\x{1D77}\\x{1D79}-\\x{1D9A}\\x{1E00}-\\x{1F15}\\x{1F18}-\\x{1F1D}\\x{1F20}-\\x{1F45}" \
    "\\x{1F48}-\\x{1F4D}\\x{1F50}-\\x{1F57}\\x{1F59}\\x{1F5B}\\x{1F5D}\\x{1F5F}-\\x{1F7D}" \
    "\\x{1F80}-\\x{1FB4}\\x{1FB6}-\\x{1FBC}\\x{1FBE}\\x{1FC2}-\\x{1FC4}\\x{1FC6}-\\x{1FCC}" \
    "\\x{1FD0}-\\x{1FD3}\\x{1FD6}-\\x{1FDB}\\x{1FE0}-\\x{1FEC}\\x{1FF2}-\\x{1FF4}\\x{1FF6}-" \
    "\\x{1FFC}\\x{2102}\\x{2107}\\x{210A}-\\x{2113}\\x{2115}\\x{2119}-\\x{211D}\\x{2124}" \
    "\\x{2126}\\x{2128}\\x{212A}-\\x{212D}\\x{212F}-\\x{2134}\\x{2139}\\x{213C}-\\x{213F}" \
    "\\x{2145}-\\x{2149}\\x{214E}\\x{2183}\\x{2184}\\x{2C00}-\\x{2C7B}\\x{2C7E}-\\x{2CE4}" \
    "\\x{2CEB}-\\x{2CEE}\\x{2CF2}\\x{2CF3}\\x{A640}-\\x{A66D}\\x{A680}-\\x{A69B}\\x{A722}-" \
    "\\x{A76F}\\x{A771}-\\x{A787}\\x{A78B}-\\x{A78E}\\x{AB70}-\\x{ABBF}\\x{FB00}-\\x{FB06}" \
    "\\x{FB13}-\\x{FB17}\\x{FF21}-\\x{FF3A}\\x{FF41}-\\x{FF5A}\\x{10400}-\\x{1044F}" \
    "\\x{104B0}-\\x{104D3}\\x{104D8}-\\x{104FB}\\x{10C80}-\\x{10CB2}\\x{10CC0}-\\x{10CF2}" \
    "\\x{118A0}-\\x{118DF}\\x{1E900}-\\x{1E943}]+"

#define CJK_HANGUL "[\\x{4E00}-\\x{9FA5}\\x{800}-\\x{4E00}\\x{AC00}-\\x{D7FF}]"
#define PORO_RE " ?[^(\\s|.,!?\\x{2026}\\x{3002}\\x{FF0C}\\x{3001}\\x{964}\\x{6D4}\\x{60C})]+"

typedef struct pre_set {
    const char *names; /* space-separated tokenizer.ggml.pre values */
    const char *re[TOK_MAX_REGEX];
    bool ignore_merges; /* a piece that is a whole token is taken as is */
    bool add_bos;       /* default for tokenizer.ggml.add_bos_token */
    bool no_bos;        /* the family has no BOS token */
} pre_set;

static const pre_set PRE_SETS[] = {
    {"default",
     {"[\\p{P}\\$\\+<=>\\^~\\|]+", GPT2_RE, "\\p{N}+", "[0-9][0-9][0-9]"}, false, false, false},
    {"llama3 llama-v3 llama-bpe falcon3 falcon-h1 pixtral midm-2.0 lfm2 jina-v5-nano",
     {LLAMA3_RE}, true, true, false},
    {"dbrx smaug-bpe", {LLAMA3_RE}, false, false, false},
    {"deepseek-llm",
     {"[\r\n]", DEEPSEEK_LETTERS,
      "\\s?[!-/:-~\\x{FF01}-\\x{FF0F}\\x{FF1A}-\\x{FF5E}\\x{2018}-\\x{201F}\\x{3000}-\\x{3002}]+",
      "\\s+$", CJK_HANGUL "+", "\\p{N}+"},
     false, false, false},
    {"deepseek-coder",
     {"[\r\n]", "\\s?\\p{L}+", "\\s?\\p{P}+", CJK_HANGUL "+", "\\p{N}"}, false, false, false},
    {"deepseek-v3 hunyuan-dense joyai-llm hy_v4",
     {"\\p{N}{1,3}", "[\\x{4E00}-\\x{9FA5}\\x{3040}-\\x{309F}\\x{30A0}-\\x{30FF}]+", DS3_RE},
     false, false, false},
    {"falcon",
     {"[\\p{P}\\$\\+<=>\\^~\\|`]+", GPT2_RE, "[0-9][0-9][0-9]"}, false, false, false},
    {"starcoder refact command-r smollm codeshell exaone minerva-7b mellum2",
     {"\\p{N}", GPT2_RE}, false, false, false},
    {"gpt-2 phi-2 mpt olmo jais trillion granite-docling exaone4 jina-es jina-de gigachat "
     "jina-v2-es jina-v2-de a.x-4.0 mellum modern-bert jina-v1-en jina-v2-code roberta-bpe",
     {GPT2_RE}, false, false, false},
    {"qwen2 deepseek-r1-qwen kormo f2llmv2 stablelm2 megrez hunyuan solar-open grok-2",
     {QWEN2_RE}, false, false, false},
    {"qwen35",
     {CONTRACTIONS "|[^\\r\\n\\p{L}\\p{N}]?[\\p{L}\\p{M}]+|\\p{N}| ?[^\\s\\p{L}\\p{M}\\p{N}]+"
                   "[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"},
     false, false, false},
    {"poro-chat bloom gpt3-finnish", {PORO_RE}, false, false, false},
    {"viking", {PORO_RE, "\\p{N}"}, false, false, false},
    {"glm4 chatglm-bpe",
     {CONTRACTIONS "|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
                   "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"},
     false, false, true},
    {"tekken",
     {"[^\\r\\n\\p{L}\\p{N}]?" UPPER_THEN_LOWER "|[^\\r\\n\\p{L}\\p{N}]?" UPPER_RUN
      "|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"},
     true, true, false},
    {"gpt-4o llama4 kanana2 talkie minimax-m2",
     {"[^\\r\\n\\p{L}\\p{N}]?" UPPER_THEN_LOWER CONTRACTIONS "?|[^\\r\\n\\p{L}\\p{N}]?"
      UPPER_RUN CONTRACTIONS "?|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|"
      "\\s+(?!\\S)|\\s+"},
     false, false, false},
    {"chameleon",
     {"<sentinel:[0-9]+>", "(IMGIMG)((A|B|C|D|E|F|G|H|I){1,4})Z", "([\\t\\n]|    |  )",
      "\\p{N}", "[\\p{P}!-/:-@\\[-`{-~]", GPT2_RE},
     false, true, false},
    {"bailingmoe bailingmoe2 llada-moe",
     {"'(?:[sSdDmMtT]|[lL][lL]|[vV][eE]|[rR][eE])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?"
      "[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]|\\s+(?!\\S)|\\s+"},
     false, false, false},
    {"seed-coder",
     {CONTRACTIONS "|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1}| ?[^\\s\\p{L}\\p{N}\\r\\n]+|"
                   "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"},
     false, false, false},
    {"minicpm5",
     {"\\p{N}{1,3}", CONTRACTIONS "|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}+| ?[^\\s\\p{L}\\p{N}]+"
                                  "[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"},
     true, false, false},
    {"superbpe", {"\\p{N}+", "(?=(\\d{3})+(?!\\d))"}, false, false, false},
};

static bool name_in(const char *names, const char *name) {
    size_t n = strlen(name);
    for (const char *p = names; *p;) {
        const char *e = strchr(p, ' ');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == n && !memcmp(p, name, n)) return true;
        if (!e) break;
        p = e + 1;
    }
    return false;
}

ob_status tok_pretok_setup(tok_vocab *v, const char *pre, ob_err *err) {
    if (!pre[0]) pre = "default"; /* files without the key: the reference's fallback */
    snprintf(v->pre_name, sizeof v->pre_name, "%s", pre);
    if (v->type != TOK_TYPE_BPE) return OB_OK;
    v->add_space_prefix = false;
    const pre_set *set = NULL;
    for (size_t i = 0; i < sizeof PRE_SETS / sizeof PRE_SETS[0] && !set; i++)
        if (name_in(PRE_SETS[i].names, pre)) set = &PRE_SETS[i];
    if (!set)
        return ob_fail(err, OB_ERR_UNSUPPORTED,
                       "key 'tokenizer.ggml.pre': pre-tokenizer '%s' is not supported", pre);
    v->ignore_merges = set->ignore_merges;
    if (set->add_bos) v->add_bos = true;
    if (set->no_bos) v->bos = -1;
    for (size_t i = 0; i < TOK_MAX_REGEX && set->re[i]; i++) {
        int code;
        PCRE2_SIZE at;
        pcre2_code *re = pcre2_compile((PCRE2_SPTR)set->re[i], PCRE2_ZERO_TERMINATED,
                                       PCRE2_UTF | PCRE2_UCP, &code, &at, NULL);
        if (!re) {
            PCRE2_UCHAR msg[160];
            pcre2_get_error_message(code, msg, sizeof msg);
            return ob_fail(err, OB_ERR_UNSUPPORTED, "pre-tokenizer '%s': pattern %zu: %s at %zu",
                           pre, i, (const char *)msg, (size_t)at);
        }
        pcre2_jit_compile(re, PCRE2_JIT_COMPLETE); /* optional: falls back to the interpreter */
        v->re[v->n_re++] = re;
    }
    return OB_OK;
}

void tok_pretok_free(tok_vocab *v) {
    for (size_t i = 0; i < v->n_re; i++) pcre2_code_free(v->re[i]);
    v->n_re = 0;
}

/* ---- splitting ------------------------------------------------------------------------- */

typedef struct span {
    size_t a, b; /* byte range in the normalised text */
} span;

typedef struct span_list {
    span *v;
    size_t n, cap;
    bool oom;
} span_list;

static void span_push(span_list *l, size_t a, size_t b) {
    if (l->oom || a >= b) return;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 256;
        span *nv = ob_realloc(l->v, cap, sizeof *nv);
        if (!nv) {
            l->oom = true;
            return;
        }
        l->v = nv;
        l->cap = cap;
    }
    l->v[l->n++] = (span){a, b};
}

/* Applies one pattern to every span of `in`, writing the finer spans to `out`. */
static ob_status split_one(const pcre2_code *re, const char *s, const span_list *in,
                           span_list *out, pcre2_match_data *md, pcre2_match_context *mc,
                           ob_err *err) {
    for (size_t k = 0; k < in->n; k++) {
        const char *subj = s + in->v[k].a;
        size_t len = in->v[k].b - in->v[k].a, start = 0, last = 0;
        while (start <= len) {
            int rc = pcre2_match(re, (PCRE2_SPTR)subj, len, start, PCRE2_NO_UTF_CHECK, md, mc);
            if (rc == PCRE2_ERROR_NOMATCH) break;
            if (rc < 0) {
                PCRE2_UCHAR msg[160];
                pcre2_get_error_message(rc, msg, sizeof msg);
                return ob_fail(err, OB_ERR_LIMIT, "tokenize: pre-tokenizer regex failed at "
                               "byte %zu: %s", in->v[k].a + start, (const char *)msg);
            }
            PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
            size_t ms = ov[0], me = ov[1];
            span_push(out, in->v[k].a + last, in->v[k].a + ms); /* text before the match */
            span_push(out, in->v[k].a + ms, in->v[k].a + me);
            last = me;
            if (me > ms) {
                start = me;
            } else { /* an empty match splits here; step one character on */
                if (ms >= len) break;
                start = ms + tok_utf8_len((unsigned char)subj[ms]);
            }
        }
        span_push(out, in->v[k].a + last, in->v[k].a + len);
    }
    return out->oom ? ob_fail(err, OB_ERR_NOMEM, "tokenize: no memory for pieces") : OB_OK;
}

/* The text as the reference sees it: code points read leniently, each written back as UTF-8
 * (invalid bytes as U+FFFD). *subj is the same with surrogates also as U+FFFD (same lengths),
 * which is what the regex engine gets. Both are new buffers. */
static ob_status normalise(const char *text, size_t len, char **outp, char **subjp, size_t *n) {
    size_t cap;
    if (ob_mul_size(len, 3, &cap)) return OB_ERR_NOMEM; /* a stray byte grows to 3 */
    char *o = ob_alloc(cap + 4, 1);
    if (!o) return OB_ERR_NOMEM;
    size_t m = 0;
    bool surrogate = false;
    for (size_t i = 0; i < len;) {
        uint32_t cp = tok_utf8_next(text, len, &i);
        surrogate |= cp >= 0xD800 && cp <= 0xDFFF;
        m += tok_utf8_put(cp, o + m);
    }
    char *s = o;
    if (surrogate) {
        if (!(s = ob_alloc(m + 4, 1))) {
            ob_free(o);
            return OB_ERR_NOMEM;
        }
        memcpy(s, o, m);
        for (size_t i = 0; i + 2 < m; i++)
            if ((unsigned char)s[i] == 0xED && ((unsigned char)s[i + 1] & 0xE0) == 0xA0)
                memcpy(s + i, "\xEF\xBF\xBD", 3), i += 2;
    }
    *outp = o;
    *subjp = s;
    *n = m;
    return OB_OK;
}

/* Hands each span to fn, byte-encoded into the GPT-2 alphabet when the vocabulary uses it. */
static ob_status emit_spans(const tok_vocab *v, const char *o, const span_list *l,
                            tok_piece_fn fn, void *ctx, ob_err *err) {
    char *buf = NULL;
    size_t cap = 0;
    ob_status st = OB_OK;
    for (size_t k = 0; k < l->n && !st; k++) {
        const char *p = o + l->v[k].a;
        size_t n = l->v[k].b - l->v[k].a;
        if (!v->byte_encode) {
            st = fn(v, p, n, ctx);
            continue;
        }
        if (2 * n > cap) {
            ob_free(buf);
            cap = 2 * n + 64;
            if (!(buf = ob_alloc(cap, 1))) return ob_fail(err, OB_ERR_NOMEM, "tokenize: no memory");
        }
        size_t m = 0;
        for (size_t i = 0; i < n; i++) {
            uint8_t b = (uint8_t)p[i];
            memcpy(buf + m, v->benc[b], v->benc_len[b]);
            m += v->benc_len[b];
        }
        st = fn(v, buf, m, ctx);
    }
    ob_free(buf);
    if (st == OB_ERR_NOMEM) ob_fail(err, st, "tokenize: no memory");
    return st;
}

ob_status tok_pretok_split(const tok_vocab *v, const char *text, size_t len, tok_piece_fn fn,
                           void *ctx, ob_err *err) {
    char *o = NULL, *s = NULL;
    size_t n = 0;
    if (normalise(text, len, &o, &s, &n))
        return ob_fail(err, OB_ERR_NOMEM, "tokenize: no memory for %zu bytes", len);
    span_list a = {0}, b = {0};
    span_push(&a, 0, n);
    ob_status st = a.oom ? ob_fail(err, OB_ERR_NOMEM, "tokenize: no memory") : OB_OK;
    pcre2_match_data *md = NULL;
    pcre2_match_context *mc = pcre2_match_context_create(NULL);
    pcre2_jit_stack *js = pcre2_jit_stack_create(32 * 1024, 8 * 1024 * 1024, NULL);
    if (mc && js) pcre2_jit_stack_assign(mc, NULL, js);
    for (size_t r = 0; !st && r < v->n_re; r++) {
        pcre2_match_data_free(md);
        md = pcre2_match_data_create_from_pattern(v->re[r], NULL);
        if (!md || !mc) {
            st = ob_fail(err, OB_ERR_NOMEM, "tokenize: no memory for regex matching");
            break;
        }
        b.n = 0;
        st = split_one(v->re[r], s, &a, &b, md, mc, err);
        span_list t = a;
        a = b;
        b = t;
    }
    if (!st) st = emit_spans(v, o, &a, fn, ctx, err);
    pcre2_match_data_free(md);
    pcre2_match_context_free(mc);
    pcre2_jit_stack_free(js);
    ob_free(a.v);
    ob_free(b.v);
    if (s != o) ob_free(s);
    ob_free(o);
    return st;
}
