/*
 * Jinja filters over sequences: first, last, join, list, items, reverse, map, select, reject,
 * selectattr, rejectattr, sort, unique, dictsort, batch, sum, min, max. jinja2 returns
 * generators from map/select; these return lists, which print and iterate the same way once
 * a template applies |list (as templates do).
 */
#include "chat/jinja_int.h"

#include <stdio.h>
#include <string.h>

/* item.attr.sub as jinja2's make_attrgetter: dotted, integer parts index lists. */
static ob_status attr_path(jctx *c, const jnode *at, chat_val item, chat_val path, chat_val *out) {
    if (path.type == CHAT_INT) return chat_jx_getitem(c, at, item, path, out);
    if (path.type != CHAT_STR)
        return chat_jx_fail(c, at, OB_ERR_FORMAT, "attribute must be a string");
    const char *p = path.u.s.p, *end = p + path.u.s.n;
    while (p <= end) {
        const char *dot = memchr(p, '.', (size_t)(end - p));
        if (!dot) dot = end;
        chat_val key = chat_val_str_view(p, (size_t)(dot - p));
        bool digits = dot > p;
        int64_t num = 0;
        for (const char *q = p; q < dot && digits; q++) {
            digits = *q >= '0' && *q <= '9';
            num = num * 10 + (*q - '0');
            if (num > (1 << 30)) digits = false;
        }
        ob_status st = chat_jx_getitem(c, at, item, digits ? chat_val_int(num) : key, &item);
        if (st) return st;
        p = dot + 1;
    }
    *out = item;
    return OB_OK;
}

static ob_status items_of(jctx *c, const jnode *at, chat_val in, chat_list **out) {
    return chat_jx_iterate(c, at, in, out);
}

static ob_status new_list(jctx *c, const jnode *at, size_t cap, chat_val *out) {
    *out = chat_val_list(c->a, cap);
    return chat_val_failed(*out) ? chat_jx_nomem(c, at) : OB_OK;
}

ob_status chat_jx_f_first(jctx *c, const jnode *at, chat_val in, const jargs *a, chat_val *out) {
    chat_list *l;
    ob_status st = items_of(c, at, in, &l);
    if (st) return st;
    *out = l->n ? l->items[0] : chat_jx_undef(c, "No first item, sequence was empty.");
    return OB_OK;
}

ob_status chat_jx_f_last(jctx *c, const jnode *at, chat_val in, const jargs *a, chat_val *out) {
    chat_list *l;
    ob_status st = items_of(c, at, in, &l);
    if (st) return st;
    *out = l->n ? l->items[l->n - 1] : chat_jx_undef(c, "No last item, sequence was empty.");
    return OB_OK;
}

ob_status chat_jx_f_join(jctx *c, const jnode *at, chat_val in, const jargs *a, chat_val *out) {
    chat_val sep = chat_jx_arg(a, 0, "d", chat_val_str_view("", 0));
    chat_val attr = chat_jx_arg(a, 1, "attribute", chat_val_none());
    chat_list *l;
    ob_status st = items_of(c, at, in, &l);
    if (!st) st = chat_jx_to_str(c, at, sep, &sep);
    if (st) return st;
    chat_text b;
    chat_text_init(&b, c->a);
    for (size_t i = 0; i < l->n; i++) {
        chat_val v = l->items[i];
        if (attr.type != CHAT_NONE && (st = attr_path(c, at, v, attr, &v))) return st;
        if (i) chat_text_add(&b, sep.u.s.p, sep.u.s.n);
        chat_val_write_str(&b, v);
    }
    if (b.failed) return chat_jx_nomem(c, at);
    *out = chat_text_val(&b);
    return OB_OK;
}

ob_status chat_jx_f_list(jctx *c, const jnode *at, chat_val in, const jargs *a, chat_val *out) {
    chat_list *l;
    ob_status st = items_of(c, at, in, &l);
    if (st || (st = new_list(c, at, l->n, out))) return st;
    for (size_t i = 0; i < l->n; i++)
        if (chat_list_push(c->a, out->u.l, l->items[i])) return chat_jx_nomem(c, at);
    return OB_OK;
}

ob_status chat_jx_f_items(jctx *c, const jnode *at, chat_val in, const jargs *a, chat_val *out) {
    if (in.type == CHAT_UNDEF) return new_list(c, at, 0, out);
    if (in.type != CHAT_DICT)
        return chat_jx_fail(c, at, OB_ERR_FORMAT,
                            "items: can only get item pairs from a mapping, not %s",
                            chat_val_type_name(in));
    jargs none = {0};
    return chat_jx_method(c, at, in, (ob_str){"items", 5}, &none, out);
}

ob_status chat_jx_f_reverse(jctx *c, const jnode *at, chat_val in, const jargs *a, chat_val *out) {
    chat_list *l;
    ob_status st = items_of(c, at, in, &l);
    if (st || (st = new_list(c, at, l->n, out))) return st;
    for (size_t i = l->n; i > 0; i--)
        if (chat_list_push(c->a, out->u.l, l->items[i - 1])) return chat_jx_nomem(c, at);
    if (in.type != CHAT_STR) return OB_OK;
    chat_val joined;
    jargs none = {0};
    if ((st = chat_jx_f_join(c, at, *out, &none, &joined))) return st;
    *out = joined;
    return OB_OK;
}

/* The arguments after the first `skip` positional ones, for passing on to a filter or test. */
static jargs rest_args(const jargs *a, size_t skip) {
    jargs r = *a;
    if (r.pos) r.pos += skip < a->npos ? skip : a->npos;
    r.npos = skip < a->npos ? a->npos - skip : 0;
    return r;
}

ob_status chat_jx_f_map(jctx *c, const jnode *at, chat_val in, const jargs *a, chat_val *out) {
    chat_list *l;
    if (!chat_val_truthy(in)) return new_list(c, at, 0, out); /* jinja2: `if value:` first */
    ob_status st = items_of(c, at, in, &l);
    if (st || (st = new_list(c, at, l->n, out))) return st;
    chat_val attr = chat_jx_arg(a, a->npos ? 99 : 0, "attribute", chat_val_none());
    chat_val def = chat_jx_arg(a, 99, "default", chat_val_undef(""));
    chat_val fname = a->npos ? a->pos[0] : chat_val_none();
    if (attr.type == CHAT_NONE && fname.type != CHAT_STR)
        return chat_jx_fail(c, at, OB_ERR_FORMAT, "map: needs a filter name or attribute=");
    jargs fargs = rest_args(a, 1);
    fargs.nkw = 0;
    for (size_t i = 0; i < l->n; i++) {
        chat_val v = l->items[i];
        if (attr.type != CHAT_NONE) {
            if ((st = attr_path(c, at, v, attr, &v))) return st;
            if (v.type == CHAT_UNDEF && def.type != CHAT_UNDEF) v = def;
        } else if ((st =
                        chat_jx_filter(c, at, (ob_str){fname.u.s.p, fname.u.s.n}, v, &fargs, &v))) {
            return st;
        }
        if (chat_list_push(c->a, out->u.l, v)) return chat_jx_nomem(c, at);
    }
    return OB_OK;
}

/* select/reject (attr = false) and selectattr/rejectattr (attr = true). */
static ob_status select_impl(jctx *c, const jnode *at, chat_val in, const jargs *a, bool attr,
                             bool keep, chat_val *out) {
    chat_list *l;
    if (!chat_val_truthy(in)) return new_list(c, at, 0, out); /* jinja2: `if value:` first */
    ob_status st = items_of(c, at, in, &l);
    if (st || (st = new_list(c, at, l->n, out))) return st;
    size_t skip = attr ? 1 : 0;
    if (attr && a->npos < 1)
        return chat_jx_fail(c, at, OB_ERR_FORMAT, "selectattr: missing attribute");
    chat_val test = a->npos > skip ? a->pos[skip] : chat_val_none();
    if (test.type != CHAT_NONE && test.type != CHAT_STR)
        return chat_jx_fail(c, at, OB_ERR_FORMAT, "select: test name must be a string");
    jargs targs = rest_args(a, skip + 1);
    for (size_t i = 0; i < l->n; i++) {
        chat_val v = l->items[i];
        if (attr && (st = attr_path(c, at, v, a->pos[0], &v))) return st;
        bool r;
        if (test.type == CHAT_NONE)
            r = chat_val_truthy(v);
        else if ((st = chat_jx_test(c, at, (ob_str){test.u.s.p, test.u.s.n}, v, &targs, &r)))
            return st;
        if (r == keep && chat_list_push(c->a, out->u.l, l->items[i])) return chat_jx_nomem(c, at);
    }
    return OB_OK;
}

ob_status chat_jx_f_select(jctx *c, const jnode *at, chat_val in, const jargs *a, chat_val *out) {
    return select_impl(c, at, in, a, false, true, out);
}
ob_status chat_jx_f_reject(jctx *c, const jnode *at, chat_val in, const jargs *a, chat_val *out) {
    return select_impl(c, at, in, a, false, false, out);
}
ob_status chat_jx_f_selectattr(jctx *c, const jnode *at, chat_val in, const jargs *a,
                               chat_val *out) {
    return select_impl(c, at, in, a, true, true, out);
}
ob_status chat_jx_f_rejectattr(jctx *c, const jnode *at, chat_val in, const jargs *a,
                               chat_val *out) {
    return select_impl(c, at, in, a, true, false, out);
}

/* The key a sort or unique compares: the attribute if given, lowered when not case
 * sensitive (jinja2's ignore_case). */
static ob_status sort_key(jctx *c, const jnode *at, chat_val v, chat_val attr, bool cs,
                          chat_val *out) {
    ob_status st;
    if (attr.type != CHAT_NONE && (st = attr_path(c, at, v, attr, &v))) return st;
    if (!cs && v.type == CHAT_STR) {
        v = chat_jx_case(c->a, v, JX_LOWER);
        if (chat_val_failed(v)) return chat_jx_nomem(c, at);
    }
    *out = v;
    return OB_OK;
}

/* vals sorted stably by keys (both (n)), in place: a merge sort of their indices. */
static ob_status sort_pairs(jctx *c, const jnode *at, chat_val *keys, chat_val *vals, size_t n,
                            bool rev) {
    if (n < 2) return OB_OK;
    /* (2n) indices: the order and the sort's scratch; (n) values to permute vals through. A
     * list fits in memory, so 2n indices cannot overflow. */
    size_t *order = chat_arena_alloc(c->a, 2 * n * sizeof *order);
    chat_val *tmp = order ? chat_arena_alloc(c->a, n * sizeof *tmp) : NULL;
    if (!tmp) return chat_jx_nomem(c, at);
    for (size_t i = 0; i < n; i++)
        order[i] = i;
    size_t bad[2];
    int r = chat_val_sort_index(keys, order, order + n, n, rev, bad);
    if (r) return chat_jx_compare_fail(c, at, r, "<", keys[bad[1]], keys[bad[0]]);
    for (size_t i = 0; i < n; i++)
        tmp[i] = vals[order[i]];
    memcpy(vals, tmp, n * sizeof *tmp);
    return OB_OK;
}

static ob_status sorted(jctx *c, const jnode *at, chat_list *l, chat_val attr, bool cs, bool rev,
                        chat_val *out) {
    ob_status st = new_list(c, at, l->n, out);
    chat_val *keys = l->n ? chat_arena_alloc(c->a, l->n * sizeof(chat_val)) : NULL;
    if (st || (l->n && !keys)) return st ? st : chat_jx_nomem(c, at);
    for (size_t i = 0; i < l->n; i++) {
        if ((st = sort_key(c, at, l->items[i], attr, cs, &keys[i]))) return st;
        chat_list_push(c->a, out->u.l, l->items[i]);
    }
    return sort_pairs(c, at, keys, out->u.l->items, l->n, rev);
}

ob_status chat_jx_f_sort(jctx *c, const jnode *at, chat_val in, const jargs *a, chat_val *out) {
    bool rev = chat_val_truthy(chat_jx_arg(a, 0, "reverse", chat_val_bool(false)));
    bool cs = chat_val_truthy(chat_jx_arg(a, 1, "case_sensitive", chat_val_bool(false)));
    chat_val attr = chat_jx_arg(a, 2, "attribute", chat_val_none());
    chat_list *l;
    ob_status st = items_of(c, at, in, &l);
    return st ? st : sorted(c, at, l, attr, cs, rev, out);
}

ob_status chat_jx_f_dictsort(jctx *c, const jnode *at, chat_val in, const jargs *a, chat_val *out) {
    bool cs = chat_val_truthy(chat_jx_arg(a, 0, "case_sensitive", chat_val_bool(false)));
    chat_val by = chat_jx_arg(a, 1, "by", chat_val_str_view("key", 3));
    bool rev = chat_val_truthy(chat_jx_arg(a, 2, "reverse", chat_val_bool(false)));
    if (in.type != CHAT_DICT)
        return chat_jx_fail(c, at, OB_ERR_FORMAT, "dictsort: expected a dict");
    chat_val pairs;
    jargs none = {0};
    ob_status st = chat_jx_method(c, at, in, (ob_str){"items", 5}, &none, &pairs);
    if (st) return st;
    bool by_value = by.type == CHAT_STR && ob_str_eq_cstr((ob_str){by.u.s.p, by.u.s.n}, "value");
    return sorted(c, at, pairs.u.l, chat_val_int(by_value ? 1 : 0), cs, rev, out);
}

ob_status chat_jx_f_unique(jctx *c, const jnode *at, chat_val in, const jargs *a, chat_val *out) {
    bool cs = chat_val_truthy(chat_jx_arg(a, 0, "case_sensitive", chat_val_bool(false)));
    chat_val attr = chat_jx_arg(a, 1, "attribute", chat_val_none());
    chat_list *l;
    ob_status st = items_of(c, at, in, &l);
    if (st || (st = new_list(c, at, l->n, out))) return st;
    /* The keys seen so far, as a dict used as a set: hashed, so unique is linear. */
    chat_val seen = chat_val_dict(c->a, 0);
    if (chat_val_failed(seen)) return chat_jx_nomem(c, at);
    for (size_t i = 0; i < l->n; i++) {
        chat_val k;
        if ((st = sort_key(c, at, l->items[i], attr, cs, &k))) return st;
        if (chat_dict_find(seen.u.d, k)) continue;
        if (chat_dict_set(c->a, seen.u.d, k, chat_val_none()) ||
            chat_list_push(c->a, out->u.l, l->items[i]))
            return chat_jx_nomem(c, at);
    }
    return OB_OK;
}

ob_status chat_jx_f_batch(jctx *c, const jnode *at, chat_val in, const jargs *a, chat_val *out) {
    chat_val cnt = chat_jx_arg(a, 0, "linecount", chat_val_int(0));
    chat_val fill = chat_jx_arg(a, 1, "fill_with", chat_val_none());
    if (cnt.type != CHAT_INT || cnt.u.i <= 0)
        return chat_jx_fail(c, at, OB_ERR_FORMAT, "batch: linecount must be positive");
    chat_list *l;
    ob_status st = items_of(c, at, in, &l);
    if (st || (st = new_list(c, at, 0, out))) return st;
    chat_val row = chat_val_none();
    for (size_t i = 0; i < l->n; i++) {
        if (row.type == CHAT_NONE || row.u.l->n == (size_t)cnt.u.i) {
            if ((st = new_list(c, at, (size_t)cnt.u.i < 64 ? (size_t)cnt.u.i : 64, &row)))
                return st;
            if (chat_list_push(c->a, out->u.l, row)) return chat_jx_nomem(c, at);
        }
        if (chat_list_push(c->a, row.u.l, l->items[i])) return chat_jx_nomem(c, at);
    }
    if (row.type == CHAT_LIST && a->npos + a->nkw > 1)
        while (row.u.l->n < (size_t)cnt.u.i)
            if (chat_list_push(c->a, row.u.l, fill)) return chat_jx_nomem(c, at);
    return OB_OK;
}

ob_status chat_jx_f_sum(jctx *c, const jnode *at, chat_val in, const jargs *a, chat_val *out) {
    chat_val attr = chat_jx_arg(a, 0, "attribute", chat_val_none());
    *out = chat_jx_arg(a, 1, "start", chat_val_int(0));
    chat_list *l;
    ob_status st = items_of(c, at, in, &l);
    for (size_t i = 0; !st && i < l->n; i++) {
        chat_val v = l->items[i];
        if (attr.type != CHAT_NONE && (st = attr_path(c, at, v, attr, &v))) break;
        st = chat_jx_binop(c, at, JOP_ADD, *out, v, out);
    }
    return st;
}

static ob_status min_max(jctx *c, const jnode *at, chat_val in, const jargs *a, bool max,
                         chat_val *out) {
    bool cs = chat_val_truthy(chat_jx_arg(a, 0, "case_sensitive", chat_val_bool(false)));
    chat_val attr = chat_jx_arg(a, 1, "attribute", chat_val_none());
    chat_list *l;
    ob_status st = items_of(c, at, in, &l);
    if (st) return st;
    if (l->n == 0) {
        *out = chat_jx_undef(c, "No aggregated item, sequence was empty.");
        return OB_OK;
    }
    chat_val best_key;
    size_t best = 0;
    if ((st = sort_key(c, at, l->items[0], attr, cs, &best_key))) return st;
    for (size_t i = 1; i < l->n; i++) {
        chat_val k;
        int cmp, r;
        if ((st = sort_key(c, at, l->items[i], attr, cs, &k))) return st;
        if ((r = chat_val_compare(k, best_key, &cmp)))
            return chat_jx_compare_fail(c, at, r, "<", k, best_key);
        if (max ? cmp > 0 : cmp < 0) best = i, best_key = k;
    }
    *out = l->items[best];
    return OB_OK;
}

ob_status chat_jx_f_min(jctx *c, const jnode *at, chat_val in, const jargs *a, chat_val *out) {
    return min_max(c, at, in, a, false, out);
}
ob_status chat_jx_f_max(jctx *c, const jnode *at, chat_val in, const jargs *a, chat_val *out) {
    return min_max(c, at, in, a, true, out);
}
