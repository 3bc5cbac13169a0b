/*
 * outboard's entry point: dispatches `outboard <command> ...` to the command's file.
 * To add a command, declare it in cli.h and add a row to COMMANDS.
 */
#include "cli/cli.h"
#include "outboard.h"

#include <stdio.h>
#include <string.h>

typedef struct cli_command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} cli_command;

static const cli_command COMMANDS[] = {
    {"info", cli_cmd_info, "describe a GGUF model: architecture, shapes, quantization, tokenizer"},
    {"quantize", cli_cmd_quantize, "convert a model to a quantization preset (Q4_K_M, Q8_0, ...)"},
    {"tokenize", cli_cmd_tokenize, "show the token ids and pieces a model's vocabulary makes of a text"},
    {"template", cli_cmd_template, "render a conversation with a model's chat template"},
    {"run", cli_cmd_run, "generate text from a prompt"},
    {"chat", cli_cmd_chat, "chat with a model in the terminal (its chat template, history kept)"},
    {"serve", cli_cmd_serve, "serve a model over HTTP (OpenAI and Ollama APIs)"},
    {"policy", cli_cmd_policy, "check a serve --policy file: its rules, and where sample requests go"},
    {"bench", cli_cmd_bench, "measure prompt processing and generation speed (pp / tg)"},
    {"pull", cli_cmd_pull, "fetch a model into the local store (org/repo:QUANT or a URL)"},
    {"list", cli_cmd_store, "list the models in the local store"},
    {"show", cli_cmd_store, "describe a stored model: info, chat template, manifest"},
    {"rm", cli_cmd_store, "remove a model from the local store"},
    {"plan", cli_cmd_plan, "where a model's layers would run and the memory each device needs"},
    {"devices", cli_cmd_devices, "list the CPU, CUDA and Vulkan devices a model can run on"},
    {"synth", cli_cmd_synth, "write a random-weight model of a real model's shape"},
    {"eval", cli_cmd_eval, NULL}, /* developer: logits of every position */
};

static void print_usage(FILE *to) {
    fprintf(to, "outboard %s: local LLM inference\n\nusage: outboard <command> [options]\n\n",
            OB_VERSION_STRING);
    for (size_t i = 0; i < sizeof COMMANDS / sizeof COMMANDS[0]; i++)
        if (COMMANDS[i].summary) /* commands without a summary are for developers */
            fprintf(to, "  %-10s %s\n", COMMANDS[i].name, COMMANDS[i].summary);
    fprintf(to, "\n`outboard <command> --help` describes a command's options.\n");
}

int main(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") ||
        !strcmp(argv[1], "help")) {
        print_usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version")) {
        printf("outboard %s\n", OB_VERSION_STRING);
        return 0;
    }
    for (size_t i = 0; i < sizeof COMMANDS / sizeof COMMANDS[0]; i++)
        if (!strcmp(argv[1], COMMANDS[i].name)) return COMMANDS[i].run(argc - 1, argv + 1);
    fprintf(stderr, "outboard: unknown command '%s'\n\n", argv[1]);
    print_usage(stderr);
    return 2;
}
