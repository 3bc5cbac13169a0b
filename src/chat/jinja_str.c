/*
 * String helpers with Python's str semantics over UTF-8: lengths and indexes count code points,
 * whitespace is Python's (str.isspace), case mapping goes through utf8proc, and split/strip/
 * replace behave as Python's methods of the same names.
 */
#include "chat/jinja_int.h"

#include <string.h>
#include <utf8proc.h>

size_t chat_jx_utf8_len(const char *p, size_t n) {
    size_t count = 0;
    for (size_t i = 0; i < n; i++)
        if (((unsigned char)p[i] & 0xC0) != 0x80) count++;
    return count;
}

size_t chat_jx_utf8_offset(const char *p, size_t n, size_t idx) {
    size_t i = 0;
    while (i < n && idx > 0) {
        i++;
        while (i < n && ((unsigned char)p[i] & 0xC0) == 0x80)
            i++;
        idx--;
    }
    return i;
}

/* Decodes the code point at p[i..n); *len gets its byte length (1 for a bad byte). */
static uint32_t decode_at(const char *p, size_t n, size_t i, size_t *len) {
    utf8proc_int32_t cp;
    utf8proc_ssize_t k =
        utf8proc_iterate((const utf8proc_uint8_t *)p + i, (utf8proc_ssize_t)(n - i), &cp);
    if (k <= 0) {
        *len = 1;
        return 0xFFFD;
    }
    *len = (size_t)k;
    return (uint32_t)cp;
}

/* The code point that ends at p[..end), and its start. */
static uint32_t decode_before(const char *p, size_t end, size_t *start) {
    size_t s = end - 1;
    while (s > 0 && ((unsigned char)p[s] & 0xC0) == 0x80 && end - s < 4)
        s--;
    size_t len;
    uint32_t cp = decode_at(p, end, s, &len);
    if (s + len != end) {
        *start = end - 1;
        return 0xFFFD;
    }
    *start = s;
    return cp;
}

bool chat_jx_is_space(uint32_t cp) {
    if (cp == ' ' || (cp >= 0x09 && cp <= 0x0D) || (cp >= 0x1C && cp <= 0x1F) || cp == 0x85 ||
        cp == 0xA0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 ||
        cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000)
        return true;
    return false;
}

static bool in_chars(uint32_t cp, const chat_val *chars) {
    if (!chars) return chat_jx_is_space(cp);
    const char *p = chars->u.s.p;
    size_t n = chars->u.s.n;
    for (size_t i = 0, len; i < n; i += len)
        if (decode_at(p, n, i, &len) == cp) return true;
    return false;
}

chat_val chat_jx_strip(chat_val s, const chat_val *chars, int which) {
    const char *p = s.u.s.p;
    size_t b = 0, e = s.u.s.n, len;
    if (which & 1)
        while (b < e && in_chars(decode_at(p, e, b, &len), chars))
            b += len;
    if (which & 2) {
        size_t start;
        while (e > b && in_chars(decode_before(p, e, &start), chars))
            e = start;
    }
    return chat_val_str_view(p + b, e - b);
}

static bool is_cased_letter(uint32_t cp) {
    utf8proc_category_t cat = utf8proc_category((utf8proc_int32_t)cp);
    return cat == UTF8PROC_CATEGORY_LU || cat == UTF8PROC_CATEGORY_LL ||
           cat == UTF8PROC_CATEGORY_LT;
}

chat_val chat_jx_case(chat_arena *a, chat_val s, int how) {
    chat_text b;
    chat_text_init(&b, a);
    bool prev_cased = false, first = true;
    for (size_t i = 0, len; i < s.u.s.n; i += len) {
        uint32_t cp = decode_at(s.u.s.p, s.u.s.n, i, &len);
        uint32_t m = cp;
        switch (how) {
        case JX_UPPER: m = (uint32_t)utf8proc_toupper((utf8proc_int32_t)cp); break;
        case JX_LOWER: m = (uint32_t)utf8proc_tolower((utf8proc_int32_t)cp); break;
        case JX_TITLE:
            /* Python's title(): a letter after a cased letter is lowered, else title-cased. */
            m = prev_cased ? (uint32_t)utf8proc_tolower((utf8proc_int32_t)cp)
                           : (uint32_t)utf8proc_totitle((utf8proc_int32_t)cp);
            prev_cased = is_cased_letter(cp);
            break;
        case JX_CAPITALIZE:
            m = first ? (uint32_t)utf8proc_totitle((utf8proc_int32_t)cp)
                      : (uint32_t)utf8proc_tolower((utf8proc_int32_t)cp);
            break;
        }
        first = false;
        if (m == cp) {
            chat_text_add(&b, s.u.s.p + i, len);
        } else {
            utf8proc_uint8_t enc[4];
            utf8proc_ssize_t k = utf8proc_encode_char((utf8proc_int32_t)m, enc);
            chat_text_add(&b, (const char *)enc, (size_t)k);
        }
    }
    if (b.failed) return chat_val_fail();
    return chat_text_val(&b);
}

chat_val chat_jx_replace(chat_arena *a, chat_val s, chat_val old, chat_val neu, int64_t count) {
    chat_text b;
    chat_text_init(&b, a);
    const char *p = s.u.s.p;
    size_t n = s.u.s.n, i = 0;
    if (old.u.s.n == 0) {
        /* Python inserts `new` between every character and at both ends. */
        for (size_t len; i <= n && count != 0; i += len, count--) {
            chat_text_add(&b, neu.u.s.p, neu.u.s.n);
            if (i == n) {
                i = n + 1;
                break;
            }
            decode_at(p, n, i, &len);
            chat_text_add(&b, p + i, len);
        }
        if (i < n) chat_text_add(&b, p + i, n - i);
    } else {
        while (count != 0) {
            const char *hit = i < n ? memmem(p + i, n - i, old.u.s.p, old.u.s.n) : NULL;
            if (!hit) break;
            size_t at = (size_t)(hit - p);
            chat_text_add(&b, p + i, at - i);
            chat_text_add(&b, neu.u.s.p, neu.u.s.n);
            i = at + old.u.s.n;
            if (count > 0) count--;
        }
        chat_text_add(&b, p + i, n - i);
    }
    if (b.failed) return chat_val_fail();
    return chat_text_val(&b);
}

/* Needles up to this long are found from the right by a backward scan (at most this many
 * bytes compared per offset); longer ones by memmem over reversed copies, which is linear
 * where the scan would be O(n * k). */
#define RFIND_SCAN_MAX 16

/* p[0..n) reversed, in the arena; NULL when out of memory. */
static char *reversed(chat_arena *a, const char *p, size_t n) {
    char *r = chat_arena_alloc(a, n ? n : 1);
    if (r)
        for (size_t i = 0; i < n; i++)
            r[i] = p[n - 1 - i];
    return r;
}

int64_t chat_jx_rfind(chat_arena *a, const char *hay, size_t n, const char *needle, size_t k) {
    if (k > n) return -1;
    if (k <= RFIND_SCAN_MAX) {
        for (size_t j = n - k + 1; j-- > 0;)
            if (memcmp(hay + j, needle, k) == 0) return (int64_t)j;
        return -1;
    }
    char *rh = reversed(a, hay, n), *rn = rh ? reversed(a, needle, k) : NULL;
    if (!rn) return -2;
    const char *hit = memmem(rh, n, rn, k);
    return hit ? (int64_t)(n - (size_t)(hit - rh) - k) : -1;
}

static int push_piece(chat_arena *a, chat_val list, const char *p, size_t n) {
    return chat_list_push(a, list.u.l, chat_val_str_view(p, n));
}

/* split() without a separator: runs of whitespace, no empty pieces. */
static chat_val split_ws(chat_arena *a, chat_val s, int64_t maxsplit, bool from_right,
                         chat_val out) {
    const char *p = s.u.s.p;
    size_t n = s.u.s.n, len;
    if (!from_right) {
        size_t i = 0;
        while (i < n) {
            while (i < n && chat_jx_is_space(decode_at(p, n, i, &len)))
                i += len;
            if (i >= n) break;
            if (maxsplit == 0) {
                chat_val rest = chat_jx_strip(chat_val_str_view(p + i, n - i), NULL, 2);
                if (push_piece(a, out, rest.u.s.p, rest.u.s.n)) return chat_val_fail();
                break;
            }
            size_t start = i;
            while (i < n && !chat_jx_is_space(decode_at(p, n, i, &len)))
                i += len;
            if (push_piece(a, out, p + start, i - start)) return chat_val_fail();
            if (maxsplit > 0) maxsplit--;
        }
        return out;
    }
    /* rsplit: collect from the right, then reverse. */
    size_t e = n, start;
    while (e > 0) {
        while (e > 0 && chat_jx_is_space(decode_before(p, e, &start)))
            e = start;
        if (e == 0) break;
        if (maxsplit == 0) {
            chat_val rest = chat_jx_strip(chat_val_str_view(p, e), NULL, 1);
            if (push_piece(a, out, rest.u.s.p, rest.u.s.n)) return chat_val_fail();
            break;
        }
        size_t end = e;
        while (e > 0 && !chat_jx_is_space(decode_before(p, e, &start)))
            e = start;
        if (push_piece(a, out, p + e, end - e)) return chat_val_fail();
        if (maxsplit > 0) maxsplit--;
    }
    for (size_t i = 0, j = out.u.l->n; i + 1 < j; i++, j--) {
        chat_val t = out.u.l->items[i];
        out.u.l->items[i] = out.u.l->items[j - 1];
        out.u.l->items[j - 1] = t;
    }
    return out;
}

chat_val chat_jx_split(chat_arena *a, chat_val s, chat_val sep, int64_t maxsplit, bool from_right) {
    chat_val out = chat_val_list(a, 4);
    if (chat_val_failed(out)) return out;
    if (sep.type != CHAT_STR) return split_ws(a, s, maxsplit, from_right, out);
    const char *p = s.u.s.p;
    size_t n = s.u.s.n, k = sep.u.s.n;
    if (!from_right) {
        size_t i = 0;
        for (; maxsplit != 0; maxsplit--) {
            const char *hit = i <= n ? memmem(p + i, n - i, sep.u.s.p, k) : NULL;
            if (!hit) break;
            if (push_piece(a, out, p + i, (size_t)(hit - p) - i)) return chat_val_fail();
            i = (size_t)(hit - p) + k;
        }
        if (push_piece(a, out, p + i, n - i)) return chat_val_fail();
        return out;
    }
    /* From the right: a long separator is searched for in reversed copies, once, so the whole
     * split stays linear (see chat_jx_rfind). */
    size_t e = n;
    const char *rp = NULL, *rsep = NULL;
    if (k > RFIND_SCAN_MAX) {
        rp = reversed(a, p, n);
        rsep = rp ? reversed(a, sep.u.s.p, k) : NULL;
        if (!rsep) return chat_val_fail();
    }
    for (; maxsplit != 0 && e >= k; maxsplit--) {
        int64_t found;
        if (rp) {
            const char *hit = memmem(rp + (n - e), e, rsep, k);
            found = hit ? (int64_t)(n - (size_t)(hit - rp) - k) : -1;
        } else {
            found = chat_jx_rfind(a, p, e, sep.u.s.p, k);
        }
        if (found < 0) break;
        if (push_piece(a, out, p + found + k, e - (size_t)found - k)) return chat_val_fail();
        e = (size_t)found;
    }
    if (push_piece(a, out, p, e)) return chat_val_fail();
    for (size_t i = 0, j = out.u.l->n; i + 1 < j; i++, j--) {
        chat_val t = out.u.l->items[i];
        out.u.l->items[i] = out.u.l->items[j - 1];
        out.u.l->items[j - 1] = t;
    }
    return out;
}
