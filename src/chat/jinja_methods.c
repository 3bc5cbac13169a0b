/*
 * Python methods that chat templates call on values: str (strip, split, startswith, replace,
 * ...), list (append, pop, index, ...) and dict (get, items, keys, values, ...). A method name
 * on a dict wins over a key of the same name for `d.name`, as in jinja2 (`d['name']` is the
 * key).
 */
#include "chat/jinja_int.h"

#include <stdio.h>
#include <string.h>

static const char *const STR_METHODS[] = {
    "strip",   "lstrip",  "rstrip",       "split",        "rsplit",  "startswith", "endswith",
    "lower",   "upper",   "title",        "capitalize",   "replace", "find",       "rfind",
    "count",   "join",    "splitlines",   "isdigit",      "isalpha", "isalnum",    "isspace",
    "islower", "isupper", "removeprefix", "removesuffix", "index",   NULL};
static const char *const LIST_METHODS[] = {"append", "pop",    "index",  "count",
                                           "insert", "extend", "remove", "reverse",
                                           "copy",   "clear",  NULL};
static const char *const DICT_METHODS[] = {"get",    "items", "keys",       "values", "pop",
                                           "update", "copy",  "setdefault", "clear",  NULL};

static int find_name(const char *const *names, ob_str name) {
    for (int i = 0; names[i]; i++)
        if (ob_str_eq_cstr(name, names[i])) return i;
    return -1;
}

/* A tuple has only index and count: it never changes, which dict keys rely on (value_dict.c
 * hashes a tuple by its items). */
static bool tuple_method(ob_str name) {
    return ob_str_eq_cstr(name, "index") || ob_str_eq_cstr(name, "count");
}

bool chat_jx_method_exists(chat_val obj, ob_str name) {
    if (obj.type == CHAT_STR) return find_name(STR_METHODS, name) >= 0;
    if (obj.type == CHAT_LIST && (obj.flags & CHAT_F_TUPLE)) return tuple_method(name);
    if (obj.type == CHAT_LIST) return find_name(LIST_METHODS, name) >= 0;
    if (obj.type == CHAT_DICT && !(obj.flags & CHAT_F_NS))
        return find_name(DICT_METHODS, name) >= 0;
    return false;
}

static ob_status want_str(jctx *c, const jnode *at, chat_val v, const char *what) {
    if (v.type == CHAT_STR) return OB_OK;
    return chat_jx_fail(c, at, OB_ERR_FORMAT, "%s: expected a string, got %s", what,
                        chat_val_type_name(v));
}

static int64_t int_or(chat_val v, int64_t def) {
    return v.type == CHAT_INT ? v.u.i : v.type == CHAT_BOOL ? v.u.b : def;
}

/* startswith/endswith with a string or a tuple of strings (one level, as Python allows: a
 * nested tuple is an error, not a recursion). */
static ob_status affix(jctx *c, const jnode *at, chat_val s, chat_val arg, bool end, bool *out) {
    const char *what = end ? "endswith" : "startswith";
    size_t n = arg.type == CHAT_LIST ? arg.u.l->n : 1;
    *out = false;
    for (size_t i = 0; i < n && !*out; i++) {
        chat_val x = arg.type == CHAT_LIST ? arg.u.l->items[i] : arg;
        ob_status st = want_str(c, at, x, what);
        if (st) return st;
        size_t k = x.u.s.n;
        *out = k <= s.u.s.n && memcmp(s.u.s.p + (end ? s.u.s.n - k : 0), x.u.s.p, k) == 0;
    }
    return OB_OK;
}

static ob_status str_predicate(chat_val s, int which, chat_val *out) {
    /* isdigit isalpha isalnum isspace islower isupper, ASCII classes plus Python's space. */
    bool ok = s.u.s.n > 0, any_cased = false;
    for (size_t i = 0; i < s.u.s.n && ok; i++) {
        unsigned char ch = (unsigned char)s.u.s.p[i];
        switch (which) {
        case 0: ok = ch >= '0' && ch <= '9'; break;
        case 1: ok = (ch | 32) >= 'a' && (ch | 32) <= 'z'; break;
        case 2: ok = ((ch | 32) >= 'a' && (ch | 32) <= 'z') || (ch >= '0' && ch <= '9'); break;
        case 3: ok = chat_jx_is_space(ch); break;
        case 4:
            ok = !(ch >= 'A' && ch <= 'Z');
            any_cased |= ch >= 'a' && ch <= 'z';
            break;
        case 5:
            ok = !(ch >= 'a' && ch <= 'z');
            any_cased |= ch >= 'A' && ch <= 'Z';
            break;
        }
    }
    if (which >= 4) ok = ok && any_cased;
    *out = chat_val_bool(ok);
    return OB_OK;
}

/* find (how 0), rfind (1) and count (2) of a substring; positions count code points. memmem
 * keeps them linear in the string's length whatever the substring. */
static ob_status str_find(jctx *c, const jnode *at, chat_val s, chat_val sub, int how,
                          chat_val *out) {
    ob_status st = want_str(c, at, sub, "find");
    if (st) return st;
    const char *p = s.u.s.p;
    size_t n = s.u.s.n, k = sub.u.s.n;
    if (how == 2) {
        int64_t count = 0;
        if (k == 0) count = (int64_t)chat_jx_utf8_len(p, n) + 1;
        for (size_t i = 0; k && i + k <= n; count++) { /* non-overlapping, as Python counts */
            const char *hit = memmem(p + i, n - i, sub.u.s.p, k);
            if (!hit) break;
            i = (size_t)(hit - p) + k;
        }
        *out = chat_val_int(count);
        return OB_OK;
    }
    int64_t pos;
    if (how == 1) {
        pos = chat_jx_rfind(c->a, p, n, sub.u.s.p, k);
        if (pos == -2) return chat_jx_nomem(c, at);
    } else {
        const char *hit = k <= n ? memmem(p, n, sub.u.s.p, k) : NULL;
        pos = hit ? hit - p : -1;
    }
    *out = chat_val_int(pos < 0 ? -1 : (int64_t)chat_jx_utf8_len(p, (size_t)pos));
    return OB_OK;
}

static ob_status str_join(jctx *c, const jnode *at, chat_val sep, chat_val seq, chat_val *out) {
    chat_list *items;
    ob_status st = chat_jx_iterate(c, at, seq, &items);
    if (st) return st;
    chat_text b;
    chat_text_init(&b, c->a);
    for (size_t i = 0; i < items->n; i++) {
        if ((st = want_str(c, at, items->items[i], "join"))) return st;
        if (i) chat_text_add(&b, sep.u.s.p, sep.u.s.n);
        chat_text_add(&b, items->items[i].u.s.p, items->items[i].u.s.n);
    }
    if (b.failed) return chat_jx_nomem(c, at);
    *out = chat_text_val(&b);
    return OB_OK;
}

/* One branch per str method, indexed as STR_METHODS lists them: a dispatch table in one place
 * reads better than 26 tiny functions. */
static ob_status str_method(jctx *c, const jnode *at, chat_val s, int m, const jargs *a,
                            chat_val *out) {
    chat_val a0 = chat_jx_arg(a, 0, NULL, chat_val_none()),
             a1 = chat_jx_arg(a, 1, NULL, chat_val_none());
    ob_status st = OB_OK;
    bool flag;
    switch (m) {
    case 0:
    case 1:
    case 2: { /* strip lstrip rstrip */
        chat_val chars = chat_jx_arg(a, 0, "chars", chat_val_none());
        if (chars.type != CHAT_NONE && (st = want_str(c, at, chars, "strip"))) return st;
        *out = chat_jx_strip(s, chars.type == CHAT_STR ? &chars : NULL,
                             m == 0   ? 3
                             : m == 1 ? 1
                                      : 2);
        return OB_OK;
    }
    case 3:
    case 4: { /* split rsplit */
        chat_val sep = chat_jx_arg(a, 0, "sep", chat_val_none());
        if (sep.type == CHAT_STR && sep.u.s.n == 0)
            return chat_jx_fail(c, at, OB_ERR_FORMAT, "split: empty separator");
        *out = chat_jx_split(c->a, s, sep,
                             int_or(chat_jx_arg(a, 1, "maxsplit", chat_val_int(-1)), -1), m == 4);
        break;
    }
    case 5:
    case 6:
        if ((st = affix(c, at, s, a0, m == 6, &flag))) return st;
        *out = chat_val_bool(flag);
        return OB_OK;
    case 7:
    case 8:
    case 9:
    case 10:
        *out = chat_jx_case(c->a, s,
                            m == 7   ? JX_LOWER
                            : m == 8 ? JX_UPPER
                            : m == 9 ? JX_TITLE
                                     : JX_CAPITALIZE);
        break;
    case 11:
        if ((st = want_str(c, at, a0, "replace")) || (st = want_str(c, at, a1, "replace")))
            return st;
        *out = chat_jx_replace(c->a, s, a0, a1,
                               int_or(chat_jx_arg(a, 2, "count", chat_val_int(-1)), -1));
        break;
    case 12: return str_find(c, at, s, a0, 0, out);
    case 13: return str_find(c, at, s, a0, 1, out);
    case 14: return str_find(c, at, s, a0, 2, out);
    case 15: return str_join(c, at, s, a0, out);
    case 16: { /* splitlines */
        *out = chat_val_list(c->a, 4);
        if (chat_val_failed(*out)) return chat_jx_nomem(c, at);
        size_t i = 0, start = 0, n = s.u.s.n;
        while (i < n) {
            char ch = s.u.s.p[i];
            if (ch == '\n' || ch == '\r' || ch == '\v' || ch == '\f' ||
                (ch >= 0x1c && ch <= 0x1e)) {
                if (chat_list_push(c->a, out->u.l, chat_val_str_view(s.u.s.p + start, i - start)))
                    return chat_jx_nomem(c, at);
                i += ch == '\r' && i + 1 < n && s.u.s.p[i + 1] == '\n' ? 2 : 1;
                start = i;
            } else {
                i++;
            }
        }
        if (start < n &&
            chat_list_push(c->a, out->u.l, chat_val_str_view(s.u.s.p + start, n - start)))
            return chat_jx_nomem(c, at);
        return OB_OK;
    }
    case 17:
    case 18:
    case 19:
    case 20:
    case 21:
    case 22: return str_predicate(s, m - 17, out);
    case 23:
    case 24: { /* removeprefix removesuffix */
        if ((st = want_str(c, at, a0, "removeprefix"))) return st;
        if ((st = affix(c, at, s, a0, m == 24, &flag))) return st;
        *out = !flag     ? s
               : m == 23 ? chat_val_str_view(s.u.s.p + a0.u.s.n, s.u.s.n - a0.u.s.n)
                         : chat_val_str_view(s.u.s.p, s.u.s.n - a0.u.s.n);
        return OB_OK;
    }
    case 25:
        if ((st = str_find(c, at, s, a0, 0, out))) return st;
        if (out->u.i < 0) return chat_jx_fail(c, at, OB_ERR_FORMAT, "substring not found");
        return OB_OK;
    }
    if (chat_val_failed(*out)) return chat_jx_nomem(c, at);
    return OB_OK;
}

/* One branch per list method, indexed as LIST_METHODS lists them. */
static ob_status list_method(jctx *c, const jnode *at, chat_val self, int m, const jargs *a,
                             chat_val *out) {
    chat_list *l = self.u.l;
    chat_val a0 = chat_jx_arg(a, 0, NULL, chat_val_undef(""));
    *out = chat_val_none();
    switch (m) {
    case 0: /* append */ return chat_list_push(c->a, l, a0) ? chat_jx_nomem(c, at) : OB_OK;
    case 1: { /* pop */
        if (l->n == 0) return chat_jx_fail(c, at, OB_ERR_FORMAT, "pop from empty list");
        int64_t i = int_or(a0, -1);
        if (i < 0) i += (int64_t)l->n;
        if (i < 0 || i >= (int64_t)l->n)
            return chat_jx_fail(c, at, OB_ERR_FORMAT, "pop index out of range");
        *out = l->items[i];
        memmove(&l->items[i], &l->items[i + 1], (l->n - (size_t)i - 1) * sizeof(chat_val));
        l->n--;
        return OB_OK;
    }
    case 2:
    case 3: { /* index count */
        int64_t count = 0;
        for (size_t i = 0; i < l->n; i++) {
            bool eq = false;
            ob_status st = chat_jx_equal(c, at, l->items[i], a0, &eq);
            if (st) return st;
            if (!eq) continue;
            if (m == 2) {
                *out = chat_val_int((int64_t)i);
                return OB_OK;
            }
            count++;
        }
        if (m == 2) return chat_jx_fail(c, at, OB_ERR_FORMAT, "value is not in list");
        *out = chat_val_int(count);
        return OB_OK;
    }
    case 4: { /* insert */
        int64_t i = int_or(a0, 0);
        chat_val v = chat_jx_arg(a, 1, NULL, chat_val_none());
        if (i < 0) i += (int64_t)l->n;
        if (i < 0) i = 0;
        if (i > (int64_t)l->n) i = (int64_t)l->n;
        if (chat_list_push(c->a, l, v)) return chat_jx_nomem(c, at);
        memmove(&l->items[i + 1], &l->items[i], (l->n - 1 - (size_t)i) * sizeof(chat_val));
        l->items[i] = v;
        return OB_OK;
    }
    case 5: { /* extend */
        chat_list *src;
        ob_status st = chat_jx_iterate(c, at, a0, &src);
        if (st) return st;
        size_t n = src->n;
        for (size_t i = 0; i < n; i++)
            if (chat_list_push(c->a, l, src->items[i])) return chat_jx_nomem(c, at);
        return OB_OK;
    }
    case 6: /* remove */
        for (size_t i = 0; i < l->n; i++) {
            bool eq = false;
            ob_status st = chat_jx_equal(c, at, l->items[i], a0, &eq);
            if (st) return st;
            if (!eq) continue;
            memmove(&l->items[i], &l->items[i + 1], (l->n - i - 1) * sizeof(chat_val));
            l->n--;
            return OB_OK;
        }
        return chat_jx_fail(c, at, OB_ERR_FORMAT, "list.remove(x): x not in list");
    case 7: /* reverse */
        for (size_t i = 0, j = l->n; i + 1 < j; i++, j--) {
            chat_val t = l->items[i];
            l->items[i] = l->items[j - 1];
            l->items[j - 1] = t;
        }
        return OB_OK;
    case 8: /* copy */
        *out = chat_val_list(c->a, l->n);
        if (chat_val_failed(*out)) return chat_jx_nomem(c, at);
        for (size_t i = 0; i < l->n; i++)
            chat_list_push(c->a, out->u.l, l->items[i]);
        return OB_OK;
    case 9: l->n = 0; return OB_OK;
    }
    return OB_OK;
}

/* items(), keys(), values() of a dict. */
static ob_status dict_view(jctx *c, const jnode *at, chat_dict *d, int which, chat_val *out) {
    *out = chat_val_list(c->a, d->n);
    if (chat_val_failed(*out)) return chat_jx_nomem(c, at);
    for (size_t i = 0; i < d->n; i++) {
        chat_val item = which == 1 ? d->keys[i] : d->vals[i];
        if (which == 0) {
            item = chat_val_list(c->a, 2);
            if (chat_val_failed(item)) return chat_jx_nomem(c, at);
            item.flags = CHAT_F_TUPLE;
            chat_list_push(c->a, item.u.l, d->keys[i]);
            chat_list_push(c->a, item.u.l, d->vals[i]);
        }
        if (chat_list_push(c->a, out->u.l, item)) return chat_jx_nomem(c, at);
    }
    return OB_OK;
}

static ob_status dict_method(jctx *c, const jnode *at, chat_val self, int m, const jargs *a,
                             chat_val *out) {
    chat_dict *d = self.u.d;
    chat_val a0 = chat_jx_arg(a, 0, NULL, chat_val_undef("")), *v;
    switch (m) {
    case 0: /* get */
        v = chat_dict_find(d, a0);
        *out = v ? *v : chat_jx_arg(a, 1, "default", chat_val_none());
        return OB_OK;
    case 1: return dict_view(c, at, d, 0, out);
    case 2: return dict_view(c, at, d, 1, out);
    case 3: return dict_view(c, at, d, 2, out);
    case 4: /* pop */
        v = chat_dict_find(d, a0);
        if (!v) {
            if (a->npos < 2) return chat_jx_fail(c, at, OB_ERR_FORMAT, "pop: key not found");
            *out = a->pos[1];
            return OB_OK;
        }
        *out = *v;
        chat_dict_del(d, a0);
        return OB_OK;
    case 5: /* update */
        if (a0.type == CHAT_DICT)
            for (size_t i = 0; i < a0.u.d->n; i++)
                if (chat_dict_set(c->a, d, a0.u.d->keys[i], a0.u.d->vals[i]))
                    return chat_jx_nomem(c, at);
        for (size_t i = 0; i < a->nkw; i++)
            if (chat_dict_set(c->a, d, chat_val_str_view(a->kwn[i].ptr, a->kwn[i].len), a->kwv[i]))
                return chat_jx_nomem(c, at);
        *out = chat_val_none();
        return OB_OK;
    case 6: /* copy */
        *out = chat_val_dict(c->a, d->n);
        if (chat_val_failed(*out)) return chat_jx_nomem(c, at);
        for (size_t i = 0; i < d->n; i++)
            if (chat_dict_set(c->a, out->u.d, d->keys[i], d->vals[i])) return chat_jx_nomem(c, at);
        return OB_OK;
    case 7: /* setdefault */
        v = chat_dict_find(d, a0);
        if (v) {
            *out = *v;
            return OB_OK;
        }
        *out = chat_jx_arg(a, 1, NULL, chat_val_none());
        return chat_dict_set(c->a, d, a0, *out) ? chat_jx_nomem(c, at) : OB_OK;
    case 8:
        chat_dict_clear(d);
        *out = chat_val_none();
        return OB_OK;
    }
    return OB_OK;
}

ob_status chat_jx_method(jctx *c, const jnode *at, chat_val self, ob_str name, const jargs *args,
                         chat_val *out) {
    int m;
    ob_status st = chat_jx_work(c, at, self);
    if (!st && args->npos) st = chat_jx_work(c, at, args->pos[0]);
    if (st) return st;
    if (self.type == CHAT_STR && (m = find_name(STR_METHODS, name)) >= 0)
        return str_method(c, at, self, m, args, out);
    if (self.type == CHAT_LIST && (!(self.flags & CHAT_F_TUPLE) || tuple_method(name)) &&
        (m = find_name(LIST_METHODS, name)) >= 0)
        return list_method(c, at, self, m, args, out);
    if (self.type == CHAT_DICT && (m = find_name(DICT_METHODS, name)) >= 0)
        return dict_method(c, at, self, m, args, out);
    return chat_jx_fail(c, at, OB_ERR_FORMAT, "'%s' object has no method '%.*s'",
                        chat_val_type_name(self), OB_STR_FMT(name));
}
