/*
 * Gemma 4 literals for the JSON-schema translator (json_schema.c in its Gemma mode): the value
 * syntax Gemma 4 writes a tool call's arguments in, as its chat template's format_argument
 * macro writes them and src/chat/output_xml.c reads them back:
 *
 *   {key:<|"|>text<|"|>,n:5,x:1.5,flag:true,none:null,list:[1,2],obj:{k:<|"|>v<|"|>}}
 *
 * Strings sit between two <|"|> delimiters with no escapes; keys are bare; numbers, booleans
 * and null are as in JSON; nothing is spaced. The delimiter is given as a GBNF expression (the
 * control token <[id]> when the vocabulary has one, else the quoted text).
 *
 * What a string may hold follows from the reader: text runs to the next <|"|>, and the tool
 * section around the call ends at <tool_call|> or <turn|> (output_family.c); so a string never
 * has '<' followed by '|' or 't'. A bare key runs to the next ':', ',' or '}' and is trimmed,
 * so a key that is not a plain word is written between delimiters instead (the reader takes
 * that form too).
 */
#include "grammar/schema_int.h"

#include <string.h>

/* Whether s[0..n) can be the text between two delimiters: no "<|" and no "<t" in it, and no
 * '<' at its end either, where it would join the closing delimiter's text when spelled out;
 * no NUL (the text rule's). */
bool gemma_text_ok(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!s[i] || (s[i] == '<' && (i + 1 == n || s[i + 1] == '|' || s[i + 1] == 't')))
            return false;
    return true;
}

/* Whether key can be written bare: a word the reader cannot split or trim. */
static bool bare_key_ok(const char *key) {
    if (!*key) return false;
    for (const char *k = key; *k; k++)
        if (strchr(":,{}[]<\"' \t\r\n", *k)) return false;
    return true;
}

int sb_gemma_key(sb *b, const char *key, const char *quote) {
    if (bare_key_ok(key)) {
        sb_literal(b, key, strlen(key));
        return 0;
    }
    if (strchr(key, '<')) return -1;
    sb_printf(b, "%s ", quote);
    sb_literal(b, key, strlen(key));
    sb_printf(b, " %s", quote);
    return 0;
}

int sb_gemma_literal(sb *b, const json_t *v, const char *quote) {
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        size_t n = json_string_length(v);
        if (!gemma_text_ok(s, n)) return -1;
        sb_printf(b, "%s ", quote);
        if (n) sb_literal(b, s, n);
        sb_printf(b, " %s", quote);
        return 0;
    }
    if (json_is_array(v)) {
        sb_puts(b, "\"[\"");
        for (size_t i = 0; i < json_array_size(v); i++) {
            sb_puts(b, i ? " \",\" " : " ");
            if (sb_gemma_literal(b, json_array_get(v, i), quote)) return -1;
        }
        sb_puts(b, " \"]\"");
        return 0;
    }
    if (json_is_object(v)) {
        const char *key;
        json_t *item;
        bool first = true;
        sb_puts(b, "\"{\"");
        json_object_foreach((json_t *)v, key, item) {
            sb_puts(b, first ? " " : " \",\" ");
            first = false;
            if (sb_gemma_key(b, key, quote)) return -1;
            sb_puts(b, " \":\" ");
            if (sb_gemma_literal(b, item, quote)) return -1;
        }
        sb_puts(b, " \"}\"");
        return 0;
    }
    /* numbers, true, false, null: their JSON text */
    char *text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    if (!text) {
        b->oom = true;
        return 0;
    }
    sb_literal(b, text, strlen(text));
    free(text);
    return 0;
}

void sb_gemma_primitives(sb *b, const char *p, const char *quote) {
    sb_printf(b, "%s-ws ::= \"\"\n", p); /* the template spaces nothing */
    /* a character of bounded text (its length is counted in characters): never '<'; and no
     * NUL in any text, which no model means and C strings downstream cannot hold */
    sb_printf(b, "%s-char ::= [^<\\x00]\n", p);
    /* free text: a '<' only before a character other than '<', '|' or 't' */
    sb_printf(b, "%s-text ::= ([^<\\x00] | \"<\"+ [^<|t\\x00])*\n", p);
    sb_printf(b, "%s-string ::= %s %s-text %s\n", p, quote, p, quote);
    sb_printf(b, "%s-key ::= [A-Za-z_] [A-Za-z0-9_]{0,63}\n", p);
    sb_shared_primitives(b, p);
    sb_printf(b, "%s-object ::= \"{\" (%s-key \":\" %s-value (\",\" %s-key \":\" %s-value)*)? "
                 "\"}\"\n", p, p, p, p, p);
    sb_printf(b, "%s-array ::= \"[\" (%s-value (\",\" %s-value)*)? \"]\"\n", p, p, p);
}
