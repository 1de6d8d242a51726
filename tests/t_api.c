/* t_api: the generated API on bad arguments and failed calls, for the C
 * target and (when a device is there) OpenCL: every refusal is a BRN_E*
 * code with a message in _error and changes nothing; a model whose _open
 * failed is refused by every call but _error and _close; nothing crashes. */
#include "brnrt_cl.h"
#include "codegen.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>

enum { BATCH = 4, IN = 50, OUT = 3 };

static char dir_path[600];

static const char *at(const char *name)
{
	static char paths[4][700];
	static int next;
	char *p = paths[next++ % 4];
	snprintf(p, sizeof paths[0], "%s/%s", dir_path, name);
	return p;
}

static int has(const char *msg, const char *part)
{
	if (msg && strstr(msg, part))
		return 1;
	diag("message '%s' lacks '%s'", msg ? msg : "(null)", part);
	return 0;
}

/* The logits of a fixed batch, to see that a refused call changed nothing. */
static int logits(api *a, void *m, float *out)
{
	float x[BATCH * IN];
	for (int i = 0; i < BATCH * IN; i++)
		x[i] = (float)((i * 7) % 11) * 0.1f - 0.5f;
	return a->infer(m, x, BATCH, out);
}

static void bad_arguments(api *a, const char *t)
{
	void *m = a->m;
	float x[BATCH * IN] = {0}, out[BATCH * OUT], before[BATCH * OUT], after[BATCH * OUT], loss;
	int32_t y[BATCH] = {0, 1, 2, 0};

	is_int(a->open(NULL, NULL), BRN_EARG, "%s: _open(NULL, ...) is BRN_EARG", t);
	is_int(logits(a, m, before), 0, "%s: infer a full batch", t);
	int ns[] = {0, -1, BATCH + 1};
	for (int i = 0; i < 3; i++) {
		char want[64];
		snprintf(want, sizeof want, "n = %d is outside 1..%d", ns[i], BATCH);
		ok(a->infer(m, x, ns[i], out) == BRN_EARG && has(a->error(m), want),
		   "%s: infer with n = %d is BRN_EARG: %s", t, ns[i], a->error(m));
		ok(a->train_step(m, x, y, ns[i], 0.1f, &loss) == BRN_EARG && has(a->error(m), want),
		   "%s: train_step with n = %d is BRN_EARG", t, ns[i]);
	}
	ok(a->infer(m, NULL, 1, out) == BRN_EARG && has(a->error(m), "x is NULL"),
	   "%s: infer with x NULL is BRN_EARG: %s", t, a->error(m));
	ok(a->infer(m, x, 1, NULL) == BRN_EARG && has(a->error(m), "out is NULL"),
	   "%s: infer with out NULL is BRN_EARG: %s", t, a->error(m));
	ok(a->train_step(m, NULL, y, 1, 0.1f, &loss) == BRN_EARG && has(a->error(m), "x is NULL"),
	   "%s: train_step with x NULL is BRN_EARG", t);
	ok(a->train_step(m, x, NULL, 1, 0.1f, &loss) == BRN_EARG && has(a->error(m), "y is NULL"),
	   "%s: train_step with y NULL is BRN_EARG: %s", t, a->error(m));
	int32_t bad[BATCH] = {0, 3, 0, 0}, neg[BATCH] = {-1, 0, 0, 0};
	ok(a->train_step(m, x, bad, BATCH, 0.1f, &loss) == BRN_EARG &&
	   has(a->error(m), "label 3 of example 1 is out of range 0..2"),
	   "%s: a label past the classes is BRN_EARG: %s", t, a->error(m));
	ok(a->train_step(m, x, neg, BATCH, 0.1f, &loss) == BRN_EARG &&
	   has(a->error(m), "label -1 of example 0"), "%s: a negative label is BRN_EARG", t);
	/* a label past n is not looked at */
	bad[0] = 1;
	is_int(logits(a, m, after), 0, "%s: infer again", t);
	ok(!memcmp(before, after, sizeof before) && a->step(m) == 0,
	   "%s: the refused calls changed nothing (step %lld)", t, (long long)a->step(m));
	is_int(a->train_step(m, x, bad, 1, 0.1f, NULL), 0, "%s: loss may be NULL; labels past n are unread", t);
	is_int((int)a->step(m), 1, "%s: one step taken", t);

	/* a save that fails leaves the model training and saving */
	ok(a->save(m, at("no/such/dir/w.safetensors")) == BRN_EIO && has(a->error(m), "cannot create"),
	   "%s: save into a missing directory is BRN_EIO: %s", t, a->error(m));
	ok(a->save(m, NULL) == BRN_EARG && has(a->error(m), "NULL"), "%s: save to NULL is BRN_EARG", t);
	is_int(a->train_step(m, x, y, BATCH, 0.1f, &loss), 0, "%s: training goes on after a failed save", t);
	is_int(a->save(m, at("ok.safetensors")), 0, "%s: and the next save works", t);
	void *m2 = NULL;
	is_int(a->open(&m2, at("ok.safetensors")), 0, "%s: the checkpoint opens", t);
	is_int((int)a->step(m2), 2, "%s: at step 2", t);
	a->close(m2);
}

static void null_model(api *a, const char *t)
{
	float x[IN] = {0}, out[OUT], r = 0, d = 0;
	int32_t y[1] = {0};
	int (*init_weights)(void *, uint64_t) = (int (*)(void *, uint64_t))dlsym(a->lib, "small_renorm_init_weights");
	is_int(a->infer(NULL, x, 1, out), BRN_EARG, "%s: infer(NULL model) is BRN_EARG", t);
	is_int(a->train_step(NULL, x, y, 1, 0.1f, NULL), BRN_EARG, "%s: train_step(NULL model) is BRN_EARG", t);
	is_int(a->save(NULL, at("null.safetensors")), BRN_EARG, "%s: save(NULL model) is BRN_EARG", t);
	is_int(init_weights ? init_weights(NULL, 1) : 1, BRN_EARG, "%s: init_weights(NULL model) is BRN_EARG", t);
	a->schedule(NULL, &r, &d);
	a->schedule(a->m, NULL, NULL);
	ok(a->step(NULL) == 0 && a->error(NULL) && a->device(NULL) && r == 1.0f,
	   "%s: step, schedule, error and device take a NULL model", t);
	a->close(NULL);
	ok(1, "%s: close(NULL) is a no-op", t);
}

/* _open fails at three depths; the model must be closable and refused. */
static void failed_opens(api *a, const char *t, int opencl)
{
	int (*init_weights)(void *, uint64_t) = (int (*)(void *, uint64_t))dlsym(a->lib, "small_renorm_init_weights");
	float x[IN] = {0}, out[OUT];
	int32_t y[1] = {0};

	/* the checkpoint of another model */
	static float w[6];
	brnrt_st_tensor other = {"other.weight", 2, {2, 3}, w, 0};
	brnrt_error e;
	const char *path = at("other.safetensors");
	if (brnrt_st_save(path, &other, 1, 5, &e))
		diag("save %s: %s", path, e.msg);
	struct {
		const char *what, *weights, *env, *value, *msg;
		int rc;
	} cases[] = {
		{"a missing file", at("missing.safetensors"), NULL, NULL, "cannot open", BRN_EIO},
		{"another model's checkpoint", path, NULL, NULL, "'other.weight'", BRN_EMISMATCH},
		{"no threads", NULL, "BRN_THREADS", "0", "BRN_THREADS", BRN_EARG},
		{"no such device", NULL, "BRN_DEVICE", "no-such-device", "no-such-device", BRN_ENODEV},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		if (cases[i].env && (strcmp(cases[i].env, "BRN_DEVICE") == 0) != opencl)
			continue;
		if (cases[i].env)
			setenv(cases[i].env, cases[i].value, 1);
		void *m = NULL;
		int rc = a->open(&m, cases[i].weights);
		if (cases[i].env)
			unsetenv(cases[i].env);
		ok(rc == cases[i].rc && m && has(a->error(m), cases[i].msg), "%s: open with %s is %s: %s", t,
		   cases[i].what, brnrt_strerror(cases[i].rc), m ? a->error(m) : "(no model)");
		if (!m)
			continue;
		ok(a->infer(m, x, 1, out) == BRN_EARG && has(a->error(m), "did not open") &&
		   has(a->error(m), cases[i].msg),
		   "%s: infer on it is BRN_EARG naming why: %s", t, a->error(m));
		ok(a->train_step(m, x, y, 1, 0.1f, NULL) == BRN_EARG && a->save(m, at("x.safetensors")) == BRN_EARG &&
		   (!init_weights || init_weights(m, 1) == BRN_EARG),
		   "%s: so are train_step, save and init_weights", t);
		ok(access(at("x.safetensors"), F_OK) != 0, "%s: nothing saved", t);
		const char *first = strstr(a->error(m), "did not open");
		ok(first && !strstr(first + 1, "did not open"), "%s: the message does not grow with each refusal",
		   t);
		a->close(m);
		ok(1, "%s: and it closes", t);
	}
}

/* Copies the checkpoint src to dst with one value of one tensor replaced
 * (name NULL: none) and the step set; 0 on success. */
static int rewrite(const char *src, const char *dst, const char *name, long index, float value,
                   int64_t step)
{
	brnrt_st_tensor t[32];
	brnrt_error e;
	char header[8192];
	unsigned char len[8];
	int n = 0, rc = -1;
	FILE *f = fopen(src, "rb");
	uint64_t hlen = 0;
	if (!f || fread(len, 1, 8, f) != 8)
		goto done;
	for (int i = 7; i >= 0; i--)
		hlen = hlen << 8 | len[i];
	if (hlen >= sizeof header || fread(header, 1, hlen, f) != hlen)
		goto done;
	header[hlen] = 0;
	cJSON *root = cJSON_Parse(header), *item;
	cJSON_ArrayForEach(item, root) {
		cJSON *shape = cJSON_GetObjectItem(item, "shape"), *d;
		if (!shape || n == 32)
			continue;
		memset(&t[n], 0, sizeof t[n]);
		t[n].name = item->string;
		long count = 1;
		cJSON_ArrayForEach(d, shape) {
			t[n].shape[t[n].ndim++] = (int64_t)d->valuedouble;
			count *= (long)d->valuedouble;
		}
		t[n++].data = calloc((size_t)count, sizeof(float));
	}
	if (brnrt_st_load(src, t, n, NULL, NULL, &e) == 0) {
		for (int i = 0; i < n; i++)
			if (name && !strcmp(t[i].name, name))
				t[i].data[index] = value;
		rc = brnrt_st_save(dst, t, n, step, &e);
	}
	if (rc)
		diag("rewrite %s: %s", src, e.msg);
	for (int i = 0; i < n; i++)
		free(t[i].data);
	cJSON_Delete(root);
done:
	if (f)
		fclose(f);
	return rc;
}

/* Checkpoints that brnrt_st_load reads but a model cannot run from. */
static void bad_checkpoints(api *a, const char *t)
{
	const char *good = at("good.safetensors"), *bad = at("bad.safetensors");
	char want[1200];
	float x[BATCH * IN] = {0}, loss;
	int32_t y[BATCH] = {0, 1, 2, 0};
	void *m = NULL;
	if (a->save(a->m, good))
		diag("save: %s", a->error(a->m));
	struct {
		const char *name;
		long index;
		float value;
		int64_t step;
		const char *msg;
	} cases[] = {
		{"n.sigma", 1, 0.0f, 3, "tensor 'n.sigma' is 0 at index 1; a standard deviation must be > 0"},
		{"n.sigma", 2, -1.5f, 3, "tensor 'n.sigma' is -1.5 at index 2; a standard deviation must be > 0"},
		{"c.weight", 3, NAN, 3, "tensor 'c.weight' is nan at index 3; expected finite values"},
		{"n.mean", 0, -INFINITY, 3, "tensor 'n.mean' is -inf at index 0; expected finite values"},
		{NULL, 0, 0, -5, "step -5 is outside 0..9223372036854775806"},
		{NULL, 0, 0, INT64_MAX, "step 9223372036854775807 is outside 0..9223372036854775806"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		rewrite(good, bad, cases[i].name, cases[i].index, cases[i].value, cases[i].step);
		int rc = a->open(&m, bad);
		snprintf(want, sizeof want, "%s: %s", bad, cases[i].msg);
		is_int(rc, BRN_EFORMAT, "%s: open refuses %s", t, cases[i].msg);
		is_str(m ? a->error(m) : "", want, "%s: the message names the file and the tensor", t);
		a->close(m);
	}

	/* the last step there is room for, then a refusal instead of overflow */
	rewrite(good, bad, NULL, 0, 0, INT64_MAX - 1);
	is_int(a->open(&m, bad), 0, "%s: step INT64_MAX - 1 opens", t);
	is_int(a->train_step(m, x, y, BATCH, 0.1f, &loss), 0, "%s: one more step", t);
	ok(a->step(m) == INT64_MAX, "%s: to INT64_MAX", t);
	is_int(a->train_step(m, x, y, BATCH, 0.1f, &loss), BRN_EARG, "%s: the next is refused", t);
	is_str(a->error(m), "the step counter is at its largest value, 9223372036854775807",
	       "%s: saying why", t);
	ok(a->step(m) == INT64_MAX, "%s: and the step stays", t);
	a->close(m);
}

/* A step that would make the state NaN or infinite is refused or undone:
 * afterwards the model trains exactly as if the call had not been made. */
static void nonfinite_steps(api *a, const char *t)
{
	float x[BATCH * IN], loss, before[BATCH * OUT], after[BATCH * OUT];
	int32_t y[BATCH] = {0, 1, 2, 0};
	void *m = NULL, *ref = NULL;
	const char *start = at("start.safetensors");
	for (int i = 0; i < BATCH * IN; i++)
		x[i] = (float)((i * 5) % 13) * 0.1f - 0.6f;
	if (a->save(a->m, start) || a->open(&m, start) || a->open(&ref, start)) {
		ok(0, "%s: open two models at one checkpoint", t);
		a->close(m);
		a->close(ref);
		return;
	}
	int64_t step = a->step(m);
	logits(a, m, before);

	const float lrs[] = {NAN, INFINITY, -INFINITY};
	const char *lr_msgs[] = {"lr is nan; it must be a finite number", "lr is inf; it must be a finite number",
	                         "lr is -inf; it must be a finite number"};
	for (int i = 0; i < 3; i++) {
		is_int(a->train_step(m, x, y, BATCH, lrs[i], &loss), BRN_EARG, "%s: %s", t, lr_msgs[i]);
		is_str(a->error(m), lr_msgs[i], "%s: its message", t);
	}
	x[2 * IN + 7] = NAN;
	is_int(a->train_step(m, x, y, BATCH, 0.1f, &loss), BRN_EARG, "%s: one NaN in x is BRN_EARG", t);
	is_str(a->error(m), "x[107] (example 2) is nan; inputs must be finite", "%s: its message", t);
	x[2 * IN + 7] = 0.5f;

	/* finite inputs that overflow: the step runs, and is undone */
	float huge[BATCH * IN];
	for (int i = 0; i < BATCH * IN; i++)
		huge[i] = (i % 3 ? 3e38f : -3e38f);
	loss = 42;
	int rc = a->train_step(m, huge, y, BATCH, 0.1f, &loss);
	is_int(rc, BRN_ENUMERIC, "%s: a step that overflows is BRN_ENUMERIC", t);
	is_str(a->error(m), "the step made 'c.weight' nan at index 0; the model is as it was before the step",
	       "%s: naming the first tensor that went non-finite", t);
	ok(loss == 42 && a->step(m) == step, "%s: loss untouched, step still %lld", t, (long long)a->step(m));
	logits(a, m, after);
	ok(!memcmp(before, after, sizeof before), "%s: the outputs are as before", t);

	/* after the refusals, a step does what it does on an untouched model */
	is_int(a->train_step(m, x, y, BATCH, 0.1f, &loss), 0, "%s: a good step after them", t);
	is_int(a->train_step(ref, x, y, BATCH, 0.1f, &loss), 0, "%s: the same step on a fresh copy", t);
	logits(a, m, before);
	logits(a, ref, after);
	ok(!memcmp(before, after, sizeof before) && a->step(m) == step + 1 && a->step(ref) == step + 1,
	   "%s: both give the same outputs: weights, statistics and momentum were restored", t);
	const char *pa = at("a.safetensors"), *pb = at("b.safetensors");
	a->save(m, pa);
	a->save(ref, pb);
	FILE *fa = fopen(pa, "rb"), *fb = fopen(pb, "rb");
	static unsigned char ba[1 << 16], bb[1 << 16];
	size_t na = fa ? fread(ba, 1, sizeof ba, fa) : 0, nb = fb ? fread(bb, 1, sizeof bb, fb) : 0;
	ok(na > 0 && na == nb && !memcmp(ba, bb, na), "%s: and save the same file", t);
	if (fa)
		fclose(fa);
	if (fb)
		fclose(fb);
	a->close(m);
	a->close(ref);
}

/* Names of any length reach the file whole. Slot names stop at 152
 * characters (a 128-character target, ".batch_renorm1000.gamma"), so their
 * momentum names pass 159, where a fixed buffer once cut them. Compiling
 * the C of 1000 norms takes too long for a test: this reads the emitted code
 * for the names that _save writes (the slot table's literals). */
static void long_names(void)
{
	char target[129], *text = malloc(1 << 20), want[512], base[700];
	size_t len = 0;
	memset(target, 'l', 128);
	target[128] = 0;
	/* add(add(...), add(...)) over 1000 batch_renorm(x): depth 10 */
	struct {
		int k, state;
	} stack[64];
	int top = 0;
	len += (size_t)sprintf(text + len, "model long_names; batch 2; input x[1, 1, 1]; labels y[2];\n%s = ", target);
	stack[top].k = 1000, stack[top++].state = 0;
	while (top > 0) {
		int k = stack[top - 1].k, st = stack[top - 1].state++;
		if (k == 1) {
			len += (size_t)sprintf(text + len, "batch_renorm(x)");
			top--;
		} else if (st == 0) {
			len += (size_t)sprintf(text + len, "add(");
			stack[top].k = k / 2, stack[top++].state = 0;
		} else if (st == 1) {
			len += (size_t)sprintf(text + len, ", ");
			stack[top].k = k - k / 2, stack[top++].state = 0;
		} else {
			len += (size_t)sprintf(text + len, ")");
			top--;
		}
	}
	sprintf(text + len, ";\nz = dense(flatten(%s), 2);\nloss softmax_cross_entropy(z, y);\noutput z;\n", target);
	const char *model = at("long_names.brn");
	FILE *f = fopen(model, "w");
	if (f) {
		fputs(text, f);
		fclose(f);
	}
	snprintf(base, sizeof base, "%s", at("long_names"));
	brn_options o;
	memset(&o, 0, sizeof o);
	o.model = model;
	o.out = base;
	o.target = "c";
	o.mode = "train";
	o.schedule_dir = "schedules";
	o.step = -1;
	brn_diag d;
	memset(&d, 0, sizeof d);
	int rc = brn_compile(&o, stdout, &d);
	is_int(rc, 0, "long names: brnc compiles 1000 norms in one statement (%s)", d.msg);
	snprintf(want, sizeof want, "{\"%s.batch_renorm1000.gamma\", \"%s.batch_renorm1000.gamma.momentum\", ", target,
	         target);
	snprintf(base + strlen(base), sizeof base - strlen(base), ".c");
	int found = 0, fixed = 0;
	char *line = NULL;
	size_t cap = 0;
	f = fopen(base, "r");
	while (f && getline(&line, &cap, f) > 0) {
		found |= strstr(line, want) != NULL;
		fixed |= strstr(line, "[160]") != NULL;
	}
	if (f)
		fclose(f);
	free(line);
	ok(found, "long names: the slot table names the momentum whole");
	ok(f && !fixed, "long names: no fixed-size name buffer in the generated code");
	free(text);
}

static void run_target(const char *target)
{
	api a;
	char tag[64];
	snprintf(tag, sizeof tag, "api_%s", target);
	if (cg_build(&a, "tests/models/small_renorm.brn", "small_renorm", tag, target, "train", BATCH, 0, NULL) ||
	    a.open(&a.m, NULL)) {
		ok(0, "%s: builds and opens (%s)", target, a.m ? a.error(a.m) : "");
		cg_unload(&a);
		return;
	}
	bad_arguments(&a, target);
	bad_checkpoints(&a, target);
	nonfinite_steps(&a, target);
	null_model(&a, target);
	failed_opens(&a, target, !strcmp(target, "opencl"));
	cg_unload(&a);
}

int main(void)
{
	(void)cg_compare_state; /* codegen.h's numeric helpers: not needed here */
	(void)cg_uniform;
	snprintf(dir_path, sizeof dir_path, "%s", cg_tmpdir());
	unsetenv("BRN_THREADS");
	unsetenv("BRN_DEVICE");
	run_target("c");
	long_names();
	brnrt_cl_device d;
	int count = 0;
	brnrt_error e;
	if (brnrt_cl_list(&d, 1, &count, &e) == BRN_OK && count > 0)
		run_target("opencl");
	else
		ok(1, "opencl # SKIP no OpenCL device: %s", e.msg);
	cg_cleanup();
	return done_testing();
}
