/*
 * Measured speeds of this machine (`outboard plan --calibrate`) and the speed prediction built
 * on them (plan_predict.c). A calibration holds, per backend (the CPU at a thread count, each
 * device by name and driver), a cost model per weight type for decode and for prefill, and per
 * device the host<->device link each way. calib_file.c keeps it in a small text file under the
 * user's config directory.
 *
 * The cost of one forward pass on one backend stage is modelled as
 *     pass_s + n_layers * layer_s + work / rate
 * where work is the weight bytes its matrix products read (decode, rate in bytes/s) or the
 * multiply-adds of a prompt chunk (prefill, rate in multiply-adds/s): pass_s is what every pass
 * costs (embedding, head norm, synchronisation), layer_s what every layer costs whatever its
 * size (dispatches, thread wake-ups). The calibration measures real passes of three shapes and
 * solves for the three (calib_fit).
 */
#ifndef OB_MODEL_CALIB_H
#define OB_MODEL_CALIB_H

#include "model/weight.h"
#include "outboard.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CALIB_VERSION 1
#define CALIB_MAX_BACKENDS 8
#define CALIB_MAX_TYPES 12
#define CALIB_MAX_LINKS 8
#define CALIB_KEY_SIZE 160
#define CALIB_FILE_MAX (64u << 10) /* a larger file is not one of ours */

/* pass_s + n_layers * layer_s + work / rate. */
typedef struct calib_cost {
    double pass_s, layer_s, rate;
} calib_cost;

typedef struct calib_type {
    uint32_t qtype;              /* ob_qtype of the layers' matrices */
    calib_cost decode, prefill;  /* decode: rate in bytes/s; prefill: multiply-adds/s */
} calib_type;

typedef struct calib_backend {
    char key[CALIB_KEY_SIZE]; /* "cpu AMD EPYC" or "vulkan llvmpipe (...) | Mesa 22.3.6" */
    int n_threads;            /* host threads the CPU ran on; 0 for a device */
    double read_gbs;          /* streaming read bandwidth (10^9 bytes/s), 0 = not measured; for
                                 a device, the best decode rate of its weight types */
    int n_types;
    calib_type types[CALIB_MAX_TYPES];
} calib_backend;

/* The link to one device, as measured through the context's copy path (with an emulated link
 * when emulate_gbps > 0: that is the link the figures describe). */
typedef struct calib_link {
    char key[CALIB_KEY_SIZE]; /* the device's calib_backend key */
    double emulate_gbps, emulate_latency_us;
    double h2d_gbs, h2d_latency_us; /* host to device: hidden states */
    double d2h_gbs, d2h_latency_us; /* device to host: logits */
} calib_link;

typedef struct calib {
    int n_backends, n_links;
    calib_backend backends[CALIB_MAX_BACKENDS];
    calib_link links[CALIB_MAX_LINKS];
} calib;

/* ---- the file (calib_file.c) ------------------------------------------------------------- */

/* Parses a calibration file's text (untrusted): OB_ERR_FORMAT naming the line and what was
 * wrong when it is not a version-CALIB_VERSION calibration or any figure is out of range. */
ob_status calib_parse(const char *text, size_t len, calib *out, ob_err *err);
/* The text of c (owned by the caller, ob_free), NULL when out of memory. */
char *calib_format(const calib *c);
/* The file's path: $OUTBOARD_CALIBRATION, else $XDG_CONFIG_HOME/outboard/calibration, else
 * ~/.config/outboard/calibration. OB_ERR_ARG when no directory is known. */
ob_status calib_path(char *buf, size_t cap, ob_err *err);
/* Reads path (NULL: calib_path). OB_ERR_IO when it cannot be read (absent included),
 * OB_ERR_FORMAT when it is corrupt or foreign: the caller then uses no figure of it. */
ob_status calib_load(const char *path, calib *out, ob_err *err);
/* Writes c to path (NULL: calib_path), creating the directory: a temporary file renamed over
 * the old one, so a reader sees the old file or the new one, never a part. OB_ERR_ARG, and
 * nothing written, when calib_parse would reject the text (a rate of 0, say). */
ob_status calib_save(const char *path, const calib *c, ob_err *err);

/* The entry of key (and n_threads, for the CPU), NULL when absent. calib_backend_add returns
 * the existing backend as it is (its other types kept) or a new one; the other _add return
 * the existing entry cleared or a new one; NULL when full. */
const calib_backend *calib_backend_find(const calib *c, const char *key, int n_threads);
calib_backend *calib_backend_add(calib *c, const char *key, int n_threads);
const calib_type *calib_type_find(const calib_backend *b, uint32_t qtype);
calib_type *calib_type_add(calib_backend *b, uint32_t qtype);
const calib_link *calib_link_find(const calib *c, const char *key, double emulate_gbps,
                                  double emulate_latency_us);
calib_link *calib_link_add(calib *c, const char *key, double emulate_gbps,
                           double emulate_latency_us);

/* ---- the model (plan_predict.c) ---------------------------------------------------------- */

/* Seconds of one pass under cost c. */
double calib_cost_eval(const calib_cost *c, int64_t n_layers, double work);

/* Solves pass_s, layer_s and rate from three measured passes: t[i] seconds for n_layers[i]
 * layers and work[i] (the first and third with the same layer count and more work in the
 * third; the second with more layers). Noise that makes a term negative clips it to 0. When
 * the wider layer cost no measurable time more (weights small enough to stay in a cache, or
 * a burst of other load), fallback_rate stands for the rate if it is above 0 (the host's read
 * bandwidth), else the rate the extra layers give, with no cost per layer besides their work;
 * OB_ERR_ARG when neither took more time, or the shapes do not separate the terms. */
ob_status calib_fit(const double t[3], const int64_t n_layers[3], const double work[3],
                    double fallback_rate, calib_cost *out, ob_err *err);

/* The key of the host CPU (its model name) into buf. */
void calib_host_key(char *buf, size_t cap);

/* Streaming read bandwidth of n_threads threads over `bytes` (10^9 bytes/s, best of passes),
 * 0 when out of memory. */
double calib_host_read_gbs(int n_threads, size_t bytes, int passes);

/* The work a stage running `part` of layers [lo, hi) does per pass, as the forward step does
 * it: the bytes of the weights its matrix products read per decoded token, and the
 * multiply-adds of a prompt chunk of n_tok rows from an empty cache (matrix products, and
 * attention scores unless the part is the MoE blocks alone). The embedding table is looked up,
 * not read, so it counts only where it is also the head. *qtype is the type holding most of
 * the stage's bytes. The stream_ fields describe the products weight streaming would send to a
 * device with every row of a pass (stream.h): the layers' own, not the head, not a MoE
 * block's router or shared expert: their count, weight bytes, inputs and outputs per row
 * (floats) and multiply-adds per row. The expert_ fields describe the routed experts' products
 * likewise, each of which gets only the rows routed to it: a row goes to a given expert with
 * probability expert_share (n_used / n_expert). */
typedef struct plan_work {
    double decode_bytes, prefill_macs;
    uint32_t qtype;
    int64_t stream_products;
    double stream_weight_bytes, stream_in, stream_out, stream_macs;
    int64_t expert_products;
    double expert_weight_bytes, expert_in, expert_out, expert_macs, expert_share;
} plan_work;
struct ob_model;
void plan_work_of(const struct ob_model *m, int64_t lo, int64_t hi, int64_t n_tok,
                  model_weight_part part, plan_work *out);

/* Of a chunk of n rows, each routed to a given expert with probability p (rows independent):
 * the chance that expert gets at least min_rows (*q) and its expected rows counting only
 * then (*r, E[rows; rows >= min_rows]). */
void plan_routed_rows(int64_t n, double p, int64_t min_rows, double *q, double *r);

/* One pass of n_tok rows through what a plan runs on the host (its host layers, and the MoE
 * blocks of its device layers when their experts are on the host), in seconds: on the CPU
 * alone (cpu_s), and with its products streamed to the device: the CPU's share (rest_s:
 * everything but the streamed products), the device's (device_s: the products' multiply-adds
 * over its rate, and its fixed cost per layer) and the link's (link_s: each product's weight
 * and rows over, its output back, a latency each way); moved_s is the CPU time of the products
 * streamed. The layers' own products stream with every row. A routed expert's stream when it
 * gets expert_min rows or more, costed by expectation (plan_routed_rows); expert_min 0 costs
 * every expert's products as if each got all n_tok rows, the form in which a threshold per
 * product is found. calibrated: every rate was measured. */
typedef struct plan_stream_cost {
    double cpu_s, rest_s, device_s, link_s, moved_s;
    /* sent over (weights and rows) and read back, and of them the weights: the layers' own
     * products, exactly; the routed experts', expected */
    double over_bytes, back_bytes, weight_bytes;
    double expert_over, expert_back, expert_weight;
    bool calibrated;
} plan_stream_cost;
void plan_stream_cost_of(const struct ob_model *m, const ob_context_params *p,
                         const ob_plan *plan, const calib *c, int64_t n_tok, int64_t expert_min,
                         plan_stream_cost *out);

/* The prediction for plan (m, p) from c (NULL: the stated defaults). */
void plan_predict(const struct ob_model *m, const ob_context_params *p, const ob_plan *plan,
                  const calib *c, ob_plan_speed *out);

#endif
