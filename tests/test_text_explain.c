/* test_text_explain.c — attributions for the demo text models (core/text_explain.h)
 * against PyTorch float64 references (tests/golden/graph/reviews_*.json, written by
 * tools/make_graph_models.py): input x gradient and saliency per token at the
 * token-embedding output; integrated gradients' completeness (Σ attributions = f(x) −
 * f(baseline)) for every baseline; occlusion equal to the probabilities of the occluded
 * texts evaluated one by one.
 * Against tools/text_reference.py (torch float64, numpy/scikit-learn; frozen in
 * tests/golden/text_explain.json and, when /usr/bin/python3 has torch, recomputed live):
 * layer IG, input x gradient and occlusion within 2e-3 relative on >= 90% of the texts;
 * LIME for text, mean weights over seeds, Pearson >= 0.95; planted-word recall (the share
 * of planted words among the top-|attribution| words) at least the reference's.
 * All of that with the graph in float64; the default float32 forward and backward (the
 * output stage in double) against the same references at 2e-3 on >= 90% of the texts,
 * with IG completeness reported and bounded.
 */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/bundle.h"
#include "core/alloc.h"
#include "core/text_explain.h"
#include "core/text_lime.h"
#include "tests/test.h"

static const char *const models[] = {"reviews_bert", "reviews_gru"};

static xd_model_t *load(const char *name) {
  char path[256];
  snprintf(path, sizeof path, "models/%s/model.json", name);
  xd_model_t *m = NULL;
  xd_error_t err;
  xd_error_clear(&err);
  if (xd_bundle_load_file(path, &m, NULL, &err) != XD_OK) fprintf(stderr, "  %s: %s: %s\n", path, err.field, err.text);
  return m;
}

static json_t *golden(const char *name) {
  char path[256];
  snprintf(path, sizeof path, "tests/golden/graph/%s.json", name);
  return json_load_file(path, 0, NULL);
}

static int encode(const xd_model_t *m, const char *text, xd_tok_encoding_t *enc) {
  xd_error_t err;
  return xd_tokenizer_encode(xd_model_tokenizer(m), text, strlen(text), xd_model_max_length(m), enc, &err);
}

/* max |a-b| / max |b| */
static double rel(const double *a, const json_t *b, size_t n) {
  double d = 0, mx = 0;
  for (size_t i = 0; i < n; i++) {
    double v = json_number_value(json_array_get(b, i));
    d = fmax(d, fabs(a[i] - v));
    mx = fmax(mx, fabs(v));
  }
  return mx > 0 ? d / mx : d;
}

/* The graph's precision in every explanation below (float64: the tight comparisons). */
static xd_dtype_t prec = XD_DT_F64;

/* float64: every text within 1e-6; float32: within 2e-3 on >= 90% of the texts. */
static void gradients_match(void) {
  for (size_t mi = 0; mi < 2; mi++) {
    size_t n = 0, ok = 0;
    double worst = 0;
    xd_model_t *m = load(models[mi]);
    json_t *gd = golden(models[mi]);
    CHECK(m && gd);
    if (!m || !gd) continue;
    size_t i;
    json_t *inst;
    json_array_foreach(json_object_get(gd, "instances"), i, inst) {
      xd_tok_encoding_t enc;
      CHECK(encode(m, json_string_value(json_object_get(inst, "text")), &enc) == XD_OK);
      json_t *ids = json_object_get(inst, "ids");
      CHECK(enc.n == json_array_size(ids));
      size_t t = (size_t)json_integer_value(json_object_get(inst, "target"));
      double *a = calloc(enc.n, sizeof *a);
      const struct {
        xd_grad_method_t m;
        const char *key;
      } cases[] = {{XD_GRAD_INPUT_X_GRADIENT, "gradient_x_embedding"}, {XD_GRAD_SALIENCY, "saliency"}};
      for (size_t c = 0; c < 2; c++) {
        xd_text_grad_opts_t o = {.method = cases[c].m, .output = XD_OUTPUT_PROBABILITY, .precision = prec};
        xd_error_t err;
        int rc = xd_text_grad_explain(m, &o, &enc, t, i, a, NULL, NULL, &err);
        CHECK_MSG(rc == XD_OK, "%s: %s", err.field, err.text);
        double e = rel(a, json_object_get(inst, cases[c].key), enc.n);
        if (prec == XD_DT_F64) CHECK_MSG(e < 1e-6, "%s text %zu %s: relative error %g", models[mi], i, cases[c].key, e);
        n++;
        ok += e <= 2e-3;
        worst = e > worst || isnan(e) ? e : worst;
      }
      free(a);
      xd_tok_encoding_deinit(&enc);
    }
    printf("  %s %s: %zu/%zu within 2e-3 (worst %.2e)\n", models[mi], prec == XD_DT_F64 ? "float64" : "float32", ok,
           n, worst);
    CHECK_MSG(n > 0 && ok * 10 >= n * 9, "%s: %zu of %zu within 2e-3", models[mi], ok, n);
    json_decref(gd);
    xd_model_free(m);
  }
}

TEST(gradients_match_torch) { gradients_match(); }

TEST(gradients_match_torch_float32) {
  prec = XD_DT_F32;
  gradients_match();
  prec = XD_DT_F64;
}

/* |delta| <= tol · max(Σ|a|, 1e-3) for every text and baseline; prints the worst ratio. */
static void ig_complete(double tol) {
  double worst = 0;
  const char *texts[] = {"A great movie!", "The acting was superb, but the ending felt rather dull.",
                         "terrible waste of time"};
  double alpha[256], w[256];
  xd_error_t err;
  CHECK(xd_grad_quadrature(XD_GRAD_GAUSSLEGENDRE, 256, alpha, w, &err) == XD_OK);
  for (size_t mi = 0; mi < 2; mi++) {
    xd_model_t *m = load(models[mi]);
    CHECK(m != NULL);
    if (!m) continue;
    for (size_t i = 0; i < 3; i++) {
      xd_tok_encoding_t enc;
      CHECK(encode(m, texts[i], &enc) == XD_OK);
      double a[64], delta = 1;
      for (int b = XD_TEXT_BASE_PAD; b <= XD_TEXT_BASE_ZEROS; b++) {
        xd_text_grad_opts_t o = {.method = XD_GRAD_INTEGRATED, .output = XD_OUTPUT_PROBABILITY,
                                 .baseline = (xd_text_base_t)b, .steps = 256, .alpha = alpha, .weights = w,
                                 .precision = prec};
        int rc = xd_text_grad_explain(m, &o, &enc, 0, i, a, &delta, NULL, &err);
        CHECK_MSG(rc == XD_OK, "%s: %s", err.field, err.text);
        double s = 0;
        for (size_t k = 0; k < enc.n; k++) s += fabs(a[k]);
        CHECK_MSG(fabs(delta) < tol * fmax(s, 1e-3), "%s text %zu baseline %s: delta %g (sum |a| %g)", models[mi],
                  i, xd_text_base_names[b], delta, s);
        worst = fmax(worst, fabs(delta) / fmax(s, 1e-3));
      }
      xd_tok_encoding_deinit(&enc);
    }
    xd_model_free(m);
  }
  printf("  %s: worst |delta| / max(sum |a|, 1e-3) = %.2e\n", prec == XD_DT_F64 ? "float64" : "float32", worst);
}

TEST(integrated_gradients_complete) { ig_complete(1e-3); }

TEST(integrated_gradients_complete_float32) {
  prec = XD_DT_F32;
  ig_complete(1e-3);
  prec = XD_DT_F64;
}

/* Rows split into many small engine calls give the same attributions as one call. */
TEST(chunked_rows_same_answer) {
  double alpha[50], w[50];
  xd_error_t err;
  CHECK(xd_grad_quadrature(XD_GRAD_GAUSSLEGENDRE, 50, alpha, w, &err) == XD_OK);
  for (size_t mi = 0; mi < 2; mi++) {
    xd_model_t *m = load(models[mi]);
    CHECK(m != NULL);
    if (!m) continue;
    xd_tok_encoding_t enc;
    CHECK(encode(m, "The acting was superb, but the ending felt rather dull.", &enc) == XD_OK);
    for (int meth = XD_GRAD_INTEGRATED; meth <= XD_GRAD_VARGRAD; meth++) {
      xd_text_grad_opts_t o = {.method = (xd_grad_method_t)meth, .steps = 50, .alpha = alpha, .weights = w,
                               .samples = 20, .noise_stddev = 0.1, .seed = 3, .precision = XD_DT_F64};
      double a1[64], a2[64], d1 = 0, d2 = 0;
      size_t saved = xd_text_chunk_bytes;
      CHECK(xd_text_grad_explain(m, &o, &enc, 1, 0, a1, &d1, NULL, &err) == XD_OK);
      xd_text_chunk_bytes = 3 * 2 * sizeof(double) * 64 * enc.n; /* 3 rows per call */
      CHECK(xd_text_grad_explain(m, &o, &enc, 1, 0, a2, &d2, NULL, &err) == XD_OK);
      xd_text_chunk_bytes = saved;
      for (size_t k = 0; k < enc.n; k++) CHECK_NEAR(a1[k], a2[k], 1e-12 * (1 + fabs(a1[k])));
      CHECK_NEAR(d1, d2, 1e-12);
    }
    xd_tok_encoding_deinit(&enc);
    xd_model_free(m);
  }
}

TEST(occlusion_equals_one_by_one) {
  for (size_t mi = 0; mi < 2; mi++) {
    xd_model_t *m = load(models[mi]);
    CHECK(m != NULL);
    if (!m) continue;
    xd_tok_encoding_t enc;
    CHECK(encode(m, "The acting was superb, but the ending felt dull", &enc) == XD_OK);
    int64_t pad = xd_tokenizer_pad_id(xd_model_tokenizer(m));
    for (int how = XD_TEXT_BASE_PAD; how <= XD_TEXT_BASE_DELETE; how++) {
      if (how == XD_TEXT_BASE_ZEROS) continue;
      double a[64], fx = 0, p[2], px[2];
      xd_error_t err;
      CHECK(xd_text_occlusion(m, &enc, 1, (xd_text_base_t)how, XD_OUTPUT_PROBABILITY, a, &fx, NULL, &err) == XD_OK);
      CHECK(xd_model_predict_text(m, &enc, 1, px, NULL, &err) == XD_OK);
      CHECK_NEAR(fx, px[1], 1e-6); /* float runs, batched differently */
      for (size_t k = 0; k < enc.n; k++) {
        int64_t ids[64];
        uint32_t ty[64];
        size_t n = 0;
        for (size_t j = 0; j < enc.n; j++) {
          if (j == k && how == XD_TEXT_BASE_DELETE) continue;
          ids[n] = j != k ? enc.ids[j] : how == XD_TEXT_BASE_PAD ? pad : xd_tokenizer_unk_id(xd_model_tokenizer(m));
          ty[n++] = 0;
        }
        xd_tok_encoding_t v = {.n = n, .ids = ids, .type_ids = ty};
        CHECK(xd_model_predict_text(m, &v, 1, p, NULL, &err) == XD_OK);
        CHECK_NEAR(a[k], px[1] - p[1], 1e-5);
      }
    }
    xd_tok_encoding_deinit(&enc);
    xd_model_free(m);
  }
}

static double num(const json_t *a, size_t i) { return json_number_value(json_array_get(a, i)); }

static double pearson(const double *a, const double *b, size_t n) {
  double ma = 0, mb = 0, sab = 0, saa = 0, sbb = 0;
  for (size_t i = 0; i < n; i++) ma += a[i] / (double)n, mb += b[i] / (double)n;
  for (size_t i = 0; i < n; i++) {
    sab += (a[i] - ma) * (b[i] - mb);
    saa += (a[i] - ma) * (a[i] - ma);
    sbb += (b[i] - mb) * (b[i] - mb);
  }
  return saa > 0 && sbb > 0 ? sab / sqrt(saa * sbb) : 0;
}

/* Share of the planted words (lowercase) among the k = |planted| \w+ words of largest
 * |score|; score(word) = Σ of the token attributions whose offset starts inside it (or
 * the LIME weight of that exact word). Ties keep text order (a stable sort). */
static double recall_of(const char *text, const json_t *planted, const xd_tok_encoding_t *enc, const double *tok_attr,
                        const xd_text_words_t *W, const double *word_w) {
  xd_text_words_t S;
  xd_error_t err;
  if (xd_text_words_split(text, strlen(text), 0, &S, &err) != XD_OK) return 0;
  size_t n = S.d, k = json_array_size(planted), hits = 0;
  double *sc = calloc(n, sizeof *sc);
  size_t *ord = malloc(n * sizeof *ord);
  for (size_t f = 0; f < n; f++) {
    size_t p = S.feat_pieces[S.feat_first[f]], a = S.piece_char[p];
    size_t b = a; /* end in code points: count the piece's characters */
    for (size_t q = S.piece_start[p]; q < S.piece_end[p]; q++) b += ((unsigned char)text[q] & 0xC0) != 0x80;
    if (tok_attr)
      for (size_t t = 0; t < enc->n; t++)
        if (enc->start[t] != XD_TOK_NO_OFFSET && enc->start[t] >= a && enc->start[t] < b) sc[f] += tok_attr[t];
    if (word_w)
      for (size_t g = 0; g < W->d; g++) {
        size_t pg = W->feat_pieces[W->feat_first[g]];
        size_t lg = W->piece_end[pg] - W->piece_start[pg], lf = S.piece_end[p] - S.piece_start[p];
        if (lg == lf && !memcmp(text + W->piece_start[pg], text + S.piece_start[p], lf)) sc[f] = word_w[g];
      }
    ord[f] = f;
  }
  for (size_t i = 1; i < n; i++)
    for (size_t j = i; j > 0 && fabs(sc[ord[j]]) > fabs(sc[ord[j - 1]]); j--) {
      size_t t = ord[j];
      ord[j] = ord[j - 1];
      ord[j - 1] = t;
    }
  for (size_t i = 0; i < k && i < n; i++) {
    size_t p = S.feat_pieces[S.feat_first[ord[i]]], len = S.piece_end[p] - S.piece_start[p];
    char w[256];
    size_t c = len < 255 ? len : 255;
    for (size_t q = 0; q < c; q++) w[q] = (char)((text[S.piece_start[p] + q] >= 'A' && text[S.piece_start[p] + q] <= 'Z')
                                                   ? text[S.piece_start[p] + q] + 32 : text[S.piece_start[p] + q]);
    w[c] = 0;
    for (size_t j = 0; j < k; j++)
      if (!strcmp(w, json_string_value(json_array_get(planted, j)))) {
        hits++;
        break;
      }
  }
  free(sc);
  free(ord);
  xd_text_words_deinit(&S);
  return k ? (double)hits / (double)k : 0;
}

/* grads_only: IG and input x gradient only (the float32 pass; the rest has no precision). */
static void check_reference(const char *path, int grads_only) {
  json_t *ref = json_load_file(path, 0, NULL), *planted = json_load_file("tests/golden/graph/planted_words.json", 0, NULL);
  CHECK_MSG(ref && planted, "cannot read %s", path);
  if (!ref || !planted) return;
  size_t steps = (size_t)json_integer_value(json_object_get(ref, "steps"));
  size_t ns = (size_t)json_integer_value(json_object_get(ref, "lime_samples"));
  double alpha[1024], wq[1024];
  xd_error_t err;
  CHECK(steps > 0 && steps <= 1024 && xd_grad_quadrature(XD_GRAD_GAUSSLEGENDRE, steps, alpha, wq, &err) == XD_OK);
  for (size_t mi = 0; mi < 2; mi++) {
    json_t *R = json_object_get(json_object_get(ref, "models"), models[mi]), *inst;
    xd_model_t *m = load(models[mi]);
    CHECK(R && m);
    if (!R || !m) continue;
    size_t i, n = 0, ok_ig = 0, ok_ixg = 0, ok_occ = 0, n_occ = 0;
    json_array_foreach(json_object_get(R, "instances"), i, inst) {
      xd_tok_encoding_t enc;
      CHECK(encode(m, json_string_value(json_object_get(inst, "text")), &enc) == XD_OK);
      CHECK(enc.n == json_array_size(json_object_get(inst, "tokens")));
      size_t t = (size_t)json_integer_value(json_object_get(inst, "target"));
      double *a = calloc(enc.n, sizeof *a), delta;
      xd_text_grad_opts_t o = {.method = XD_GRAD_INTEGRATED, .baseline = XD_TEXT_BASE_PAD, .steps = steps,
                               .alpha = alpha, .weights = wq, .precision = prec};
      CHECK(xd_text_grad_explain(m, &o, &enc, t, i, a, &delta, NULL, &err) == XD_OK);
      double e = rel(a, json_object_get(inst, "integrated_gradients"), enc.n);
      ok_ig += e <= 2e-3;
      if (e > 2e-3) fprintf(stderr, "  %s text %zu: IG relative error %g\n", models[mi], i, e);
      o.method = XD_GRAD_INPUT_X_GRADIENT;
      CHECK(xd_text_grad_explain(m, &o, &enc, t, i, a, NULL, NULL, &err) == XD_OK);
      ok_ixg += rel(a, json_object_get(inst, "input_x_gradient"), enc.n) <= 2e-3;
      const char *hows[] = {"pad", "unk", "-", "delete"};
      for (int h = 0; h < 4 && !grads_only; h++) {
        json_t *occ = json_object_get(json_object_get(inst, "occlusion"), hows[h]);
        if (!occ) continue;
        CHECK(xd_text_occlusion(m, &enc, t, (xd_text_base_t)h, XD_OUTPUT_PROBABILITY, a, NULL, NULL, &err) == XD_OK);
        double eo = rel(a, occ, enc.n);
        n_occ++;
        ok_occ += eo <= 2e-3;
        if (eo > 2e-3) fprintf(stderr, "  %s text %zu: occlusion %s relative error %g\n", models[mi], i, hows[h], eo);
      }
      n++;
      free(a);
      xd_tok_encoding_deinit(&enc);
    }
    CHECK_MSG(n > 0 && ok_ig * 10 >= n * 9, "%s: IG within 2e-3 on %zu of %zu texts", models[mi], ok_ig, n);
    CHECK_MSG(n > 0 && ok_ixg * 10 >= n * 9, "%s: input x gradient within 2e-3 on %zu of %zu texts", models[mi], ok_ixg, n);
    printf("  %s %s: IG within 2e-3 on %zu of %zu texts, input x gradient on %zu\n", models[mi],
           prec == XD_DT_F64 ? "float64" : "float32", ok_ig, n, ok_ixg);
    if (grads_only) {
      xd_model_free(m);
      continue;
    }
    CHECK_MSG(n_occ > 0 && ok_occ * 10 >= n_occ * 9, "%s: occlusion within 2e-3 on %zu of %zu", models[mi], ok_occ, n_occ);
    /* LIME: mean weights over seeds against the reference's mean over its seeds */
    json_t *lc;
    json_array_foreach(json_object_get(R, "lime"), i, lc) {
      const char *text = json_string_value(json_object_get(lc, "text"));
      xd_text_words_t W;
      CHECK(xd_text_words_split(text, strlen(text), 1, &W, &err) == XD_OK);
      json_t *words = json_object_get(lc, "words");
      CHECK(W.d == json_array_size(words));
      for (size_t f = 0; f < W.d && f < json_array_size(words); f++) {
        size_t p = W.feat_pieces[W.feat_first[f]];
        const char *wf = json_string_value(json_array_get(words, f));
        CHECK(strlen(wf) == W.piece_end[p] - W.piece_start[p] && !memcmp(wf, text + W.piece_start[p], strlen(wf)));
      }
      size_t label = (size_t)json_integer_value(json_object_get(lc, "label"));
      xd_text_lime_opts_t lo = {.num_samples = ns, .num_features = 10, .kernel_width = 25, .seed = 7, .repeats = 8};
      xd_text_lime_out_t out = {.used = calloc(W.d, sizeof(size_t)), .coef = calloc(W.d, sizeof(double)),
                                .sd = calloc(W.d, sizeof(double))};
      double probs[2], *rw = calloc(W.d, sizeof *rw);
      CHECK(xd_text_lime_explain(m, &W, text, strlen(text), &lo, &label, 1, probs, &out, NULL, &err) == XD_OK);
      for (size_t f = 0; f < W.d; f++) rw[f] = num(json_object_get(lc, "weights"), f);
      if (W.d >= 3) {
        double r = pearson(out.coef, rw, W.d);
        CHECK_MSG(r >= 0.95, "%s LIME text %zu: Pearson %g", models[mi], i, r);
      } else { /* one or two words: no correlation to speak of; the weights themselves */
        for (size_t f = 0; f < W.d; f++)
          CHECK_MSG(fabs(out.coef[f] - rw[f]) <= 0.05 * fabs(rw[f]) + 1e-3, "%s LIME text %zu word %zu: %g vs %g",
                    models[mi], i, f, out.coef[f], rw[f]);
      }
      free(out.used);
      free(out.coef);
      free(out.sd);
      free(rw);
      xd_text_words_deinit(&W);
    }
    /* planted-word recall on the reference's texts */
    size_t nt = (size_t)json_integer_value(json_object_get(R, "planted_texts"));
    double rig = 0, rocc = 0, rlime = 0;
    for (size_t k = 0; k < nt; k++) {
      json_t *pt = json_array_get(json_object_get(planted, "texts"), k);
      const char *text = json_string_value(json_object_get(pt, "text"));
      json_t *pw = json_object_get(pt, "planted");
      xd_tok_encoding_t enc;
      CHECK(encode(m, text, &enc) == XD_OK);
      double p[2], *a = calloc(enc.n, sizeof *a);
      CHECK(xd_model_predict_text(m, &enc, 1, p, NULL, &err) == XD_OK);
      size_t t = p[1] > p[0];
      xd_text_grad_opts_t o = {.method = XD_GRAD_INTEGRATED, .baseline = XD_TEXT_BASE_PAD, .steps = steps,
                               .alpha = alpha, .weights = wq, .precision = prec};
      CHECK(xd_text_grad_explain(m, &o, &enc, t, k, a, NULL, NULL, &err) == XD_OK);
      rig += recall_of(text, pw, &enc, a, NULL, NULL);
      CHECK(xd_text_occlusion(m, &enc, t, XD_TEXT_BASE_PAD, XD_OUTPUT_PROBABILITY, a, NULL, NULL, &err) == XD_OK);
      rocc += recall_of(text, pw, &enc, a, NULL, NULL);
      xd_text_words_t W;
      CHECK(xd_text_words_split(text, strlen(text), 1, &W, &err) == XD_OK);
      xd_text_lime_opts_t lo = {.num_samples = ns, .num_features = 10, .kernel_width = 25, .seed = k, .repeats = 1};
      xd_text_lime_out_t out = {.used = calloc(W.d, sizeof(size_t)), .coef = calloc(W.d, sizeof(double)),
                                .sd = calloc(W.d, sizeof(double))};
      CHECK(xd_text_lime_explain(m, &W, text, strlen(text), &lo, &t, 1, p, &out, NULL, &err) == XD_OK);
      rlime += recall_of(text, pw, NULL, NULL, &W, out.coef);
      free(out.used);
      free(out.coef);
      free(out.sd);
      free(a);
      xd_text_words_deinit(&W);
      xd_tok_encoding_deinit(&enc);
    }
    json_t *rr = json_object_get(R, "planted_recall");
    double ref_ig = json_number_value(json_object_get(rr, "integrated_gradients"));
    double ref_occ = json_number_value(json_object_get(rr, "occlusion_pad"));
    double ref_lime = json_number_value(json_object_get(rr, "lime"));
    rig /= (double)nt, rocc /= (double)nt, rlime /= (double)nt;
    printf("  %s planted-word recall over %zu texts: IG %.3f (reference %.3f), occlusion %.3f (%.3f), LIME %.3f (%.3f)\n",
           models[mi], nt, rig, ref_ig, rocc, ref_occ, rlime, ref_lime);
    CHECK(rig >= ref_ig - 1e-9);
    CHECK(rocc >= ref_occ - 1e-9);
    CHECK(rlime >= ref_lime - 1e-9);
    xd_model_free(m);
  }
  json_decref(ref);
  json_decref(planted);
}

TEST(matches_frozen_reference) { check_reference("tests/golden/text_explain.json", 0); }

TEST(matches_frozen_reference_float32) {
  prec = XD_DT_F32;
  check_reference("tests/golden/text_explain.json", 1);
  prec = XD_DT_F64;
}

/* The same checks against a reference computed now, when PyTorch is there. */
TEST(matches_live_reference) {
  if (system("/usr/bin/python3 -c 'import torch, sklearn, onnx' >/dev/null 2>&1") != 0) {
    const char *ci = getenv("CI");
    printf("  skipped: /usr/bin/python3 with torch, sklearn and onnx is not installed\n");
    CHECK_MSG(!(ci && !strcmp(ci, "true")), "the live reference cannot run under CI=true");
    return;
  }
  char path[] = "/tmp/xd_text_ref_XXXXXX";
  int fd = mkstemp(path);
  CHECK(fd >= 0);
  if (fd < 0) return;
  close(fd);
  char cmd[512];
  snprintf(cmd, sizeof cmd, "/usr/bin/python3 tools/text_reference.py --quick --out %s 2>/dev/null", path);
  CHECK(system(cmd) == 0);
  check_reference(path, 0);
  unlink(path);
}

int main(void) {
  RUN(gradients_match_torch);
  RUN(gradients_match_torch_float32);
  RUN(integrated_gradients_complete);
  RUN(integrated_gradients_complete_float32);
  RUN(chunked_rows_same_answer);
  RUN(occlusion_equals_one_by_one);
  RUN(matches_frozen_reference);
  RUN(matches_frozen_reference_float32);
  RUN(matches_live_reference);
  return TEST_REPORT();
}
