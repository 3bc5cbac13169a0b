/*
 * src/store: names that cannot leave the store, manifests read as untrusted text, and the
 * store on disk (install, list, find, resolve, remove) in a temporary folder.
 */
#include "core/alloc.h"
#include "store/store.h"
#include "test.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

TEST(names) {
    store_name n;
    ob_err err = {{0}};
    CHECK_EQ_INT(store_name_parse("unsloth/Qwen3-8B-GGUF:Q4_K_M", &n, &err), OB_OK);
    CHECK_EQ_STR(n.org, "unsloth");
    CHECK_EQ_STR(n.repo, "Qwen3-8B-GGUF");
    CHECK_EQ_STR(n.tag, "Q4_K_M");
    CHECK_EQ_INT(store_name_parse("a/b", &n, &err), OB_OK);
    CHECK_EQ_STR(n.tag, "");
    static const char *const BAD[] = {"../x:y", "a/..", "a/b:..", "/abs/x", "a/b/c", "a/b:c/d",
                                      "a/.hidden", ".a/b", "a/b:\x01", "a\\b/c", "a/b c",
                                      "a/", "/b", "a/b:", "", "a:b/c", "a/b:c:d"};
    for (size_t i = 0; i < sizeof BAD / sizeof BAD[0]; i++) {
        CHECK_MSG(store_name_parse(BAD[i], &n, &err) == OB_ERR_ARG, "'%s' was accepted", BAD[i]);
        CHECK_MSG(!strchr(err.msg, '\x01') && !strchr(err.msg, '\n'), "%s", err.msg);
    }
    char longname[400];
    memset(longname, 'a', sizeof longname - 1);
    longname[sizeof longname - 1] = 0;
    longname[5] = '/';
    CHECK_STATUS(store_name_parse(longname, &n, &err), OB_ERR_ARG, &err, "longer than");
}

static const char GOOD[] =
    "{\"name\":\"o/r:Q8_0\",\"source\":\"hub\",\"repo\":\"o/r\",\"revision\":\"main\","
    "\"etag\":null,\"pulled_at\":5,\"last_used\":0,\"size\":7,\"files\":[{\"name\":\"m.gguf\","
    "\"sha256\":\"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\","
    "\"size\":7,\"url\":\"http://h/m.gguf\"}]}";

TEST(manifests) {
    store_manifest m;
    ob_err err = {{0}};
    CHECK_EQ_INT(store_manifest_parse(GOOD, strlen(GOOD), &m, &err), OB_OK);
    CHECK_EQ_STR(m.name, "o/r:Q8_0");
    CHECK_EQ_INT(m.n_files, 1);
    CHECK_EQ_INT(m.size, 7);
    CHECK_EQ_STR(m.files[0].url, "http://h/m.gguf");
    store_manifest_clear(&m);
    struct {
        const char *from, *to, *needle;
    } cases[] = {
        {"\"m.gguf\"", "\"../m.gguf\"", "not a file name"},
        {"\"m.gguf\"", "\"sub/m.gguf\"", "not a file name"},
        {"\"o/r:Q8_0\"", "\"o/../r:Q8_0\"", "'name'"},
        {"\"o/r:Q8_0\"", "\"o/r\"", "'name'"},
        {"0123456789abcdef0123", "0123456789ABCDEF0123", "sha256"},
        {"\"size\":7,\"url\"", "\"size\":-7,\"url\"", "size"},
        {"\"pulled_at\":5", "\"pulled_at\":\"x\"", "pulled_at"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char buf[1024];
        const char *at = strstr(GOOD, cases[i].from);
        CHECK(at);
        snprintf(buf, sizeof buf, "%.*s%s%s", (int)(at - GOOD), GOOD, cases[i].to,
                 at + strlen(cases[i].from));
        CHECK_STATUS(store_manifest_parse(buf, strlen(buf), &m, &err), OB_ERR_FORMAT, &err,
                     cases[i].needle);
    }
    CHECK_STATUS(store_manifest_parse("[1]", 3, &m, &err), OB_ERR_FORMAT, &err, "not a JSON object");
    CHECK_STATUS(store_manifest_parse("{", 1, &m, &err), OB_ERR_FORMAT, &err, "manifest:");
    /* jansson quotes the text near an error, raw newline included: the message stays a line. */
    const char *nl = "{\"etag\":\"\\\n\"}";
    CHECK_STATUS(store_manifest_parse(nl, strlen(nl), &m, &err), OB_ERR_FORMAT, &err, "manifest:");
    CHECK(!strchr(err.msg, '\n'));
}

/* A model folder staged in ROOT/.tmp with one file of `size` bytes and its manifest. */
static ob_status stage(const char *root, const char *name, const char *file, size_t size,
                       char *staged, ob_err *err) {
    static int k;
    snprintf(staged, 4096, "%s/.tmp/stage%d", root, k++);
    mkdir(staged, 0755);
    char path[4300];
    snprintf(path, sizeof path, "%s/%s", staged, file);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    for (size_t i = 0; i < size; i++) (void)!write(fd, "x", 1);
    close(fd);
    store_file f = {.name = (char *)file, .size = size};
    memset(f.sha256, 'a', 64);
    store_manifest m = {.files = &f, .n_files = 1, .size = size, .pulled_at = 1};
    snprintf(m.name, sizeof m.name, "%s", name);
    return store_manifest_write(staged, &m, err);
}

TEST(install_list_find_resolve_remove) {
    char root[] = "/tmp/ob-store-test-XXXXXX", staged[4096];
    CHECK(mkdtemp(root));
    ob_err err = {{0}};
    CHECK_EQ_INT(store_prepare(root, &err), OB_OK);
    store_name a, b;
    store_name_parse("org/repo:Q8_0", &a, NULL);
    store_name_parse("org/repo:Q4_0", &b, NULL);
    CHECK_EQ_INT(stage(root, "org/repo:Q8_0", "m-Q8_0.gguf", 10, staged, &err), OB_OK);
    CHECK_EQ_INT(store_install(root, staged, &a, &err), OB_OK);
    store_entry e;
    CHECK_EQ_INT(store_find(root, "org/repo", &e, &err), OB_OK); /* the only tag */
    CHECK_EQ_STR(e.m.name, "org/repo:Q8_0");
    store_manifest_clear(&e.m);
    /* Replacing a model by a new pull of the same name. */
    CHECK_EQ_INT(stage(root, "org/repo:Q8_0", "m-Q8_0.gguf", 12, staged, &err), OB_OK);
    CHECK_EQ_INT(store_install(root, staged, &a, &err), OB_OK);
    CHECK_EQ_INT(stage(root, "org/repo:Q4_0", "m-Q4_0.gguf", 5, staged, &err), OB_OK);
    CHECK_EQ_INT(store_install(root, staged, &b, &err), OB_OK);
    /* A model folder whose file is short (cut by hand) is not listed. */
    CHECK_EQ_INT(stage(root, "other/x:F16", "x.gguf", 3, staged, &err), OB_OK);
    store_name c;
    store_name_parse("other/x:F16", &c, NULL);
    CHECK_EQ_INT(store_install(root, staged, &c, &err), OB_OK);
    char cut[4300];
    snprintf(cut, sizeof cut, "%s/other/x/F16/x.gguf", root);
    CHECK_EQ_INT(truncate(cut, 1), 0);
    store_entry *v = NULL;
    size_t n = 0;
    CHECK_EQ_INT(store_list(root, &v, &n, &err), OB_OK);
    CHECK_EQ_INT(n, 2);
    CHECK_EQ_STR(v[0].m.name, "org/repo:Q4_0");
    CHECK_EQ_STR(v[1].m.name, "org/repo:Q8_0");
    CHECK_EQ_INT(v[1].m.size, 12);
    store_list_free(v, n);
    CHECK_STATUS(store_find(root, "org/repo", &e, &err), OB_ERR_ARG, &err, "Q4_0, Q8_0");
    /* Resolution through the environment, as every command does it. */
    setenv("OUTBOARD_MODELS", root, 1);
    char *path = NULL;
    CHECK_EQ_INT(store_resolve_model("org/repo:Q4_0", &path, &err), OB_OK);
    char want[4300];
    snprintf(want, sizeof want, "%s/org/repo/Q4_0/m-Q4_0.gguf", root);
    CHECK_EQ_STR(path, want);
    ob_free(path);
    CHECK_EQ_INT(store_find(root, "org/repo:Q4_0", &e, &err), OB_OK);
    CHECK(e.m.last_used > 0);
    store_manifest_clear(&e.m);
    CHECK_STATUS(store_resolve_model("org/nothing:Q4_0", &path, &err), OB_ERR_ARG, &err,
                 "no such file, and no model of that name");
    CHECK_EQ_INT(store_remove(root, "org/repo:Q4_0", &err), OB_OK);
    CHECK_EQ_INT(store_remove(root, "org/repo:Q8_0", &err), OB_OK);
    CHECK_STATUS(store_remove(root, "org/repo:Q8_0", &err), OB_ERR_ARG, &err, "not in the store");
    snprintf(want, sizeof want, "%s/org", root);
    CHECK(access(want, F_OK) != 0); /* emptied parents go too */
    CHECK_EQ_INT(store_rmtree(root, &err), OB_OK);
    unsetenv("OUTBOARD_MODELS");
}

TEST(root_from_the_environment) {
    char buf[4096];
    ob_err err = {{0}};
    setenv("OUTBOARD_MODELS", "/x/models", 1);
    CHECK_EQ_INT(store_root(buf, sizeof buf, &err), OB_OK);
    CHECK_EQ_STR(buf, "/x/models");
    unsetenv("OUTBOARD_MODELS");
#ifndef __APPLE__
    setenv("XDG_DATA_HOME", "/d", 1);
    CHECK_EQ_INT(store_root(buf, sizeof buf, &err), OB_OK);
    CHECK_EQ_STR(buf, "/d/outboard/models");
    unsetenv("XDG_DATA_HOME");
    setenv("HOME", "/h", 1);
    CHECK_EQ_INT(store_root(buf, sizeof buf, &err), OB_OK);
    CHECK_EQ_STR(buf, "/h/.local/share/outboard/models");
#endif
    unsetenv("HOME");
    CHECK_STATUS(store_root(buf, sizeof buf, &err), OB_ERR_ARG, &err, "OUTBOARD_MODELS");
}

int main(void) {
    RUN(names);
    RUN(manifests);
    RUN(install_list_find_resolve_remove);
    RUN(root_from_the_environment);
    return t_summary();
}
