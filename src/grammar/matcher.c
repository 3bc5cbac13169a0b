/*
 * The grammar matcher: a set of pushdown stacks advanced by UTF-8 bytes.
 *
 * A stack says what comes next and where to return afterwards. Stacks are hash-consed nodes
 * (pos, parent), so pushing is one table lookup and two stacks that reached the same place by
 * different routes become the same node: the set after any input is a small sorted list of
 * node ids, and the tails that generations of the set share are stored once. A node never sits
 * on an END element: a position at the end of an alternative *is* its parent (norm below),
 * which is also why `x*` (R ::= x R | "") runs in constant stack depth.
 *
 * Every set is closed: each stack's top is a character class or a token element, or the stack
 * is empty (node 0), which means the grammar may end there. Bytes move only the stacks with a
 * class on top; a token moves those with a token element that takes it (and, when it has text,
 * the class stacks its bytes lead to), so the two kinds of terminal live in one set. A byte that completes a code point moves every stack
 * whose class matches it past that class and closes the result again; a byte inside a
 * multi-byte character only narrows the code points still possible, and is viable when some
 * class may still match one of them.
 */
#include "grammar/grammar.h"

#include "core/alloc.h"
#include "core/err.h"

#include <string.h>

/* Deeper closures than this mean a grammar nested absurdly deep; the matcher then refuses. */
#define GRAM_MAX_CLOSURE_DEPTH 4096

/* ---- hash-consed nodes ------------------------------------------------------------------ */

static uint32_t node_hash(uint32_t pos, uint32_t parent) {
    uint64_t h = ((uint64_t)pos << 32 | parent) * 0x9E3779B97F4A7C15ull;
    return (uint32_t)(h >> 32);
}

static bool nodes_rehash(gram_nodes *t, size_t n_slots) {
    uint32_t *s = ob_calloc(n_slots, sizeof *s);
    if (!s) return false;
    for (size_t id = 1; id < t->n; id++) {
        size_t k = node_hash(t->pos[id], t->parent[id]) & (n_slots - 1);
        while (s[k]) k = (k + 1) & (n_slots - 1);
        s[k] = (uint32_t)id;
    }
    ob_free(t->slots);
    t->slots = s;
    t->n_slots = n_slots;
    return true;
}

static bool nodes_grow(gram_nodes *t) {
    size_t cap = t->cap * 2;
    uint32_t *pos = ob_realloc(t->pos, cap, sizeof *pos);
    if (pos) t->pos = pos;
    uint32_t *par = ob_realloc(t->parent, cap, sizeof *par);
    if (par) t->parent = par;
    uint32_t *vis = ob_realloc(t->visit, cap, sizeof *vis);
    if (vis) t->visit = vis;
    if (!pos || !par || !vis) return false;
    memset(t->visit + t->cap, 0, (cap - t->cap) * sizeof *vis);
    t->cap = cap;
    return true;
}

/* The node (pos, parent), made when new; 0 with m->oom set when out of room. */
static uint32_t node_get(gram_match *m, uint32_t pos, uint32_t parent) {
    gram_nodes *t = &m->nodes;
    size_t k = node_hash(pos, parent) & (t->n_slots - 1);
    for (uint32_t id; (id = t->slots[k]); k = (k + 1) & (t->n_slots - 1))
        if (t->pos[id] == pos && t->parent[id] == parent) return id;
    if (t->n >= GRAM_MAX_NODES || (t->n == t->cap && !nodes_grow(t))) {
        m->oom = true;
        return 0;
    }
    uint32_t id = (uint32_t)t->n++;
    t->pos[id] = pos;
    t->parent[id] = parent;
    t->slots[k] = id;
    if (t->n * 2 > t->n_slots && !nodes_rehash(t, t->n_slots * 2)) m->oom = true;
    return id;
}

/* The stack that continues at element pos, then returns to parent. */
static uint32_t norm(gram_match *m, uint32_t pos, uint32_t parent) {
    if (m->g->elems[pos].op == GRAM_END) return parent;
    return node_get(m, pos, parent);
}

/* ---- closure -------------------------------------------------------------------------- */

static void tmp_push(gram_match *m, uint32_t id) {
    if (m->n_tmp == m->cap_tmp) {
        size_t cap = m->cap_tmp ? m->cap_tmp * 2 : 64;
        uint32_t *t = ob_realloc(m->tmp, cap, sizeof *t);
        if (!t) {
            m->oom = true;
            return;
        }
        m->tmp = t;
        m->cap_tmp = cap;
    }
    m->tmp[m->n_tmp++] = id;
}

/* Adds to m->tmp every stack with a class (or nothing) on top that `id` leads to without
 * consuming input. Visited nodes are marked with the current generation, so each is expanded
 * once per closure and the result has no duplicates. */
static void expand(gram_match *m, uint32_t id, int depth) {
    gram_nodes *t = &m->nodes;
    if (m->oom || t->visit[id] == t->gen) return;
    t->visit[id] = t->gen;
    if (id == 0) {
        tmp_push(m, 0);
        return;
    }
    const gram_elem *e = &m->g->elems[t->pos[id]];
    if (e->op != GRAM_REF) { /* a terminal: a class or a token element */
        tmp_push(m, id);
        return;
    }
    if (depth > GRAM_MAX_CLOSURE_DEPTH) {
        m->oom = true;
        return;
    }
    uint32_t cont = norm(m, t->pos[id] + 1, t->parent[id]);
    const gram_rule *r = &m->g->rules[e->arg];
    for (uint32_t a = 0; a < r->alt_n && !m->oom; a++)
        expand(m, norm(m, m->g->alts[r->alt_first + a], cont), depth + 1);
}

static void next_gen(gram_match *m) {
    if (++m->nodes.gen == 0) { /* wrapped: old marks could collide, so clear them */
        memset(m->nodes.visit, 0, m->nodes.cap * sizeof *m->nodes.visit);
        m->nodes.gen = 1;
    }
}

static void sort_ids(uint32_t *v, size_t n) {
    for (size_t i = 1; i < n; i++) {
        uint32_t x = v[i];
        size_t j = i;
        for (; j > 0 && v[j - 1] > x; j--) v[j] = v[j - 1];
        v[j] = x;
    }
}

/* ---- init / copy ------------------------------------------------------------------------ */

static bool set_store(gram_match *m, const uint32_t *set, size_t n) {
    if (n > m->cap_cur) {
        uint32_t *c = ob_realloc(m->cur, n, sizeof *c);
        if (!c) return false;
        m->cur = c;
        m->cap_cur = n;
    }
    memmove(m->cur, set, n * sizeof *set);
    m->st.set = m->cur;
    m->st.n = (uint32_t)n;
    return true;
}

ob_status gram_match_init(gram_match *m, const ob_grammar *g, ob_err *err) {
    memset(m, 0, sizeof *m);
    m->g = g;
    gram_nodes *t = &m->nodes;
    t->cap = 256;
    t->pos = ob_alloc(t->cap, sizeof *t->pos);
    t->parent = ob_alloc(t->cap, sizeof *t->parent);
    t->visit = ob_calloc(t->cap, sizeof *t->visit);
    t->n = 1; /* node 0: the empty stack */
    if (t->pos && t->parent && t->visit && nodes_rehash(t, 512)) {
        t->pos[0] = t->parent[0] = UINT32_MAX;
        /* The start: every alternative of the root, returning to the empty stack. */
        next_gen(m);
        const gram_rule *r = &g->rules[g->root];
        for (uint32_t a = 0; a < r->alt_n; a++) expand(m, norm(m, g->alts[r->alt_first + a], 0), 0);
        sort_ids(m->tmp, m->n_tmp);
        if (!m->oom && set_store(m, m->tmp, m->n_tmp)) return OB_OK;
    }
    gram_match_free(m);
    return ob_fail(err, OB_ERR_NOMEM, "grammar matcher: out of memory");
}

void gram_match_free(gram_match *m) {
    ob_free(m->nodes.pos);
    ob_free(m->nodes.parent);
    ob_free(m->nodes.visit);
    ob_free(m->nodes.slots);
    ob_free(m->cur);
    ob_free(m->tmp);
    gram_dfa_free(&m->dfa);
    memset(m, 0, sizeof *m);
}

static void *dup(const void *p, size_t n, size_t size) {
    void *d = ob_alloc(n ? n : 1, size);
    if (d && n) memcpy(d, p, n * size);
    return d;
}

ob_status gram_match_copy(gram_match *dst, const gram_match *src, ob_err *err) {
    memset(dst, 0, sizeof *dst);
    const gram_nodes *s = &src->nodes;
    gram_nodes *t = &dst->nodes;
    dst->g = src->g;
    dst->st = src->st;
    *t = (gram_nodes){.n = s->n, .cap = s->cap, .n_slots = s->n_slots, .gen = 1};
    t->pos = dup(s->pos, s->cap, sizeof *t->pos);
    t->parent = dup(s->parent, s->cap, sizeof *t->parent);
    t->visit = ob_calloc(s->cap, sizeof *t->visit);
    t->slots = dup(s->slots, s->n_slots, sizeof *t->slots);
    if (!t->pos || !t->parent || !t->visit || !t->slots ||
        !set_store(dst, src->st.set, src->st.n)) {
        gram_match_free(dst);
        return ob_fail(err, OB_ERR_NOMEM, "grammar matcher: out of memory");
    }
    dst->oom = src->oom;
    return OB_OK;
}

/* ---- stepping --------------------------------------------------------------------------- */

/* Whether some stack of st may match a code point in [lo, hi] (a partial character). A negated
 * class is taken to allow it: the exact test happens when the character is complete. A range
 * that holds no Unicode scalar value (only surrogates, as after the bytes ED A0, or only values
 * past U+10FFFF) matches nothing: no continuation could complete it, so taking its first bytes
 * would leave the sequence with no token allowed next. */
bool gram_match_may_match(const gram_match *m, const gram_state *st, uint32_t lo, uint32_t hi) {
    if (hi > 0x10FFFF) hi = 0x10FFFF;
    if (lo > hi || (lo >= 0xD800 && hi <= 0xDFFF)) return false;
    const ob_grammar *g = m->g;
    for (uint32_t i = 0; i < st->n; i++) {
        if (!st->set[i]) continue;
        const gram_elem *e = &g->elems[m->nodes.pos[st->set[i]]];
        if (e->op != GRAM_CLASS) continue;
        const gram_class *k = &g->classes[e->arg];
        if (k->negated) return true;
        for (uint32_t r = 0; r < k->n; r++)
            if (g->ranges[k->first + r].lo <= hi && g->ranges[k->first + r].hi >= lo) return true;
    }
    return false;
}

/* The closure of every stack of `from` whose class takes cp, into m->tmp (sorted). */
void gram_match_advance(gram_match *m, const gram_state *from, uint32_t cp) {
    m->n_tmp = 0;
    next_gen(m);
    const ob_grammar *g = m->g;
    for (uint32_t i = 0; i < from->n && !m->oom; i++) {
        uint32_t id = from->set[i];
        if (!id) continue;
        uint32_t pos = m->nodes.pos[id];
        if (g->elems[pos].op != GRAM_CLASS || !gram_class_match(g, g->elems[pos].arg, cp))
            continue;
        expand(m, norm(m, pos + 1, m->nodes.parent[id]), 0);
    }
    sort_ids(m->tmp, m->n_tmp);
}

bool gram_match_step(gram_match *m, const gram_state *from, uint8_t b, gram_state *to,
                     uint32_t **buf, size_t *n_buf, size_t *cap_buf) {
    if (m->oom) return false;
    *to = *from;
    if (from->rem == 0) {
        if (b >= 0x80) {
            if (b >= 0xC2 && b <= 0xDF) *to = (gram_state){from->set, from->n, b & 0x1Fu, 1, 0x80};
            else if ((b & 0xF0) == 0xE0) *to = (gram_state){from->set, from->n, b & 0x0Fu, 2, 0x800};
            else if (b >= 0xF0 && b <= 0xF4)
                *to = (gram_state){from->set, from->n, b & 0x07u, 3, 0x10000};
            else return false;
        } else {
            to->cp = b;
        }
    } else {
        if ((b & 0xC0) != 0x80) return false;
        to->cp = (from->cp << 6) | (b & 0x3Fu);
        to->rem--;
    }
    if (to->rem) {
        uint32_t shift = 6u * to->rem;
        uint32_t lo = to->cp << shift, hi = lo | ((1u << shift) - 1);
        if (lo < to->min) lo = to->min;
        return lo <= hi && gram_match_may_match(m, to, lo, hi > 0x10FFFF ? 0x10FFFF : hi);
    }
    uint32_t cp = to->cp;
    if (cp < from->min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    gram_match_advance(m, from, cp);
    if (m->oom || m->n_tmp == 0) return false;
    if (*n_buf + m->n_tmp > *cap_buf) {
        size_t cap = *cap_buf ? *cap_buf * 2 : 1024;
        while (cap < *n_buf + m->n_tmp) cap *= 2;
        uint32_t *nb = ob_realloc(*buf, cap, sizeof *nb);
        if (!nb) {
            m->oom = true;
            return false;
        }
        *buf = nb;
        *cap_buf = cap;
    }
    memcpy(*buf + *n_buf, m->tmp, m->n_tmp * sizeof *m->tmp);
    *to = (gram_state){*buf + *n_buf, (uint32_t)m->n_tmp, 0, 0, 0};
    *n_buf += m->n_tmp;
    return true;
}

bool gram_match_feed(gram_match *m, const char *s, size_t len) {
    gram_state st = m->st;
    uint32_t *buf = NULL;
    size_t n_buf = 0, cap_buf = 0;
    bool ok = true;
    for (size_t i = 0; i < len && ok; i++) {
        gram_state next;
        ok = gram_match_step(m, &st, (uint8_t)s[i], &next, &buf, &n_buf, &cap_buf);
        if (ok && next.set != st.set && st.set != m->cur) {
            /* keep only the newest set at the front of buf, so buf stays small */
            memmove(buf, next.set, next.n * sizeof *buf);
            next.set = buf;
            n_buf = next.n;
        }
        st = next;
    }
    if (ok) {
        gram_state keep = st;
        ok = set_store(m, st.set, st.n);
        if (ok) {
            m->st = keep;
            m->st.set = m->cur;
        }
    }
    ob_free(buf);
    return ok;
}

/* ---- whole tokens ----------------------------------------------------------------------- */

void gram_match_advance_token(gram_match *m, const gram_state *from, int32_t tok, bool eog) {
    m->n_tmp = 0;
    if (from->rem || !m->tok_ids) return;
    next_gen(m);
    const ob_grammar *g = m->g;
    for (uint32_t i = 0; i < from->n && !m->oom; i++) {
        uint32_t id = from->set[i];
        if (!id) continue;
        uint32_t pos = m->nodes.pos[id];
        const gram_elem *e = &g->elems[pos];
        bool takes = e->op == GRAM_TOKEN ? m->tok_ids[e->arg] == tok
                     : e->op == GRAM_TOKEN_NOT ? m->tok_ids[e->arg] != tok && !eog
                                                : false;
        if (takes) expand(m, norm(m, pos + 1, m->nodes.parent[id]), 0);
    }
    sort_ids(m->tmp, m->n_tmp);
}

/* a[0..na) ∪ b[0..nb), both sorted without duplicates, into out (room for na + nb). */
static size_t merge_sets(const uint32_t *a, size_t na, const uint32_t *b, size_t nb,
                         uint32_t *out) {
    size_t i = 0, j = 0, n = 0;
    while (i < na || j < nb) {
        if (j >= nb || (i < na && a[i] < b[j])) out[n++] = a[i++];
        else if (i >= na || b[j] < a[i]) out[n++] = b[j++];
        else {
            out[n++] = a[i++];
            j++;
        }
    }
    return n;
}

bool gram_match_accept_token(gram_match *m, int32_t tok, bool eog, const char *text, size_t len,
                             bool text_ok, bool keep_end) {
    if (m->oom) return false;
    bool end = keep_end && gram_state_can_end(&m->st);
    gram_match_advance_token(m, &m->st, tok, eog);
    if (m->oom) return false;
    /* the token path's set is kept aside: feeding the text reuses m->tmp */
    size_t n_tok = m->n_tmp;
    uint32_t *by_token = ob_alloc(n_tok + 1, sizeof *by_token);
    if (!by_token) {
        m->oom = true;
        return false;
    }
    if (n_tok) memcpy(by_token, m->tmp, n_tok * sizeof *by_token);
    by_token[n_tok] = 0;
    if (end && n_tok > 0 && by_token[0] != 0) { /* the empty stack (id 0) sorts first */
        memmove(by_token + 1, by_token, n_tok * sizeof *by_token);
        by_token[0] = 0;
        n_tok++;
    }
    bool by_text = text_ok && len > 0 && gram_match_feed(m, text, len);
    bool ok = by_text || n_tok > 0;
    if (ok && n_tok > 0) {
        size_t n_text = by_text ? m->st.n : 0;
        uint32_t *both = ob_alloc(n_text + n_tok, sizeof *both);
        if (!both) {
            m->oom = true;
            ok = false;
        } else {
            size_t n = merge_sets(by_text ? m->st.set : NULL, n_text, by_token, n_tok, both);
            ok = set_store(m, both, n);
            if (ok) m->st = (gram_state){m->cur, (uint32_t)n, 0, 0, 0};
            else m->oom = true;
            ob_free(both);
        }
    }
    ob_free(by_token);
    return ok;
}

bool gram_state_can_end(const gram_state *st) {
    return st->rem == 0 && st->n > 0 && st->set[0] == 0;
}

bool gram_state_must_end(const gram_state *st) {
    return st->rem == 0 && st->n == 1 && st->set[0] == 0;
}
