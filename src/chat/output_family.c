/*
 * The model families whose output chat_output parses: for each, the markers that switch between
 * content, reasoning and tool-call bodies (read from the families' chat templates and their
 * makers' documentation), the parser for a tool body, and how the family is recognised from a
 * chat template or a model name. The scanner (output_scan.c) knows nothing family-specific;
 * everything it needs is in these tables.
 */
#include "chat/output_internal.h"

#include "core/err.h"

#include <string.h>

#define MK(t, a) {(t), NULL, (a), 0}
#define END {NULL, NULL, 0, 0}
/* A bare JSON call at the very start of the answer (Llama 3, or a model that forgot its tag). */
#define MK_JSON_START {NULL, chat_match_json_call, CHAT_MK_TOOL, 1}

/* ---- marker tables ---- */

static const chat_marker none[] = {END};

static const chat_marker llama_content[] = {
    MK("<|python_tag|>", CHAT_MK_TOOL), MK_JSON_START, MK("<|eot_id|>", CHAT_MK_DROP),
    MK("<|eom_id|>", CHAT_MK_DROP), MK("<|end_of_text|>", CHAT_MK_DROP), END};
static const chat_marker llama_tool[] = {MK("<|python_tag|>", CHAT_MK_TOOL_NEXT),
                                         MK("<|eot_id|>", CHAT_MK_TOOL_END),
                                         MK("<|eom_id|>", CHAT_MK_TOOL_END),
                                         MK("<|end_of_text|>", CHAT_MK_TOOL_END), END};

static const chat_marker hermes_content[] = {
    MK("<think>", CHAT_MK_REASONING), MK("</think>", CHAT_MK_UNOPENED_CLOSE),
    MK("<tool_call>", CHAT_MK_TOOL), MK_JSON_START, MK("</tool_call>", CHAT_MK_DROP),
    MK("<|im_end|>", CHAT_MK_DROP), MK("<|endoftext|>", CHAT_MK_DROP), END};
static const chat_marker hermes_reasoning[] = {
    MK("</think>", CHAT_MK_CONTENT), MK("<think>", CHAT_MK_DROP), MK("<tool_call>", CHAT_MK_TOOL),
    MK("<|im_end|>", CHAT_MK_DROP), MK("<|endoftext|>", CHAT_MK_DROP), END};
/* A <tool_call> inside a body: the previous call lost its closing tag. */
static const chat_marker hermes_tool[] = {MK("</tool_call>", CHAT_MK_TOOL_END),
                                          MK("<tool_call>", CHAT_MK_TOOL_NEXT),
                                          MK("<|im_end|>", CHAT_MK_TOOL_END),
                                          MK("<|endoftext|>", CHAT_MK_TOOL_END), END};

/* Qwen3-Coder sometimes starts straight at <function=, without <tool_call>. */
static const chat_marker coder_content[] = {
    MK("<think>", CHAT_MK_REASONING), MK("</think>", CHAT_MK_UNOPENED_CLOSE),
    MK("<tool_call>", CHAT_MK_TOOL), MK("<function=", CHAT_MK_TOOL),
    MK("</tool_call>", CHAT_MK_DROP), MK("<|im_end|>", CHAT_MK_DROP),
    MK("<|endoftext|>", CHAT_MK_DROP), END};
static const chat_marker coder_reasoning[] = {
    MK("</think>", CHAT_MK_CONTENT), MK("<think>", CHAT_MK_DROP), MK("<tool_call>", CHAT_MK_TOOL),
    MK("<function=", CHAT_MK_TOOL), MK("<|im_end|>", CHAT_MK_DROP), END};

#define DS_CALLS "<｜tool▁calls▁begin｜>"
#define DS_CALL "<｜tool▁call▁begin｜>"
#define DS_EOS "<｜end▁of▁sentence｜>"
static const chat_marker ds_content[] = {
    MK("<think>", CHAT_MK_REASONING), MK("</think>", CHAT_MK_UNOPENED_CLOSE),
    MK(DS_CALLS, CHAT_MK_TOOL), MK(DS_CALL, CHAT_MK_TOOL), MK(DS_EOS, CHAT_MK_DROP),
    MK("<｜tool▁calls▁end｜>", CHAT_MK_DROP), END};
static const chat_marker ds_reasoning[] = {
    MK("</think>", CHAT_MK_CONTENT), MK("<think>", CHAT_MK_DROP), MK(DS_CALLS, CHAT_MK_TOOL),
    MK(DS_CALL, CHAT_MK_TOOL), MK(DS_EOS, CHAT_MK_DROP), END};
static const chat_marker ds_tool[] = {MK("<｜tool▁calls▁end｜>", CHAT_MK_TOOL_END),
                                      MK(DS_EOS, CHAT_MK_TOOL_END), END};

static const chat_marker mistral_content[] = {
    MK("[TOOL_CALLS]", CHAT_MK_TOOL), MK_JSON_START, MK("[THINK]", CHAT_MK_REASONING),
    MK("[/THINK]", CHAT_MK_UNOPENED_CLOSE), MK("</s>", CHAT_MK_DROP), END};
static const chat_marker mistral_reasoning[] = {
    MK("[/THINK]", CHAT_MK_CONTENT), MK("[THINK]", CHAT_MK_DROP),
    MK("[TOOL_CALLS]", CHAT_MK_TOOL), MK("</s>", CHAT_MK_DROP), END};
static const chat_marker mistral_tool[] = {MK("</s>", CHAT_MK_TOOL_END),
                                           MK("[TOOL_CALLS]", CHAT_MK_TOOL_NEXT), END};

static const chat_marker granite_content[] = {
    MK("<think>", CHAT_MK_REASONING), MK("</think>", CHAT_MK_UNOPENED_CLOSE),
    MK("<|tool_call|>", CHAT_MK_TOOL), MK("<response>", CHAT_MK_DROP),
    MK("</response>", CHAT_MK_DROP), MK("<|end_of_text|>", CHAT_MK_DROP), END};
static const chat_marker granite_reasoning[] = {
    MK("</think>", CHAT_MK_CONTENT), MK("<think>", CHAT_MK_DROP),
    MK("<|tool_call|>", CHAT_MK_TOOL), MK("<|end_of_text|>", CHAT_MK_DROP), END};
static const chat_marker granite_tool[] = {MK("<|end_of_text|>", CHAT_MK_TOOL_END),
                                           MK("<|tool_call|>", CHAT_MK_TOOL_NEXT), END};

static const chat_marker cmdr_content[] = {
    MK("<|START_THINKING|>", CHAT_MK_REASONING), MK("<|END_THINKING|>", CHAT_MK_UNOPENED_CLOSE),
    MK("<|START_ACTION|>", CHAT_MK_TOOL), MK("<|END_ACTION|>", CHAT_MK_DROP),
    MK("<|START_RESPONSE|>", CHAT_MK_DROP), MK("<|END_RESPONSE|>", CHAT_MK_DROP),
    MK("<|END_OF_TURN_TOKEN|>", CHAT_MK_DROP), END};
static const chat_marker cmdr_reasoning[] = {
    MK("<|END_THINKING|>", CHAT_MK_CONTENT), MK("<|START_THINKING|>", CHAT_MK_DROP),
    MK("<|START_ACTION|>", CHAT_MK_TOOL), MK("<|START_RESPONSE|>", CHAT_MK_CONTENT),
    MK("<|END_OF_TURN_TOKEN|>", CHAT_MK_DROP), END};
static const chat_marker cmdr_tool[] = {MK("<|END_ACTION|>", CHAT_MK_TOOL_END),
                                        MK("<|START_ACTION|>", CHAT_MK_TOOL_NEXT),
                                        MK("<|END_OF_TURN_TOKEN|>", CHAT_MK_TOOL_END), END};

static const chat_marker plain_content[] = {
    MK("<|end|>", CHAT_MK_DROP), MK("<|endoftext|>", CHAT_MK_DROP), END};
static const chat_marker gemma_content[] = {
    MK("<end_of_turn>", CHAT_MK_DROP), MK("<eos>", CHAT_MK_DROP), END};

/* Gemma 4 opens reasoning with "<|channel>thought\n"; the channel name is not reasoning text. */
static const chat_marker gemma4_content[] = {
    MK("<|channel>thought", CHAT_MK_REASONING), MK("<|channel>", CHAT_MK_REASONING),
    MK("<channel|>", CHAT_MK_UNOPENED_CLOSE), MK("<|tool_call>", CHAT_MK_TOOL),
    MK("<tool_call|>", CHAT_MK_DROP), MK("<|tool_response>", CHAT_MK_DROP),
    MK("<turn|>", CHAT_MK_DROP), MK("<eos>", CHAT_MK_DROP), END};
static const chat_marker gemma4_reasoning[] = {
    MK("<channel|>", CHAT_MK_CONTENT), MK("<|tool_call>", CHAT_MK_TOOL),
    MK("<turn|>", CHAT_MK_DROP), END};
static const chat_marker gemma4_tool[] = {MK("<tool_call|>", CHAT_MK_TOOL_END),
                                          MK("<|tool_call>", CHAT_MK_TOOL_NEXT),
                                          MK("<turn|>", CHAT_MK_TOOL_END), END};

/* Harmony: every message is <|start|>role<|channel|>name[ to=recipient]<|message|>text<|end|>;
 * the assistant header before the first channel is already in the prompt. */
/* The prompt ends in "<|start|>assistant", so a call's header may begin right away with its
 * recipient (" to=functions.f<|channel|>commentary json<|message|>"). */
static const chat_marker oss_content[] = {
    {"to=", NULL, CHAT_MK_HEADER, 1}, MK("<|channel|>", CHAT_MK_HEADER),
    MK("<|start|>", CHAT_MK_HEADER),
    MK("<|end|>", CHAT_MK_DROP), MK("<|return|>", CHAT_MK_DROP), MK("<|call|>", CHAT_MK_DROP),
    MK("<|message|>", CHAT_MK_DROP), END};
static const chat_marker oss_reasoning[] = {
    MK("<|end|>", CHAT_MK_CONTENT), MK("<|return|>", CHAT_MK_CONTENT),
    MK("<|call|>", CHAT_MK_CONTENT), MK("<|start|>", CHAT_MK_HEADER),
    MK("<|channel|>", CHAT_MK_HEADER), END};
static const chat_marker oss_header[] = {MK("<|message|>", CHAT_MK_HEADER_END), END};
static const chat_marker oss_tool[] = {MK("<|call|>", CHAT_MK_TOOL_END),
                                       MK("<|end|>", CHAT_MK_TOOL_END),
                                       MK("<|return|>", CHAT_MK_TOOL_END), END};

/* ---- the table ---- */

#define SPEC(fam, nm, c, r, t, h, body, hdr, to, tc) \
    {fam, nm, {c, r, t, h}, body, hdr, to, tc}

static const chat_family_spec specs[CHAT_FAMILY_COUNT] = {
    SPEC(CHAT_FAMILY_PLAIN, "plain", plain_content, none, none, none, NULL, NULL, NULL, NULL),
    SPEC(CHAT_FAMILY_LLAMA3, "llama3", llama_content, none, llama_tool, none, chat_body_llama3,
         NULL, NULL, NULL),
    SPEC(CHAT_FAMILY_HERMES, "hermes", hermes_content, hermes_reasoning, hermes_tool, none,
         chat_body_hermes, NULL, "<think>", "</think>"),
    SPEC(CHAT_FAMILY_QWEN3_CODER, "qwen3-coder", coder_content, coder_reasoning, hermes_tool,
         none, chat_body_hermes, NULL, "<think>", "</think>"),
    SPEC(CHAT_FAMILY_DEEPSEEK_R1, "deepseek-r1", ds_content, ds_reasoning, ds_tool, none,
         chat_body_deepseek, NULL, "<think>", "</think>"),
    SPEC(CHAT_FAMILY_DEEPSEEK_V31, "deepseek-v3.1", ds_content, ds_reasoning, ds_tool, none,
         chat_body_deepseek, NULL, "<think>", "</think>"),
    SPEC(CHAT_FAMILY_MISTRAL, "mistral", mistral_content, mistral_reasoning, mistral_tool, none,
         chat_body_mistral, NULL, "[THINK]", "[/THINK]"),
    SPEC(CHAT_FAMILY_GRANITE, "granite", granite_content, granite_reasoning, granite_tool, none,
         chat_body_json_after_tag, NULL, "<think>", "</think>"),
    SPEC(CHAT_FAMILY_COMMAND_R7B, "command-r7b", cmdr_content, cmdr_reasoning, cmdr_tool, none,
         chat_body_json_after_tag, NULL, "<|START_THINKING|>", "<|END_THINKING|>"),
    SPEC(CHAT_FAMILY_GEMMA, "gemma", gemma_content, none, none, none, NULL, NULL, NULL, NULL),
    SPEC(CHAT_FAMILY_GEMMA4, "gemma4", gemma4_content, gemma4_reasoning, gemma4_tool, none,
         chat_body_gemma4, NULL, "<|channel>", "<channel|>"),
    SPEC(CHAT_FAMILY_GPT_OSS, "gpt-oss", oss_content, oss_reasoning, oss_tool, oss_header,
         chat_body_harmony, chat_harmony_header, NULL, NULL),
};

const chat_family_spec *chat_family_spec_get(chat_family family) {
    if ((int)family < 0 || family >= CHAT_FAMILY_COUNT) return NULL;
    return &specs[family];
}

const char *chat_family_name(chat_family family) {
    const chat_family_spec *s = chat_family_spec_get(family);
    return s ? s->name : "unknown";
}

const char *chat_family_think_close(chat_family family) {
    const chat_family_spec *s = chat_family_spec_get(family);
    return s && s->think_open ? s->think_close : NULL;
}

ob_status chat_family_from_name(const char *name, chat_family *out, ob_err *err) {
    for (int i = 0; name && i < CHAT_FAMILY_COUNT; i++) {
        if (strcmp(specs[i].name, name) == 0) {
            *out = (chat_family)i;
            return OB_OK;
        }
    }
    return ob_fail(err, OB_ERR_ARG, "chat output family '%s': unknown", name ? name : "(null)");
}

/* ---- detection ---- */

static bool has(const char *t, size_t n, const char *needle) {
    return t && chat_find(t, n, needle) < n;
}

/* Template text tells the family by the markup it writes for assistant turns. The order
 * matters where one family's markup contains another's. */
static int detect_template(const char *t, size_t n) {
    if (has(t, n, "<|channel|>") && has(t, n, "<|message|>")) return CHAT_FAMILY_GPT_OSS;
    if (has(t, n, "<|tool_call>") || has(t, n, "<|turn>")) return CHAT_FAMILY_GEMMA4;
    if (has(t, n, "<start_of_turn>")) return CHAT_FAMILY_GEMMA;
    if (has(t, n, "<｜tool▁sep｜>")) {
        /* R1 writes the call's type before the separator and a ```json fence after the name. */
        return has(t, n, "'```json'") ? CHAT_FAMILY_DEEPSEEK_R1 : CHAT_FAMILY_DEEPSEEK_V31;
    }
    if (has(t, n, "<｜Assistant｜>")) return CHAT_FAMILY_DEEPSEEK_R1;
    if (has(t, n, "<|START_ACTION|>") || has(t, n, "<|START_RESPONSE|>"))
        return CHAT_FAMILY_COMMAND_R7B;
    if (has(t, n, "[TOOL_CALLS]") || has(t, n, "[INST]")) return CHAT_FAMILY_MISTRAL;
    if (has(t, n, "<|start_of_role|>")) return CHAT_FAMILY_GRANITE;
    if (has(t, n, "<function=")) return CHAT_FAMILY_QWEN3_CODER;
    if (has(t, n, "<tool_call>") || has(t, n, "<|im_start|>")) return CHAT_FAMILY_HERMES;
    if (has(t, n, "<|start_header_id|>")) return CHAT_FAMILY_LLAMA3;
    return -1;
}

/* Model names or GGUF architectures, most specific first. */
static int detect_name(const char *m) {
    static const struct {
        const char *key;
        chat_family family;
    } names[] = {
        {"gpt-oss", CHAT_FAMILY_GPT_OSS},        {"gpt_oss", CHAT_FAMILY_GPT_OSS},
        {"gemma4", CHAT_FAMILY_GEMMA4},          {"gemma-4", CHAT_FAMILY_GEMMA4},
        {"gemma", CHAT_FAMILY_GEMMA},            {"deepseek-r1", CHAT_FAMILY_DEEPSEEK_R1},
        {"deepseek", CHAT_FAMILY_DEEPSEEK_V31},  {"qwen3-coder", CHAT_FAMILY_QWEN3_CODER},
        {"qwen3coder", CHAT_FAMILY_QWEN3_CODER}, {"qwen3.5", CHAT_FAMILY_QWEN3_CODER},
        {"qwen35", CHAT_FAMILY_QWEN3_CODER},     {"qwen", CHAT_FAMILY_HERMES},
        {"qwq", CHAT_FAMILY_HERMES},             {"smollm3", CHAT_FAMILY_HERMES},
        {"command-r", CHAT_FAMILY_COMMAND_R7B},  {"cohere", CHAT_FAMILY_COMMAND_R7B},
        {"granite", CHAT_FAMILY_GRANITE},        {"mistral", CHAT_FAMILY_MISTRAL},
        {"magistral", CHAT_FAMILY_MISTRAL},      {"llama", CHAT_FAMILY_LLAMA3},
        {"phi", CHAT_FAMILY_PLAIN},
    };
    char low[128];
    size_t n = 0;
    for (; m[n] && n + 1 < sizeof low; n++) {
        char c = m[n];
        low[n] = c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
    }
    low[n] = 0;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (strstr(low, names[i].key)) return names[i].family;
    }
    return -1;
}

chat_family chat_output_detect(const char *tmpl, size_t tmpl_len, const char *model_name) {
    int f = tmpl ? detect_template(tmpl, tmpl_len) : -1;
    if (f < 0 && model_name) f = detect_name(model_name);
    return f < 0 ? CHAT_FAMILY_PLAIN : (chat_family)f;
}

/* Offset just past the last occurrence of needle in p[0..n), or 0 when absent. */
static size_t last_end(const char *p, size_t n, const char *needle) {
    size_t m = strlen(needle), best = 0;
    for (size_t i = 0; i + m <= n; i++) {
        if (p[i] == needle[0] && memcmp(p + i, needle, m) == 0) best = i + m;
    }
    return best;
}

unsigned chat_output_prompt_flags(chat_family family, const char *prompt, size_t len) {
    const chat_family_spec *s = chat_family_spec_get(family);
    if (!s || !s->think_open || !prompt) return 0;
    size_t open = last_end(prompt, len, s->think_open);
    size_t close = last_end(prompt, len, s->think_close);
    /* Open after the last close, and only the reasoning's first words (if any) after it. */
    if (open == 0 || close > open) return 0;
    if (family == CHAT_FAMILY_GEMMA4 && len - open >= 7 && memcmp(prompt + open, "thought", 7) == 0)
        open += 7;
    if (chat_skip_space(prompt, len, open) != len) return 0;
    return CHAT_OUTPUT_THINK_OPEN;
}
