/*
 * The chat page served at GET / to browsers: src/serve/page/chat.html, embedded in the library
 * at build time by scripts/embed-file.sh (build/gen/serve_page.c), so the binary serves it with
 * no files beside it and the page is edited as HTML.
 */
#ifndef OB_SERVE_PAGE_H
#define OB_SERVE_PAGE_H

#include <stddef.h>

extern const unsigned char serve_page_chat_html[]; /* the page's bytes, NUL after them */
extern const size_t serve_page_chat_html_len;      /* without the NUL */

#endif
