/*
 * Tests for src/cli/chat_history.c: the chat's conversation as JSON messages. A reply with
 * reasoning and tool calls becomes the message templates read (content without the reasoning,
 * reasoning_content, tool_calls with object arguments); dropping old turns keeps the system
 * prompt and the message being answered; save and load round-trip and load rejects bad files
 * with the file named.
 */
#include "../../src/cli/chat_history.c"
#include "../../src/cli/cli_file.c"

#include "test.h"

#include <unistd.h>

static json_t *conversation(void) {
    json_t *m = json_array();
    cli_chat_history_set_system(m, "Be brief.", NULL);
    cli_chat_history_add(m, "user", "one", NULL);
    cli_chat_history_add(m, "assistant", "1", NULL);
    cli_chat_history_add(m, "user", "two", NULL);
    cli_chat_history_add(m, "assistant", "2", NULL);
    cli_chat_history_add(m, "user", "three", NULL);
    return m;
}

static const char *content(json_t *m, size_t i) {
    return json_string_value(json_object_get(json_array_get(m, i), "content"));
}

TEST(reply_keeps_reasoning_and_calls_apart) {
    ob_tool_call call = {.id = "c1", .name = "get_weather", .arguments = "{\"city\":\"Paris\"}"};
    ob_chat_reply out = {.content = "It is sunny.", .content_len = 12, .reasoning = "Look it up.",
                       .reasoning_len = 11, .calls = &call, .n_calls = 1};
    json_t *m = json_array();
    CHECK(cli_chat_history_add_reply(m, &out, NULL) == OB_OK);
    json_t *msg = json_array_get(m, 0);
    char *text = json_dumps(msg, JSON_SORT_KEYS | JSON_COMPACT);
    CHECK_MSG(!strcmp(text, "{\"content\":\"It is sunny.\",\"reasoning_content\":\"Look it up.\","
                            "\"role\":\"assistant\",\"tool_calls\":[{\"function\":{\"arguments\":"
                            "{\"city\":\"Paris\"},\"name\":\"get_weather\"},\"id\":\"c1\","
                            "\"type\":\"function\"}]}"),
              "%s", text);
    free(text);
    ob_chat_reply plain = {.content = NULL};
    CHECK(cli_chat_history_add_reply(m, &plain, NULL) == OB_OK);
    CHECK(!strcmp(content(m, 1), ""));
    CHECK(!json_object_get(json_array_get(m, 1), "reasoning_content"));
    json_decref(m);
}

TEST(drop_oldest_keeps_system_and_last_question) {
    json_t *m = conversation();
    CHECK(cli_chat_history_drop_oldest(m) == 2);
    CHECK(json_array_size(m) == 4 && !strcmp(content(m, 0), "Be brief.") &&
          !strcmp(content(m, 1), "two"));
    CHECK(cli_chat_history_drop_oldest(m) == 2);
    CHECK(json_array_size(m) == 2 && !strcmp(content(m, 1), "three"));
    CHECK(cli_chat_history_drop_oldest(m) == 0); /* only the question left */
    json_decref(m);
}

TEST(system_prompt_set_replace_remove_and_reset) {
    json_t *m = conversation();
    CHECK(cli_chat_history_set_system(m, "Be long.", NULL) == OB_OK);
    CHECK(json_array_size(m) == 6 && !strcmp(content(m, 0), "Be long."));
    cli_chat_history_reset(m);
    CHECK(json_array_size(m) == 1);
    CHECK(cli_chat_history_set_system(m, "", NULL) == OB_OK);
    CHECK(json_array_size(m) == 0);
    cli_chat_history_add(m, "user", "hi", NULL);
    CHECK(cli_chat_history_set_system(m, "S", NULL) == OB_OK);
    CHECK(!strcmp(content(m, 0), "S") && !strcmp(content(m, 1), "hi"));
    cli_chat_history_reset(m);
    CHECK(json_array_size(m) == 1);
    json_decref(m);
}

TEST(save_load_round_trip_and_errors) {
    char path[] = "/tmp/ob_chat_hist_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    close(fd);
    json_t *m = conversation(), *back = NULL;
    ob_err err = {{0}};
    CHECK(cli_chat_history_save(m, path, &err) == OB_OK);
    CHECK(cli_chat_history_load(path, &back, &err) == OB_OK);
    CHECK(json_equal(m, back));
    json_decref(back);
    FILE *f = fopen(path, "w");
    fputs("{\"messages\": [{\"content\": \"no role\"}]}", f);
    fclose(f);
    CHECK(cli_chat_history_load(path, &back, &err) == OB_ERR_FORMAT && !back);
    CHECK(strstr(err.msg, path) && strstr(err.msg, "message 0"));
    f = fopen(path, "w");
    fputs("[{\"role\": \"user\", \"content\": \"x\"}", f);
    fclose(f);
    CHECK(cli_chat_history_load(path, &back, &err) == OB_ERR_FORMAT && strstr(err.msg, path));
    unlink(path);
    CHECK(cli_chat_history_load(path, &back, &err) == OB_ERR_IO && strstr(err.msg, path));
    CHECK(cli_chat_history_save(m, "/nonexistent-dir/x.json", &err) == OB_ERR_IO);
    json_decref(m);
}

int main(void) {
    RUN(reply_keeps_reasoning_and_calls_apart);
    RUN(drop_oldest_keeps_system_and_last_question);
    RUN(system_prompt_set_replace_remove_and_reset);
    RUN(save_load_round_trip_and_errors);
    return t_summary();
}
