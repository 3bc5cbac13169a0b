/*
 * The planner's choice of where a mixture-of-experts model's experts go (place() in
 * src/model/plan.c), for a device whose backend has MoE kernels and for one without, with no
 * device needed: budgets are set from the parts' own figures (the full layers, and the layers
 * without their MoE blocks), and each case's placement is the one a hand calculation gives:
 *   - every full layer fits: the experts stay on the device;
 *   - one byte less: the experts go to the host and every layer still fits without them;
 *   - less than the layers without experts: one layer fewer, experts on the host;
 *   - --experts device: the most full layers, experts never on the host;
 *   - an explicit layer count keeps its count, the experts going to the host when they do not
 *     fit (or when asked, or when the backend has no MoE kernels);
 *   - a dense model never has experts on the host.
 */
#include "../../src/model/plan.c"

#include "test.h"
#include "device_models.h"

typedef struct fixture {
    ob_model *m;
    ob_context_params p;
    model_backend_shape whole, dev_shape, host_experts;
    uint64_t full, bare; /* bytes of every layer on the device, with and without experts */
} fixture;

static uint64_t layers_total(const fixture *f, const model_backend_shape *s, int64_t g) {
    ob_plan_part part;
    memset(&part, 0, sizeof part);
    part_of(f->m, s, f->m->hp.n_layer - g, f->m->hp.n_layer, true, &part);
    return part_total(&part);
}

static bool fixture_new(fixture *f, const char *arch) {
    memset(f, 0, sizeof *f);
    f->m = dm_load_synth(arch, "q8_0", "");
    if (!f->m) return false;
    ob_context_params_init(&f->p);
    f->p.n_ctx = 64;
    f->p.n_batch = 16;
    f->p.device = OB_DEVICE_VULKAN; /* the layer counts of a GPU; none is opened */
    ob_err err = {{0}};
    if (model_context_params_check(f->m, &f->p, &err)) return false;
    model_context_shape(f->m, &f->p, &f->whole);
    model_moe_host_shapes(&f->whole, &f->dev_shape, &f->host_experts);
    f->full = layers_total(f, &f->whole, f->m->hp.n_layer);
    f->bare = layers_total(f, &f->dev_shape, f->m->hp.n_layer);
    return true;
}

/* The placement for gpu_layers and experts on a device of `budget` bytes whose backend has
 * MoE kernels when runs. */
static ob_plan place_with(fixture *f, int64_t gpu_layers, ob_experts experts, uint64_t budget,
                          bool runs) {
    ob_plan out;
    memset(&out, 0, sizeof out);
    snprintf(out.device.device, sizeof out.device.device, "vulkan");
    out.budget = budget;
    f->p.n_gpu_layers = gpu_layers;
    f->p.experts = experts;
    ob_err err = {{0}};
    ob_status st = place(f->m, &f->p, &f->whole, &f->dev_shape, runs, &out, &err);
    if (st) out.n_gpu_layers = -100; /* no placement: the cases below say when to expect it */
    return out;
}

TEST(auto_with_moe_kernels) {
    fixture f;
    CHECK(fixture_new(&f, "qwen3moe"));
    const int64_t n = f.m->hp.n_layer;
    /* the experts are most of a MoE layer's bytes */
    CHECK(f.bare < f.full / 2);
    ob_plan got = place_with(&f, OB_GPU_LAYERS_AUTO, OB_EXPERTS_AUTO, f.full, true);
    CHECK_EQ_INT(got.n_gpu_layers, n);
    CHECK(!got.experts_on_host);
    got = place_with(&f, OB_GPU_LAYERS_AUTO, OB_EXPERTS_AUTO, f.full - 1, true);
    CHECK_EQ_INT(got.n_gpu_layers, n);
    CHECK(got.experts_on_host);
    CHECK_MSG(strstr(got.why, "with them only"), "%s", got.why);
    /* below every bare layer: one fewer, whose bare part fits */
    CHECK(layers_total(&f, &f.dev_shape, n - 1) <= f.bare - 1);
    got = place_with(&f, OB_GPU_LAYERS_AUTO, OB_EXPERTS_AUTO, f.bare - 1, true);
    CHECK_EQ_INT(got.n_gpu_layers, n - 1);
    CHECK(got.experts_on_host);
    /* experts held on the device: the most full layers */
    CHECK(layers_total(&f, &f.whole, n - 1) <= f.full - 1);
    got = place_with(&f, OB_GPU_LAYERS_AUTO, OB_EXPERTS_DEVICE, f.full - 1, true);
    CHECK_EQ_INT(got.n_gpu_layers, n - 1);
    CHECK(!got.experts_on_host);
    /* asked for the host, with room for everything */
    got = place_with(&f, OB_GPU_LAYERS_AUTO, OB_EXPERTS_HOST, f.full, true);
    CHECK(got.n_gpu_layers == n && got.experts_on_host);
    CHECK_MSG(strstr(got.why, "--experts host"), "%s", got.why);
    /* nothing fits: no layer, and no experts on the host for it */
    got = place_with(&f, OB_GPU_LAYERS_AUTO, OB_EXPERTS_AUTO, 1, true);
    CHECK(got.n_gpu_layers == 0 && !got.experts_on_host);
    ob_model_free(f.m);
}

TEST(explicit_layers_with_moe_kernels) {
    fixture f;
    CHECK(fixture_new(&f, "qwen3moe"));
    const int64_t n = f.m->hp.n_layer;
    ob_plan got = place_with(&f, -1, OB_EXPERTS_AUTO, f.full, true);
    CHECK(got.n_gpu_layers == n && !got.experts_on_host);
    got = place_with(&f, -1, OB_EXPERTS_AUTO, f.full - 1, true);
    CHECK(got.n_gpu_layers == n && got.experts_on_host);
    CHECK_MSG(strstr(got.why, "with them the layers need"), "%s", got.why);
    got = place_with(&f, 1, OB_EXPERTS_AUTO, layers_total(&f, &f.whole, 1), true);
    CHECK(got.n_gpu_layers == 1 && !got.experts_on_host);
    got = place_with(&f, -1, OB_EXPERTS_DEVICE, 1, true); /* as asked, however little room */
    CHECK(got.n_gpu_layers == n && !got.experts_on_host);
    got = place_with(&f, 0, OB_EXPERTS_HOST, f.full, true); /* no device layers, no experts */
    CHECK(got.n_gpu_layers == 0 && !got.experts_on_host);
    ob_model_free(f.m);
}

TEST(without_moe_kernels) {
    fixture f;
    CHECK(fixture_new(&f, "qwen3moe"));
    const int64_t n = f.m->hp.n_layer;
    ob_plan got = place_with(&f, OB_GPU_LAYERS_AUTO, OB_EXPERTS_AUTO, f.full, false);
    CHECK(got.n_gpu_layers == n && got.experts_on_host);
    CHECK_MSG(strstr(got.why, "the vulkan backend has no MoE kernels"), "%s", got.why);
    got = place_with(&f, 1, OB_EXPERTS_AUTO, f.full, false);
    CHECK(got.n_gpu_layers == 1 && got.experts_on_host);
    got = place_with(&f, -1, OB_EXPERTS_DEVICE, f.full, false);
    CHECK_EQ_INT(got.n_gpu_layers, -100); /* refused */
    ob_model_free(f.m);
}

TEST(dense_model_has_no_experts) {
    fixture f;
    CHECK(fixture_new(&f, "llama"));
    CHECK_EQ_INT(f.full, f.bare);
    ob_plan got = place_with(&f, OB_GPU_LAYERS_AUTO, OB_EXPERTS_HOST, f.full, false);
    CHECK(got.n_gpu_layers == f.m->hp.n_layer && !got.experts_on_host);
    got = place_with(&f, OB_GPU_LAYERS_AUTO, OB_EXPERTS_DEVICE, f.full, false);
    CHECK(got.n_gpu_layers == f.m->hp.n_layer && !got.experts_on_host);
    ob_model_free(f.m);
}

int main(void) {
    RUN(auto_with_moe_kernels);
    RUN(explicit_layers_with_moe_kernels);
    RUN(without_moe_kernels);
    RUN(dense_model_has_no_experts);
    dm_models_done();
    return t_summary();
}
