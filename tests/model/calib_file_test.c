/*
 * The calibration file (src/model/calib_file.c): a calibration written and read back is the
 * same; the file is written atomically into a directory it creates; a corrupt, truncated,
 * foreign or future-version file is rejected whole (every figure of it dropped) with a message
 * naming the line; and ob_plan_predict given such a file falls back to its defaults and says
 * the file was ignored.
 */
#include "model/calib.h"

#include "core/alloc.h"
#include "gguf/qtype.h"

#include "test.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char tmp_dir[256];

static const char *tmp_path(const char *name) {
    static char path[512];
    if (!tmp_dir[0]) {
        snprintf(tmp_dir, sizeof tmp_dir, "/tmp/ob_calib_test_XXXXXX");
        if (!mkdtemp(tmp_dir)) return NULL;
    }
    snprintf(path, sizeof path, "%s/%s", tmp_dir, name);
    return path;
}

static void write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    if (!f) return;
    fputs(text, f);
    fclose(f);
}

/* A calibration with a host, a device and a link, figures exactly representable in %.6g. */
static void sample(calib *c) {
    memset(c, 0, sizeof *c);
    calib_backend *h = calib_backend_add(c, "cpu Test CPU 9000", 4);
    h->read_gbs = 12.5;
    calib_type *t = calib_type_add(h, OB_QTYPE_Q4_0);
    t->decode = (calib_cost){100e-6, 25e-6, 11.5e9};
    t->prefill = (calib_cost){2000e-6, 500e-6, 80e9};
    t = calib_type_add(h, OB_QTYPE_Q6_K);
    t->decode = (calib_cost){110e-6, 30e-6, 9.25e9};
    t->prefill = (calib_cost){2100e-6, 600e-6, 60e9};
    calib_backend *d = calib_backend_add(c, "vulkan Some GPU | driver 1.2 (x, y)", 0);
    d->read_gbs = 300;
    t = calib_type_add(d, OB_QTYPE_Q4_0);
    t->decode = (calib_cost){50e-6, 10e-6, 250e9};
    t->prefill = (calib_cost){100e-6, 20e-6, 5000e9};
    calib_link *l = calib_link_add(c, d->key, 3, 0);
    *l = (calib_link){.emulate_gbps = 3, .h2d_gbs = 2.75, .h2d_latency_us = 12.5,
                      .d2h_gbs = 3, .d2h_latency_us = 0};
    snprintf(l->key, sizeof l->key, "%s", d->key);
}

/* Equal to 9 digits: the file keeps 6 significant digits, and these figures need no more. */
static bool near(double a, double b) { return fabs(a - b) <= 1e-9 * fabs(b); }

TEST(round_trip) {
    calib c, back;
    sample(&c);
    char *text = calib_format(&c);
    CHECK(text != NULL);
    ob_err err = {{0}};
    ob_status st = calib_parse(text, strlen(text), &back, &err);
    CHECK_MSG(st == OB_OK, "%s\n%s", err.msg, text);
    CHECK_EQ_INT(back.n_backends, 2);
    CHECK_EQ_INT(back.n_links, 1);
    const calib_backend *h = calib_backend_find(&back, "cpu Test CPU 9000", 4);
    CHECK(h != NULL && h->n_types == 2 && near(h->read_gbs, 12.5));
    CHECK(calib_backend_find(&back, "cpu Test CPU 9000", 2) == NULL); /* other thread count */
    const calib_type *t = calib_type_find(h, OB_QTYPE_Q6_K);
    CHECK(t && near(t->decode.rate, 9.25e9) && near(t->decode.pass_s, 110e-6) &&
          near(t->decode.layer_s, 30e-6) && near(t->prefill.rate, 60e9) &&
          near(t->prefill.pass_s, 2100e-6) && near(t->prefill.layer_s, 600e-6));
    const calib_link *l = calib_link_find(&back, "vulkan Some GPU | driver 1.2 (x, y)", 3, 0);
    CHECK(l && near(l->h2d_gbs, 2.75) && near(l->h2d_latency_us, 12.5) && near(l->d2h_gbs, 3));
    CHECK(calib_link_find(&back, l->key, 0, 0) == NULL); /* the unemulated link is another */
    char *again = calib_format(&back);
    CHECK(again && !strcmp(text, again));
    ob_free(text);
    ob_free(again);
}

TEST(save_creates_directory_and_loads) {
    calib c, back;
    sample(&c);
    char path[600];
    snprintf(path, sizeof path, "%s/deeper/outboard/calibration", tmp_path("cfg"));
    ob_err err = {{0}};
    CHECK_MSG(calib_save(path, &c, &err) == OB_OK, "%s", err.msg);
    CHECK(calib_load(path, &back, &err) == OB_OK);
    CHECK_EQ_INT(back.n_backends, 2);
    /* no temporary file left beside it */
    char tmp[700];
    snprintf(tmp, sizeof tmp, "%s.%ld.tmp", path, (long)getpid());
    CHECK(access(tmp, F_OK) != 0);
    /* saved again over the old one */
    c.backends[0].read_gbs = 99;
    CHECK(calib_save(path, &c, &err) == OB_OK);
    CHECK(calib_load(path, &back, &err) == OB_OK && near(back.backends[0].read_gbs, 99));
    /* figures the parser would reject are never written: the old file stays */
    c.backends[0].types[0].decode.rate = 0;
    CHECK(calib_save(path, &c, &err) == OB_ERR_ARG && strstr(err.msg, "not written"));
    CHECK(calib_load(path, &back, &err) == OB_OK && near(back.backends[0].read_gbs, 99));
}

TEST(path_follows_environment) {
    char buf[512];
    const char *old_over = getenv("OUTBOARD_CALIBRATION");
    setenv("XDG_CONFIG_HOME", "/x/cfg", 1);
    unsetenv("OUTBOARD_CALIBRATION");
    CHECK(calib_path(buf, sizeof buf, NULL) == OB_OK &&
          !strcmp(buf, "/x/cfg/outboard/calibration"));
    setenv("XDG_CONFIG_HOME", "relative", 1); /* not absolute: ignored, as the spec says */
    setenv("HOME", "/home/u", 1);
    CHECK(calib_path(buf, sizeof buf, NULL) == OB_OK &&
          !strcmp(buf, "/home/u/.config/outboard/calibration"));
    setenv("OUTBOARD_CALIBRATION", "/a/b", 1);
    CHECK(calib_path(buf, sizeof buf, NULL) == OB_OK && !strcmp(buf, "/a/b"));
    if (old_over) setenv("OUTBOARD_CALIBRATION", old_over, 1);
    else unsetenv("OUTBOARD_CALIBRATION");
}

/* Each text is rejected whole, with the line named. */
TEST(corrupt_files_rejected) {
    static const struct {
        const char *text, *line;
    } bad[] = {
        {"", "line 1"},
        {"{\"json\": true}\n", "line 1"},                     /* foreign */
        {"outboard-calibration\t2\n", "line 1"},              /* a future version */
        {"outboard-calibration\t1\nbackend\tcpu X\t2\n", "line 2"}, /* a field short */
        {"outboard-calibration\t1\ntype\tq4_0\t1\t1\t1\t1\t1\t1\n", "line 2"}, /* no backend */
        {"outboard-calibration\t1\nbackend\tcpu X\t2\t9\ntype\tq4_0\t1\t1\tnan\t1\t1\t1\n",
         "line 3"},
        {"outboard-calibration\t1\nbackend\tcpu X\t2\t9\ntype\tq4_0\t1\t1\t-5\t1\t1\t1\n",
         "line 3"},
        {"outboard-calibration\t1\nbackend\tcpu X\t2\t9\ntype\tq4_0\t1\t1\t1e300\t1\t1\t1\n",
         "line 3"},
        {"outboard-calibration\t1\nbackend\tcpu X\t2\t9\ntype\tq4_0\t1\t1\t0\t1\t1\t1\n",
         "line 3"}, /* a rate of 0 would divide by zero */
        {"outboard-calibration\t1\nbackend\tcpu X\t2\t9\ntype\tnot_a_type\t1\t1\t1\t1\t1\t1\n",
         "line 3"},
        {"outboard-calibration\t1\nbackend\tcpu X\t2\t9\nbackend\tcpu X\t2\t9\n", "line 3"},
        {"outboard-calibration\t1\nbackend\tcpu X\t2.5\t9\n", "line 2"},
        {"outboard-calibration\t1\nbackend\tcpu X\t2\t9x\n", "line 2"},
        {"outboard-calibration\t1\nlink\tk\t3\t0\t0\t1\t1\t1\n", "line 2"}, /* 0 GB/s */
        {"outboard-calibration\t1\nwhatever\n", "line 2"},
        {"outboard-calibration\t1\na\tb\tc\td\te\tf\tg\th\ti\tj\tk\n", "line 2"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        calib c;
        ob_err err = {{0}};
        ob_status st = calib_parse(bad[i].text, strlen(bad[i].text), &c, &err);
        CHECK_MSG(st != OB_OK, "case %zu accepted", i);
        CHECK_MSG(strstr(err.msg, bad[i].line) != NULL, "case %zu: '%s'", i, err.msg);
        CHECK(c.n_backends == 0 && c.n_links == 0); /* nothing half trusted */
    }
    /* a NUL inside */
    calib c;
    static const char nul[] = "outboard-calibration\t1\n\0backend\tx\t1\t1\n";
    CHECK(calib_parse(nul, sizeof nul - 1, &c, NULL) == OB_ERR_FORMAT);
    /* a file cut in the middle of a line */
    calib full;
    sample(&full);
    char *text = calib_format(&full);
    CHECK(text);
    const size_t cut = strlen(text) - 5;
    CHECK(calib_parse(text, cut, &c, NULL) == OB_ERR_FORMAT);
    ob_free(text);
}

TEST(load_rejects_corrupt_file) {
    const char *path = tmp_path("corrupt");
    write_text(path, "outboard-calibration\t1\nbackend\tcpu X\t2\t9\ntype\tq4_0\t1\t1\t1\n");
    calib c;
    ob_err err = {{0}};
    CHECK(calib_load(path, &c, &err) == OB_ERR_FORMAT);
    CHECK_MSG(strstr(err.msg, path) && strstr(err.msg, "line 3"), "%s", err.msg);
    CHECK(calib_load(tmp_path("absent"), &c, &err) == OB_ERR_IO);
}

TEST(figures_kept_as_written) {
    /* Two links whose emulation figures differ only past the six digits the file keeps are
     * one link: the second is a duplicate, not a second entry that would read back as the
     * first (the file's round trip must give the same text). */
    static calib c;
    const char *dup = "outboard-calibration\t1\n"
                      "link\tcuda:0\t105.2421\t0\t3\t4\t5\t6\n"
                      "link\tcuda:0\t105.242\t0\t3\t4\t5\t6\n";
    CHECK(calib_parse(dup, strlen(dup), &c, NULL) == OB_ERR_FORMAT);
    /* A figure with more digits reads as the six-digit figure the file would write. */
    const char *long_fig = "outboard-calibration\t1\n"
                           "link\tcuda:0\t2.4000001\t0\t3.14159265\t4\t5\t6\n";
    CHECK(calib_parse(long_fig, strlen(long_fig), &c, NULL) == OB_OK);
    CHECK(c.n_links == 1 && c.links[0].h2d_gbs == 3.14159);
    char *text = calib_format(&c);
    CHECK(text && strstr(text, "\t2.4\t0\t3.14159\t"));
    ob_free(text);
    /* Looked up with the figure a user typed, unrounded: found. */
    CHECK(calib_link_find(&c, "cuda:0", 2.4000001, 0) == &c.links[0]);
    CHECK(calib_link_find(&c, "cuda:0", 2.41, 0) == NULL);
}

int main(void) {
    RUN(round_trip);
    RUN(save_creates_directory_and_loads);
    RUN(path_follows_environment);
    RUN(corrupt_files_rejected);
    RUN(load_rejects_corrupt_file);
    RUN(figures_kept_as_written);
    return t_summary();
}
