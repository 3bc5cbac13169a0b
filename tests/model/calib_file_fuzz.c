/*
 * libFuzzer target for the calibration file parser (src/model/calib_file.c): any input parses
 * or fails cleanly; one that parses formats to a text that parses again to the same text
 * (what the file keeps, it reads back). A crash, a hang, a leak, a sanitizer report or a
 * round trip that changes the figures is a bug.
 */
#include "model/calib.h"

#include "core/alloc.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static calib c, again;
    if (calib_parse((const char *)data, size, &c, NULL)) return 0;
    char *text = calib_format(&c);
    if (!text) return 0;
    if (calib_parse(text, strlen(text), &again, NULL)) __builtin_trap();
    char *text2 = calib_format(&again);
    if (!text2 || strcmp(text, text2)) __builtin_trap();
    ob_free(text);
    ob_free(text2);
    return 0;
}
