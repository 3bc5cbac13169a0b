/*
 * A qemu TCG plugin that counts the guest instructions a program retires, for
 * bench/neon-model-insn.sh: the NEON build of outboard and llama.cpp's aarch64 build run under
 * qemu-aarch64 on an x86 machine, and their instruction counts per token are compared.
 *
 * At translation each block gets an inline "add its instruction count" op, so counting costs
 * one add per executed block (a helper call per block would be several times slower). The add
 * is not atomic: run the guest with one thread, as the script does. The total goes to stderr
 * at exit as "qemu-insns N".
 *
 * With the argument blocks=PATH it also writes, at exit, one line "VADDR INSNS" per translated
 * block (the guest address of its first instruction and the instructions it retired), for
 * bench/qemu/insn_profile.py to add up by function. Each block's counter is its own inline add,
 * so this costs no more than the total.
 *
 * Built for the host (not the guest) as a shared object:
 *   cc -O2 -shared -fPIC -o insn_plugin.so bench/qemu/insn_plugin.c
 * and loaded with `qemu-aarch64 -plugin ./insn_plugin.so PROGRAM ...`. qemu loads plugins only
 * in its dynamically linked build (Debian's qemu-user, not qemu-user-static).
 *
 * The few declarations below are the plugin interface's, as qemu 7.2 documents it (API
 * version 1); qemu refuses a plugin whose qemu_plugin_version it does not support.
 */
#include <inttypes.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PLUGIN_EXPORT __attribute__((visibility("default")))

typedef uint64_t qemu_plugin_id_t;
struct qemu_info_t; /* only passed through */
struct qemu_plugin_tb;
enum qemu_plugin_op { QEMU_PLUGIN_INLINE_ADD_U64 };
typedef void (*qemu_plugin_vcpu_tb_trans_cb_t)(qemu_plugin_id_t id, struct qemu_plugin_tb *tb);
typedef void (*qemu_plugin_udata_cb_t)(qemu_plugin_id_t id, void *userdata);

/* provided by qemu */
void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t id, qemu_plugin_vcpu_tb_trans_cb_t cb);
void qemu_plugin_register_vcpu_tb_exec_inline(struct qemu_plugin_tb *tb, enum qemu_plugin_op op,
                                              void *ptr, uint64_t imm);
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *tb);
uint64_t qemu_plugin_tb_vaddr(const struct qemu_plugin_tb *tb);
void qemu_plugin_register_atexit_cb(qemu_plugin_id_t id, qemu_plugin_udata_cb_t cb,
                                    void *userdata);
void qemu_plugin_outs(const char *string);

PLUGIN_EXPORT int qemu_plugin_version = 1;
PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const struct qemu_info_t *info,
                                      int argc, char **argv);

static uint64_t g_insns;

/* blocks=PATH: one counter per translation, kept in a list until exit (translations are few:
 * tens of thousands for a whole model run). A block translated twice gets two entries. */
typedef struct block_count {
    uint64_t vaddr, insns;
    struct block_count *next;
} block_count;
static const char *g_blocks_path;
static block_count *g_blocks;

static void on_translate(qemu_plugin_id_t id, struct qemu_plugin_tb *tb) {
    (void)id;
    size_t n = qemu_plugin_tb_n_insns(tb);
    qemu_plugin_register_vcpu_tb_exec_inline(tb, QEMU_PLUGIN_INLINE_ADD_U64, &g_insns, n);
    if (!g_blocks_path) return;
    block_count *b = calloc(1, sizeof *b);
    if (!b) return;
    b->vaddr = qemu_plugin_tb_vaddr(tb);
    b->next = g_blocks;
    g_blocks = b;
    qemu_plugin_register_vcpu_tb_exec_inline(tb, QEMU_PLUGIN_INLINE_ADD_U64, &b->insns, n);
}

static void write_blocks(void) {
    FILE *f = fopen(g_blocks_path, "w");
    if (!f) {
        qemu_plugin_outs("qemu-insns: cannot write the blocks file\n");
        return;
    }
    for (const block_count *b = g_blocks; b; b = b->next)
        if (b->insns) fprintf(f, "%" PRIx64 " %" PRIu64 "\n", b->vaddr, b->insns);
    fclose(f);
}

static void on_guest_exit(qemu_plugin_id_t id, void *userdata) {
    (void)id;
    (void)userdata;
    char line[64];
    snprintf(line, sizeof line, "qemu-insns %" PRIu64 "\n", g_insns);
    qemu_plugin_outs(line);
    if (g_blocks_path) write_blocks();
}

int qemu_plugin_install(qemu_plugin_id_t id, const struct qemu_info_t *info, int argc,
                        char **argv) {
    (void)info;
    for (int i = 0; i < argc; i++)
        if (strncmp(argv[i], "blocks=", 7) == 0) g_blocks_path = argv[i] + 7;
    qemu_plugin_register_vcpu_tb_trans_cb(id, on_translate);
    qemu_plugin_register_atexit_cb(id, on_guest_exit, NULL);
    return 0;
}
