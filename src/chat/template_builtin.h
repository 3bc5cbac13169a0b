/*
 * Built-in chat templates for architectures whose GGUF files often lack tokenizer.chat_template.
 */
#ifndef OB_CHAT_TEMPLATE_BUILTIN_H
#define OB_CHAT_TEMPLATE_BUILTIN_H

#include <stddef.h>

/* The template source for an architecture name (general.architecture), or NULL. Static. */
const char *chat_template_builtin(const char *arch, size_t arch_len);

#endif
