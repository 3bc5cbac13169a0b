/*
 * Template values: what a chat template computes with. A chat_val is a small tagged union passed
 * by value; strings, lists, dicts and callables live in a chat_arena that belongs to one render,
 * so a whole render's values are freed at once and no value needs a reference count. Lists and
 * dicts are shared by pointer (Python's reference semantics: `ns.x = ...` and `.append()` are
 * seen by every holder). Dicts keep insertion order, as Python's do.
 *
 * The printing rules follow Python: str(None) is "None", floats print as repr() does (shortest
 * round-trip digits), lists and dicts print as their repr(). JSON comes in through jansson and
 * goes out as json.dumps would write it (chat_val_to_json).
 *
 * A template can build values of any depth (`{% set ns.x = [ns.x] %}` in a loop) and values that
 * contain themselves (`x.append(x)`), so every walk over a value (printing, comparing, JSON) is
 * bounded by CHAT_VAL_MAX_DEPTH and fails past it instead of exhausting the C stack; printing
 * shows a value inside itself as Python does ([...]).
 */
#ifndef OB_CHAT_VALUE_H
#define OB_CHAT_VALUE_H

#include "outboard.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- arena ----------------------------------------------------------------------------- */

/* A bump allocator over ob_alloc'd chunks with a byte cap; freeing it frees everything. */
typedef struct chat_arena chat_arena;

/* A new arena that refuses to grow past `cap` bytes in all. NULL on allocation failure. */
chat_arena *chat_arena_new(size_t cap);
void chat_arena_free(chat_arena *a);

/* `size` bytes aligned for any value, or NULL when out of memory or past the cap
 * (chat_arena_over_cap tells which). */
void *chat_arena_alloc(chat_arena *a, size_t size);
bool chat_arena_over_cap(const chat_arena *a);
/* Printing a value into a chat_text in this arena stopped at CHAT_VAL_MAX_DEPTH (the text is
 * then marked failed, like an allocation failure). _take reads the mark and clears it. */
void chat_arena_set_too_deep(chat_arena *a);
bool chat_arena_take_too_deep(chat_arena *a);

/* ---- values ---------------------------------------------------------------------------- */

typedef enum chat_vtype {
    CHAT_UNDEF = 0, /* jinja2's Undefined: prints empty, is false, fails on use */
    CHAT_NONE,
    CHAT_BOOL,
    CHAT_INT,
    CHAT_FLOAT,
    CHAT_STR,
    CHAT_LIST, /* also tuples (flag CHAT_F_TUPLE) */
    CHAT_DICT, /* also namespace() objects (flag CHAT_F_NS) */
    CHAT_FUNC,
    CHAT_LOOP, /* the `loop` object of a for loop */
} chat_vtype;

#define CHAT_F_TUPLE 1u
#define CHAT_F_NS    2u
#define CHAT_F_SAFE  4u /* a string marked |safe (printing is the same: nothing is escaped) */

typedef struct chat_list chat_list;
typedef struct chat_dict chat_dict;
typedef struct chat_func chat_func;
typedef struct chat_loop chat_loop;

typedef struct chat_val {
    uint16_t type; /* chat_vtype */
    uint16_t flags;
    union {
        bool b;
        int64_t i;
        double f;
        struct {
            const char *p; /* UTF-8, not NUL-terminated; immutable once made */
            size_t n;
        } s;
        chat_list *l;
        chat_dict *d;
        chat_func *fn;
        chat_loop *loop;
        const char *hint; /* CHAT_UNDEF: why it is undefined (NUL-terminated) or NULL */
    } u;
} chat_val;

struct chat_list {
    size_t n, cap;
    chat_val *items; /* (cap) values, first n used */
};

/* How deep printing, comparing and JSON go into nested lists and dicts (Python stops at its
 * recursion limit, about 1000 frames). */
#define CHAT_VAL_MAX_DEPTH 512

struct chat_dict {
    size_t n, cap;
    chat_val *keys;   /* (cap) keys, first n used, in insertion order */
    chat_val *vals;   /* (cap) values parallel to keys */
    uint32_t *index;  /* (index_cap) hash slots: 0 = empty, else entry number + 1; NULL while
                       * the dict is small enough to scan */
    size_t index_cap; /* a power of two, at least twice n */
};

/* Constructors for scalars (no allocation). */
chat_val chat_val_undef(const char *hint);
chat_val chat_val_none(void);
chat_val chat_val_bool(bool b);
chat_val chat_val_int(int64_t i);
chat_val chat_val_float(double f);

/* A string copied into the arena / a view of bytes that outlive the arena's use. On allocation
 * failure the result has type CHAT_UNDEF with hint NULL and chat_val_failed() is true. */
chat_val chat_val_str(chat_arena *a, const char *p, size_t n);
chat_val chat_val_str_view(const char *p, size_t n);
chat_val chat_val_cstr(chat_arena *a, const char *s);
bool chat_val_failed(chat_val v);
/* The failure marker itself, for helpers that make values. */
chat_val chat_val_fail(void);

/* New empty list / dict (NULL pointer inside => allocation failure, see chat_val_failed). */
chat_val chat_val_list(chat_arena *a, size_t cap);
chat_val chat_val_dict(chat_arena *a, size_t cap);

/* Appends to a list; -1 on allocation failure. */
int chat_list_push(chat_arena *a, chat_list *l, chat_val v);

/* Dicts (value_dict.c) keep a hash index once they pass a few entries, so lookups and inserts
 * take constant time on average whatever the size (templates build dicts in loops). */

/* Looks a key up; NULL when absent (also for keys nested past CHAT_VAL_MAX_DEPTH). */
chat_val *chat_dict_find(const chat_dict *d, chat_val key);
chat_val *chat_dict_find_cstr(const chat_dict *d, const char *key);
/* Sets (replacing in place when present, else appending); -1 on allocation failure. */
int chat_dict_set(chat_arena *a, chat_dict *d, chat_val key, chat_val v);
int chat_dict_set_cstr(chat_arena *a, chat_dict *d, const char *key, chat_val v);
/* Removes a key (keeping the order of the rest: O(n)); returns 1 when it was there. */
int chat_dict_del(chat_dict *d, chat_val key);
/* Removes every entry (the storage stays for reuse). */
void chat_dict_clear(chat_dict *d);

/* Python truthiness. */
bool chat_val_truthy(chat_val v);
/* Python ==, deep for lists and dicts; int, float and bool compare by number. Returns 1 (equal),
 * 0 (not equal) or CHAT_VAL_TOO_DEEP when the walk passes CHAT_VAL_MAX_DEPTH (two values that
 * contain themselves, or very deep ones: Python raises RecursionError there). */
int chat_val_eq(chat_val a, chat_val b);
#define CHAT_VAL_TOO_DEEP (-2)
/* Python ordering for numbers with numbers, strings with strings, lists element-wise: sets
 * *cmp to -1/0/1 and returns 0, or returns -1 when the two cannot be ordered, or
 * CHAT_VAL_TOO_DEEP. */
int chat_val_compare(chat_val a, chat_val b, int *cmp);
/* Sorts order[0..n) (indices into keys) stably by chat_val_compare of keys[order[i]], largest
 * first when rev; tmp is scratch of n entries. Returns 0, or chat_val_compare's failure with the
 * two indices it could not order in bad[0..1]. O(n log n). */
int chat_val_sort_index(const chat_val *keys, size_t *order, size_t *tmp, size_t n, bool rev,
                        size_t bad[2]);
/* "str", "int", "dict object"-style names for messages. */
const char *chat_val_type_name(chat_val v);

/* ---- text ------------------------------------------------------------------------------ */

/* A growable byte buffer in the arena. */
typedef struct chat_text {
    chat_arena *a;
    char *p;
    size_t n, cap;
    bool failed; /* an append ran out of memory; the contents are then incomplete */
} chat_text;

void chat_text_init(chat_text *b, chat_arena *a);
void chat_text_add(chat_text *b, const char *p, size_t n);
void chat_text_adds(chat_text *b, const char *s);
/* The contents as a string value (shares the buffer). */
chat_val chat_text_val(const chat_text *b);

/* Python str(v) appended to b (repr for items inside lists and dicts). A list or dict inside
 * itself prints as [...] or {...}; past CHAT_VAL_MAX_DEPTH, b is marked failed and the arena
 * too deep (chat_arena_take_too_deep). */
void chat_val_write_str(chat_text *b, chat_val v);
/* Python repr(v), likewise. */
void chat_val_write_repr(chat_text *b, chat_val v);
/* Python repr() of a float: shortest digits that read back to the same double. */
void chat_float_repr(double f, char out[32]);

/* json.dumps(v, ensure_ascii, indent, separators): indent < 0 means None; item_sep and key_sep
 * NULL mean Python's defaults for the indent given. sort_keys sorts dict keys. Returns -1 and
 * writes a message into `why` (64 bytes) for values JSON cannot hold, values that contain
 * themselves ("Circular reference detected", as Python says), or CHAT_VAL_TOO_DEEP for values
 * nested deeper than CHAT_VAL_MAX_DEPTH. */
int chat_val_to_json(chat_text *b, chat_val v, bool ensure_ascii, int indent, const char *item_sep,
                     const char *key_sep, bool sort_keys, char *why);

/* A value from parsed JSON (a jansson json_t *, passed as void * to keep jansson out of this
 * header). Objects keep their key order. OB_ERR_NOMEM / OB_ERR_LIMIT on failure. */
ob_status chat_val_from_json(chat_arena *a, const void *json, chat_val *out, ob_err *err);

#endif
