/* brnrun: lists OpenCL devices and runs models that `brnc --shared` compiled
 * into a shared library, loaded with dlopen: timing, inference on a file of
 * inputs, training on an IDX data set. Each subcommand is one entry in the
 * table below and one function; exit 0 ok, 1 runtime error, 2 usage. */
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "brnrt.h"
#include "brnrt_cl.h"
#include "idx.h"
#include "paths.h"
#include "progress.h"
#include "sampler.h"
#include "trainlog.h"
#include "brnrun_dist.h"

typedef struct command {
	const char *name, *args, *help;
	int (*run)(int argc, char **argv);
} command;

static int cmd_devices(int argc, char **argv);
static int cmd_bench(int argc, char **argv);
static int cmd_infer(int argc, char **argv);
static int cmd_train(int argc, char **argv);
static int cmd_cache(int argc, char **argv);
static int cmd_plot(int argc, char **argv);

static const command commands[] = {
	{"devices", "", "list the OpenCL devices of every platform", cmd_devices},
	{"bench", "LIB.so [--model NAME] [--weights FILE] [--batch N] [--iters N] [--warmup N] [--train]",
	 "time inference (or training steps) of a compiled model: N timed calls (default 20)\n"
	 "      after the warm-up calls (default 2); examples/s from the median call",
	 cmd_bench},
	{"infer", "LIB.so [--model NAME] [--weights FILE] --input FILE [--output FILE] [--n N]",
	 "run inference on FILE: raw little-endian float32 examples, or IDX images\n"
	 "      (gzipped or not; x/255); writes raw float32 outputs to --output, else\n"
	 "      one example per line as text; --n: only the first N examples",
	 cmd_infer},
	{"train", "LIB.so [--model NAME] [--weights FILE] [--data DIR] [--steps N] [--lr LR] [--seed S]\n"
	          "        [--ckpt PATH] [--ckpt-every K] [--log FILE.csv] [--log-every K] [--eval-every K]",
	 "train until step N (default 3000; lr 0.01, seed 1) on the IDX set in DIR (default\n"
	 "      $BRN_DATA, else " IDX_DEFAULT_DIR ") with shuffled epochs and a progress bar;\n"
	 "      saves PATH at the end (and every K steps); test accuracy if DIR has t10k files\n"
	 "      (at the end, and every K steps with --eval-every); --log: a CSV row every K\n"
	 "      steps (default 100): " TRAINLOG_HEADER ";\n"
	 "      a run resumed at step S (--weights) drops the rows after S, then appends",
	 cmd_train},
	{"plot", "LOG.csv -o CURVE.png",
	 "draw the loss (and test accuracy) of a train --log file with gnuplot", cmd_plot},
	{"cache", "list|clear",
	 "list the compiled OpenCL programs brnc's runtime keeps (see 'cache' below), or\n"
	 "      remove them all (the next run of each model builds its program again)",
	 cmd_cache},
};
#define NCOMMANDS (int)(sizeof commands / sizeof commands[0])

/* Where the OpenCL program cache is, and how to empty it. */
static void cache_help(FILE *f)
{
	char dir[4096];
	const char *now = brnrt_cl_cache_dir(dir, sizeof dir);
	fprintf(f, "cache: OpenCL models keep their compiled programs in $XDG_CACHE_HOME/brnc, else\n"
	           "  ~/.cache/brnc (here: %s); 'brnrun cache clear' empties it, or remove\n"
	           "  the directory. POCL keeps its own kernel cache in $POCL_CACHE_DIR, else\n"
	           "  $XDG_CACHE_HOME/pocl/kcache or ~/.cache/pocl/kcache.\n",
	        now ? now : getenv("BRN_NO_CACHE") ? "off, BRN_NO_CACHE is set" : "none, HOME is not set");
}

static void usage(FILE *f)
{
	fprintf(f, "usage: brnrun COMMAND [ARGS]\n\ncommands:\n");
	for (int i = 0; i < NCOMMANDS; i++)
		fprintf(f, "  %s%s%s\n      %s\n", commands[i].name, *commands[i].args ? " " : "",
		        commands[i].args, commands[i].help);
	fprintf(f, "\noptions: --help, --version; --device D with any command (sets BRN_DEVICE)\n"
	           "environment: BRN_DEVICE (index, cpu/gpu/accelerator, or name substring),\n"
	           "  BRN_PROFILE=1 (per-kernel times at exit), BRN_NO_CACHE=1 (no program cache)\n");
	cache_help(f);
}

static void vsay(const char *fmt, va_list ap)
{
	fprintf(stderr, "brnrun: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
}

/* A runtime error: the message, exit status 1. */
#if defined(__GNUC__)
__attribute__((format(printf, 1, 2)))
#endif
static int fail(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsay(fmt, ap);
	va_end(ap);
	return 1;
}

/* A bad command line: the message and a hint, exit status 2. */
#if defined(__GNUC__)
__attribute__((format(printf, 1, 2)))
#endif
static int usage_error(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsay(fmt, ap);
	va_end(ap);
	fprintf(stderr, "brnrun: see brnrun --help\n");
	return 2;
}

/* --- devices --------------------------------------------------------------- */

static int cmd_devices(int argc, char **argv)
{
	brnrt_cl_device devs[64];
	brnrt_error e;
	int n;

	if (argc > 1)
		return usage_error("devices takes no arguments, got '%s'", argv[1]);
	if (brnrt_cl_list(devs, 64, &n, &e) != BRN_OK)
		return fail("%s", e.msg);
	for (int i = 0; i < n && i < 64; i++) {
		const brnrt_cl_device *d = &devs[i];
		printf("%d: %s, %s, platform %s, %s, %u compute units, %.1f GiB\n", d->index, d->type,
		       d->name, d->platform, d->version, d->compute_units,
		       (double)d->global_mem / (1024.0 * 1024.0 * 1024.0));
	}
	return 0;
}

/* --- a model from a shared library ------------------------------------------- */

/* The generated API of a model M, looked up by name (see docs/api.md).
 * train_step is NULL for --mode infer; init_weights, save, step, schedule
 * and device are NULL only in libraries older than they are. */
typedef struct model_api {
	void *lib;
	const char *path; /* as the user wrote it, for messages */
	char name[256];
	int (*open)(void **m, const char *weights);
	int (*init_weights)(void *m, uint64_t seed);
	void (*close)(void *m);
	int (*infer)(void *m, const float *x, int n, float *out);
	int (*train_step)(void *m, const float *x, const int32_t *y, int n, float lr,
	                  float *loss);
	int (*save)(void *m, const char *path);
	int64_t (*step)(const void *m);
	void (*schedule)(const void *m, float *r_max, float *d_max);
	const char *(*device)(const void *m);
	const char *(*error)(const void *m);
	const int *input_size, *output_size, *batch;
	const int *weights_folded; /* NULL in libraries older than it */
} model_api;

static void *sym(void *lib, const char *model, const char *suffix)
{
	char name[300];
	snprintf(name, sizeof name, "%s_%s", model, suffix);
	return dlsym(lib, name);
}

/* "out/libfashion_cnn.so" -> "fashion_cnn" */
static void model_name(const char *path, char *buf, size_t n)
{
	const char *base = strrchr(path, '/');
	base = base ? base + 1 : path;
	if (strncmp(base, "lib", 3) == 0)
		base += 3;
	snprintf(buf, n, "%s", base);
	char *dot = strchr(buf, '.');
	if (dot)
		*dot = 0;
}

/* "out/net.so" -> "out/net.h", the header brnc wrote beside the library. */
static void header_path(const char *path, char *buf, size_t n)
{
	const char *base = strrchr(path, '/');
	base = base ? base + 1 : path;
	const char *dot = strrchr(base, '.');
	size_t len = dot && dot != base ? (size_t)(dot - path) : strlen(path);
	snprintf(buf, n, "%.*s.h", (int)len, path);
}

/* The model in the header's `typedef struct NAME NAME;` line, or "" if the
 * header is missing or has none. */
static void header_model(const char *header, char *buf, size_t n)
{
	char line[1024], a[256], b[256];
	FILE *f = fopen(header, "r");
	buf[0] = 0;
	if (!f)
		return;
	while (fgets(line, sizeof line, f))
		if (sscanf(line, "typedef struct %255[A-Za-z0-9_] %255[A-Za-z0-9_];", a, b) == 2 &&
		    strcmp(a, b) == 0) {
			snprintf(buf, n, "%s", a);
			break;
		}
	fclose(f);
}

/* The model to use when --model is not given: the library's base name if
 * it has <name>_open, else the one its header names. */
static int find_model(model_api *api)
{
	char guess[256], header[4096], named[256];
	model_name(api->path, guess, sizeof guess);
	if (sym(api->lib, guess, "open")) {
		snprintf(api->name, sizeof api->name, "%s", guess);
		return 0;
	}
	header_path(api->path, header, sizeof header);
	header_model(header, named, sizeof named);
	if (named[0] && sym(api->lib, named, "open")) {
		snprintf(api->name, sizeof api->name, "%s", named);
		return 0;
	}
	if (named[0])
		return fail("%s has no model '%s' (no %s_open), nor '%s' that %s names; "
		            "pass --model NAME", api->path, guess, guess, named, header);
	return fail("%s has no model '%s' (no %s_open) and no header %s names one; "
	            "pass --model NAME", api->path, guess, guess, header);
}

/* Opens the library at path and looks up the API of model (NULL: found by
 * find_model). On success the caller dlcloses api->lib. */
static int load_model(model_api *api, const char *path, const char *model)
{
	char local[4096];
	const char *open_path = path;
	int rc;
	memset(api, 0, sizeof *api);
	api->path = path;
	if (!strchr(path, '/')) { /* dlopen would search the library path instead */
		snprintf(local, sizeof local, "./%s", path);
		open_path = local;
	}
	if (!(api->lib = dlopen(open_path, RTLD_NOW | RTLD_LOCAL)))
		return fail("%s", dlerror());
	if (model)
		snprintf(api->name, sizeof api->name, "%s", model);
	else if ((rc = find_model(api)) != 0) {
		dlclose(api->lib);
		return rc;
	}
	model = api->name;
	api->open = (int (*)(void **, const char *))sym(api->lib, model, "open");
	api->init_weights = (int (*)(void *, uint64_t))sym(api->lib, model, "init_weights");
	api->close = (void (*)(void *))sym(api->lib, model, "close");
	api->infer = (int (*)(void *, const float *, int, float *))sym(api->lib, model, "infer");
	api->train_step = (int (*)(void *, const float *, const int32_t *, int, float, float *))sym(
		api->lib, model, "train_step");
	api->save = (int (*)(void *, const char *))sym(api->lib, model, "save");
	api->step = (int64_t(*)(const void *))sym(api->lib, model, "step");
	api->schedule = (void (*)(const void *, float *, float *))sym(api->lib, model, "schedule");
	api->device = (const char *(*)(const void *))sym(api->lib, model, "device");
	api->error = (const char *(*)(const void *))sym(api->lib, model, "error");
	api->input_size = sym(api->lib, model, "input_size");
	api->output_size = sym(api->lib, model, "output_size");
	api->batch = sym(api->lib, model, "batch");
	api->weights_folded = sym(api->lib, model, "weights_folded");
	if (!api->open || !api->close || !api->infer || !api->error || !api->input_size ||
	    !api->output_size || !api->batch) {
		dlclose(api->lib);
		return fail("%s has no model '%s' (looked for %s_open, _close, _infer, _error, "
		            "_input_size, _output_size, _batch)", path, model, model);
	}
	return 0;
}

static int folded(const model_api *api)
{
	return api->weights_folded && *api->weights_folded;
}

/* Opens an instance: from weights, compiled-in weights (brnc --weights), or
 * fresh (_open seeds with 1; another seed when the library can). */
static int open_model(const model_api *api, void **m, const char *weights, uint64_t seed)
{
	int rc;
	*m = NULL;
	if ((rc = api->open(m, weights)) != 0) {
		rc = fail("%s: %s", api->name, *m ? api->error(*m) : brnrt_strerror(rc));
		goto fail;
	}
	if (!weights && !folded(api) && seed != 1 && api->init_weights &&
	    (rc = api->init_weights(*m, seed)) != 0) {
		rc = fail("%s: init_weights: %s", api->name, api->error(*m));
		goto fail;
	}
	return 0;
fail:
	if (*m)
		api->close(*m);
	*m = NULL;
	return rc;
}

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* An integer in lo..hi, all of s. */
static int int_in(const char *s, long long lo, long long hi, long long *out)
{
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (errno || *s == 0 || *end || v < lo || v > hi)
		return -1;
	*out = v;
	return 0;
}

static int positive(const char *s, int *out)
{
	long long v;
	if (int_in(s, 1, 1000000, &v))
		return -1;
	*out = (int)v;
	return 0;
}

/* --- bench ------------------------------------------------------------------------ */

typedef struct bench_opts {
	const char *lib, *model, *weights;
	int batch, iters, warmup, train;
} bench_opts;

static int bench_args(int argc, char **argv, bench_opts *o)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		int more = i + 1 < argc;
		if (strcmp(a, "--train") == 0)
			o->train = 1;
		else if (strcmp(a, "--model") == 0 && more)
			o->model = argv[++i];
		else if (strcmp(a, "--weights") == 0 && more)
			o->weights = argv[++i];
		else if (strcmp(a, "--batch") == 0 && more) {
			if (positive(argv[++i], &o->batch))
				return usage_error("--batch wants a positive integer, got '%s'", argv[i]);
		} else if (strcmp(a, "--iters") == 0 && more) {
			if (positive(argv[++i], &o->iters))
				return usage_error("--iters wants a positive integer, got '%s'", argv[i]);
		} else if (strcmp(a, "--warmup") == 0 && more) {
			long long v;
			if (int_in(argv[++i], 0, 1000000, &v))
				return usage_error("--warmup wants an integer >= 0, got '%s'", argv[i]);
			o->warmup = (int)v;
		} else if (a[0] == '-')
			return usage_error("bench: unknown or incomplete option '%s'", a);
		else if (!o->lib)
			o->lib = a;
		else
			return usage_error("bench: one library at a time; extra '%s'", a);
	}
	return o->lib ? 0 : usage_error("bench: which library?");
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static int run_once(const model_api *api, void *m, const bench_opts *o, const float *x,
                    const int32_t *y, float *out)
{
	float loss;
	return o->train ? api->train_step(m, x, y, o->batch, 0.01f, &loss)
	                : api->infer(m, x, o->batch, out);
}

static int cmd_bench(int argc, char **argv)
{
	bench_opts o = {.warmup = 2};
	model_api api;
	void *m = NULL;
	int rc = bench_args(argc, argv, &o);
	if (rc)
		return rc;
	if (!o.iters)
		o.iters = 20;
	if ((rc = load_model(&api, o.lib, o.model)) != 0)
		return rc;
	if (o.batch > *api.batch) {
		int batch = *api.batch; /* the library's data: read before dlclose */
		dlclose(api.lib);
		return usage_error("bench: --batch %d is larger than %s's compiled batch %d", o.batch,
		                   api.name, batch);
	}
	if (!o.batch)
		o.batch = *api.batch;
	if (o.train && !api.train_step) {
		dlclose(api.lib);
		return fail("%s was compiled with --mode infer; brnrun bench --train needs --mode train",
		            o.lib);
	}
	size_t nx = (size_t)o.batch * (size_t)*api.input_size;
	float *x = malloc(nx * sizeof *x);
	float *out = malloc((size_t)o.batch * (size_t)*api.output_size * sizeof *out);
	int32_t *y = malloc((size_t)o.batch * sizeof *y);
	double *times = malloc((size_t)o.iters * sizeof *times);
	if (!x || !out || !y || !times) {
		rc = fail("out of memory for a batch of %s", api.name);
		goto done;
	}
	unsigned s = 12345; /* fixed inputs: runs are comparable */
	for (size_t i = 0; i < nx; i++)
		s = s * 1103515245u + 12345u, x[i] = (float)((s >> 8) & 0xffff) / 32768.0f - 1.0f;
	for (int i = 0; i < o.batch; i++)
		y[i] = i % *api.output_size;
	if ((rc = open_model(&api, &m, o.weights, 1)) != 0)
		goto done;
	if (api.device) /* what the figures are of */
		printf("%s on %s\n", api.name, api.device(m));
	double best = 1e300, total = 0;
	for (int i = -o.warmup; i < o.iters; i++) { /* warm-up calls are not timed */
		double t0 = now_ms();
		if (run_once(&api, m, &o, x, y, out) != 0) {
			rc = fail("%s", api.error(m));
			goto done;
		}
		double t = now_ms() - t0;
		if (i >= 0)
			times[i] = t, total += t, best = t < best ? t : best;
	}
	qsort(times, (size_t)o.iters, sizeof *times, cmp_double);
	int h = o.iters / 2;
	double mean = total / o.iters, median = o.iters % 2 ? times[h] : (times[h - 1] + times[h]) / 2;
	printf("%s %s: batch %d, %d runs, median %.3f ms, mean %.3f ms, min %.3f ms, %.1f examples/s\n",
	       api.name, o.train ? "train_step" : "infer", o.batch, o.iters, median, mean, best,
	       median > 0 ? o.batch * 1e3 / median : 0.0);
done:
	if (m)
		api.close(m);
	free(x);
	free(out);
	free(y);
	free(times);
	dlclose(api.lib);
	return rc;
}

/* --- infer: a file of inputs ---------------------------------------------------- */

typedef struct infer_opts {
	const char *lib, *model, *weights, *input, *output;
	long long n;
} infer_opts;

static int infer_args(int argc, char **argv, infer_opts *o)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		int more = i + 1 < argc;
		if (strcmp(a, "--model") == 0 && more)
			o->model = argv[++i];
		else if (strcmp(a, "--weights") == 0 && more)
			o->weights = argv[++i];
		else if (strcmp(a, "--input") == 0 && more)
			o->input = argv[++i];
		else if (strcmp(a, "--output") == 0 && more)
			o->output = argv[++i];
		else if (strcmp(a, "--n") == 0 && more) {
			if (int_in(argv[++i], 1, 1000000000, &o->n))
				return usage_error("--n wants a positive integer, got '%s'", argv[i]);
		} else if (a[0] == '-')
			return usage_error("infer: unknown or incomplete option '%s'", a);
		else if (!o->lib)
			o->lib = a;
		else
			return usage_error("infer: one library at a time; extra '%s'", a);
	}
	if (!o->lib)
		return usage_error("infer: which library?");
	return o->input ? 0 : usage_error("infer: which inputs? (--input FILE)");
}

/* 1 if path is gzipped or starts with the magic of IDX images, so is for
 * the IDX reader; 0 if it holds raw floats; -1 if it cannot be opened. */
static int is_idx_images(const char *path)
{
	unsigned char m[4];
	FILE *f = fopen(path, "rb");
	if (!f)
		return -1;
	size_t got = fread(m, 1, 4, f);
	fclose(f);
	return (got >= 2 && m[0] == 0x1f && m[1] == 0x8b) ||
	       (got == 4 && m[0] == 0 && m[1] == 0 && m[2] == 8 && m[3] == 3);
}

/* Reads the inputs: n examples of size floats each into *x. */
static int read_inputs(const char *path, int size, float **x, long long *n)
{
	char err[1024];
	struct stat st;
	*x = NULL;
	/* a directory "opens" and reports a size of LLONG_MAX; a FIFO would block */
	if (stat(path, &st) != 0)
		return fail("cannot open %s: %s", path, strerror(errno));
	if (S_ISDIR(st.st_mode))
		return fail("%s: is a directory", path);
	if (!S_ISREG(st.st_mode))
		return fail("%s: is not a regular file (a FIFO, socket or device)", path);
	int kind = is_idx_images(path);
	if (kind < 0)
		return fail("cannot open %s: %s", path, strerror(errno));
	if (kind == 1) {
		int count, rows, cols;
		if (idx_read_images(path, x, &count, &rows, &cols, err, sizeof err))
			return fail("%s", err);
		if (rows * cols != size) {
			free(*x);
			*x = NULL;
			return fail("%s: images are %d x %d (%d values); the model takes %d per example",
			            path, rows, cols, rows * cols, size);
		}
		*n = count;
		return 0;
	}
	FILE *f = fopen(path, "rb");
	long long bytes;
	if (!f)
		return fail("cannot open %s: %s", path, strerror(errno));
	if (fseek(f, 0, SEEK_END) || (bytes = ftell(f)) < 0 || fseek(f, 0, SEEK_SET)) {
		fclose(f);
		return fail("%s: cannot find its size: %s", path, strerror(errno));
	}
	long long one = (long long)size * 4;
	if (bytes == 0 || bytes % one) {
		fclose(f);
		return fail("%s: %lld bytes is not a whole number of examples of %d float32 "
		            "(%lld bytes each)", path, bytes, size, one);
	}
	if (!(*x = malloc((size_t)bytes))) {
		fclose(f);
		return fail("%s: out of memory for %lld bytes", path, bytes);
	}
	if (fread(*x, 1, (size_t)bytes, f) != (size_t)bytes) {
		fclose(f);
		free(*x);
		*x = NULL;
		return fail("%s: read error", path);
	}
	fclose(f);
	unsigned char *b = (unsigned char *)*x; /* little-endian on every host */
	if (*(const unsigned char *)&(uint16_t){1} == 0)
		for (long long i = 0; i < bytes; i += 4) {
			unsigned char t = b[i];
			b[i] = b[i + 3], b[i + 3] = t, t = b[i + 1], b[i + 1] = b[i + 2], b[i + 2] = t;
		}
	*n = bytes / one;
	return 0;
}

/* Writes n examples of size outputs: raw float32 to f if binary, else text. */
static int write_outputs(FILE *f, int binary, const float *out, int n, int size)
{
	if (binary)
		return fwrite(out, sizeof *out, (size_t)n * size, f) == (size_t)n * size ? 0 : -1;
	for (int i = 0; i < n; i++)
		for (int j = 0; j < size; j++)
			if (fprintf(f, "%.9g%c", out[(size_t)i * size + j], j + 1 < size ? ' ' : '\n') < 0)
				return -1;
	return 0;
}

static int cmd_infer(int argc, char **argv)
{
	infer_opts o = {0};
	model_api api;
	void *m = NULL;
	float *x = NULL, *out = NULL;
	FILE *f = NULL;
	long long n = 0;
	int rc = infer_args(argc, argv, &o);
	if (rc)
		return rc;
	if (o.output) {
		char err[1024];
		const char *inputs[] = {o.input, o.lib, o.weights};
		if (paths_check_output("--output", o.output, inputs, 3, err, sizeof err))
			return fail("%s", err);
	}
	if ((rc = load_model(&api, o.lib, o.model)) != 0)
		return rc;
	int batch = *api.batch, in = *api.input_size, nout = *api.output_size;
	if ((rc = read_inputs(o.input, in, &x, &n)) != 0)
		goto done;
	if (o.n && o.n < n)
		n = o.n;
	if (!(out = malloc((size_t)batch * nout * sizeof *out))) {
		rc = fail("out of memory for a batch of %s", api.name);
		goto done;
	}
	if ((rc = open_model(&api, &m, o.weights, 1)) != 0)
		goto done;
	if (!o.weights && !folded(&api))
		fprintf(stderr, "brnrun: note: no --weights; %s runs with fresh random weights (seed 1)\n",
		        api.name);
	f = o.output ? fopen(o.output, "wb") : stdout;
	if (!f) {
		rc = fail("cannot open %s: %s", o.output, strerror(errno));
		goto done;
	}
	for (long long i = 0; i < n; i += batch) {
		int k = n - i < batch ? (int)(n - i) : batch;
		if (api.infer(m, x + (size_t)i * in, k, out) != 0) {
			rc = fail("%s: infer: %s", api.name, api.error(m));
			goto done;
		}
		if (write_outputs(f, o.output != NULL, out, k, nout)) {
			rc = fail("cannot write %s: %s", o.output ? o.output : "the output",
			          strerror(errno));
			goto done;
		}
	}
	if (fflush(f)) /* stdout included: a full pipe is an error */
		rc = fail("cannot write %s: %s", o.output ? o.output : "the output", strerror(errno));
done:
	if (f && f != stdout && fclose(f) && !rc)
		rc = fail("cannot write %s: %s", o.output, strerror(errno));
	if (m)
		api.close(m);
	free(x);
	free(out);
	dlclose(api.lib);
	return rc;
}

/* --- train: an IDX data set -------------------------------------------------------- */

typedef struct train_opts {
	const char *lib, *model, *weights, *data, *ckpt, *log;
	long long steps, ckpt_every, log_every, eval_every;
	double lr;
	uint64_t seed;
} train_opts;

static int train_args(int argc, char **argv, train_opts *o)
{
	*o = (train_opts){.steps = 3000, .lr = 0.01, .seed = 1, .log_every = 100};
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (a[0] != '-') {
			if (o->lib)
				return usage_error("train: one library at a time; extra '%s'", a);
			o->lib = a;
			continue;
		}
		if (!v)
			return usage_error("train: unknown or incomplete option '%s'", a);
		i++;
		if (strcmp(a, "--model") == 0)
			o->model = v;
		else if (strcmp(a, "--weights") == 0)
			o->weights = v;
		else if (strcmp(a, "--data") == 0)
			o->data = v;
		else if (strcmp(a, "--ckpt") == 0)
			o->ckpt = v;
		else if (strcmp(a, "--log") == 0)
			o->log = v;
		else if (strcmp(a, "--log-every") == 0) {
			if (int_in(v, 1, 1000000000, &o->log_every))
				return usage_error("--log-every wants an integer in 1..1000000000, got '%s'", v);
		} else if (strcmp(a, "--eval-every") == 0) {
			if (int_in(v, 0, 1000000000, &o->eval_every))
				return usage_error("--eval-every wants an integer in 0..1000000000, got '%s'", v);
		}
		else if (strcmp(a, "--steps") == 0) {
			if (int_in(v, 0, 1000000000, &o->steps))
				return usage_error("--steps wants an integer in 0..1000000000, got '%s'", v);
		} else if (strcmp(a, "--ckpt-every") == 0) {
			if (int_in(v, 0, 1000000000, &o->ckpt_every))
				return usage_error("--ckpt-every wants an integer in 0..1000000000, got '%s'",
				                   v);
		} else if (strcmp(a, "--seed") == 0) {
			long long s;
			if (int_in(v, 0, INT64_MAX, &s))
				return usage_error("--seed wants a non-negative integer, got '%s'", v);
			o->seed = (uint64_t)s;
		} else if (strcmp(a, "--lr") == 0) {
			char *end;
			o->lr = strtod(v, &end);
			if (end == v || *end || !(o->lr > 0) || !isfinite(o->lr))
				return usage_error("--lr wants a positive number, got '%s'", v);
		} else
			return usage_error("train: unknown option '%s'", a);
	}
	if (!o->lib)
		return usage_error("train: which library?");
	if (o->ckpt_every && !o->ckpt)
		return usage_error("train: --ckpt-every needs --ckpt PATH");
	return 0;
}

static volatile sig_atomic_t interrupted;

static void on_sigint(int sig)
{
	interrupted = 1;
	signal(sig, SIG_DFL); /* a second Ctrl-C ends the program at once */
}

/* The split's images file exists, gzipped or not. */
static int has_split(const char *dir, const char *split)
{
	char path[4096];
	snprintf(path, sizeof path, "%s/%s-images-idx3-ubyte.gz", dir, split);
	if (access(path, F_OK) == 0)
		return 1;
	path[strlen(path) - 3] = 0;
	return access(path, F_OK) == 0;
}

/* Fraction of the set classified correctly (argmax of the outputs). */
static int evaluate(const model_api *api, void *m, const idx_set *s, float *out, double *acc)
{
	int batch = *api->batch, in = *api->input_size, k = *api->output_size;
	long correct = 0;
	for (int i = 0; i < s->n; i += batch) {
		int n = s->n - i < batch ? s->n - i : batch;
		if (api->infer(m, s->images + (size_t)i * in, n, out))
			return fail("%s: infer: %s", api->name, api->error(m));
		correct += idx_count_correct(out, s->labels + i, n, k);
	}
	*acc = (double)correct / s->n;
	return 0;
}

/* Checks that the images of s fit the model and its labels its outputs. */
static int check_set(const model_api *api, const idx_set *s, const char *dir, const char *split)
{
	if (s->rows * s->cols != *api->input_size)
		return fail("%s/%s: images are %d x %d (%d values); %s takes %d per example", dir,
		            split, s->rows, s->cols, s->rows * s->cols, api->name, *api->input_size);
	for (int i = 0; i < s->n; i++)
		if (s->labels[i] >= *api->output_size)
			return fail("%s/%s: label %d of example %d, but %s has %d outputs", dir, split,
			            (int)s->labels[i], i, api->name, *api->output_size);
	return 0;
}

/* Before training: an output (--ckpt, --log) can be written and is none of
 * the run's inputs. --weights may be the checkpoint (a run resumes and
 * saves over it), not the log; nor may the log be the checkpoint. */
static int check_output(const char *flag, const char *path, const train_opts *o, const char *dir)
{
	char paths[4][4096], err[1024];
	int log = path == o->log;
	idx_paths(dir, "train", paths[0], paths[1], sizeof paths[0]);
	idx_paths(dir, "t10k", paths[2], paths[3], sizeof paths[0]);
	const char *inputs[] = {o->lib, paths[0], paths[1], paths[2], paths[3], log ? o->weights : NULL,
	                        log ? o->ckpt : NULL};
	if (paths_check_output(flag, path, inputs, 7, err, sizeof err))
		return fail("%s", err);
	return 0;
}

/* The t10k split, checked against the model; rc 0 and test->n 0 when DIR has none. */
static int load_test(const model_api *api, const char *dir, idx_set *test)
{
	char err[1024];
	if (test->n || !has_split(dir, "t10k"))
		return 0;
	if (idx_load(test, dir, "t10k", err, sizeof err))
		return fail("%s", err);
	return check_set(api, test, dir, "t10k");
}

/* A --log row at step; with an evaluation when acc >= 0. */
static int log_row(trainlog *l, const model_api *api, void *m, int64_t step, double lr, double acc)
{
	char err[1024];
	float r_max = 0, d_max = 0;
	if (api->schedule)
		api->schedule(m, &r_max, &d_max);
	return trainlog_row(l, step, *api->batch, r_max, d_max, lr, acc, err, sizeof err) ? fail("%s", err) : 0;
}

/* Every rank averages the moving statistics; rank 0 alone writes. */
static int save(const model_api *api, dist *d, void *m, const char *path)
{
	char err[1024];
	if (dist_average(d, err, sizeof err))
		return fail("cannot average the moving statistics: %s", err);
	if (d->rank == 0 && api->save(m, path))
		return fail("cannot save %s: %s", path, api->error(m));
	return 0;
}

/* After step done steps: a test evaluation every --eval-every steps, a
 * --log row every --log-every steps or with an evaluation (not at the last
 * step: the run's end writes that row, with the final accuracy). Under
 * MPI every rank averages the moving statistics first; rank 0 alone has
 * the test set and the log. */
static int train_eval_log(const train_opts *o, const model_api *api, dist *d, void *m, const idx_set *test,
                          trainlog *log, progress *p, long long done, float *out)
{
	double acc = -1;
	int rc;
	char err[1024];
	if (done >= o->steps)
		return 0;
	if (o->eval_every && done % o->eval_every == 0 && d->size > 1 && dist_average(d, err, sizeof err))
		return fail("cannot average the moving statistics: %s", err);
	if (o->eval_every && done % o->eval_every == 0 && test->n) {
		double t0 = progress_now();
		if ((rc = evaluate(api, m, test, out, &acc)) != 0)
			return rc;
		p->paused += progress_now() - t0;
		if (log->f)
			trainlog_pause(log, progress_now() - t0);
		progress_say(p, "brnrun: step %lld: test accuracy %.4f\n", done, acc);
	}
	if (log->f && (acc >= 0 || done % o->log_every == 0))
		return log_row(log, api, m, done, o->lr, acc);
	return 0;
}

static int cmd_train(int argc, char **argv)
{
	train_opts o;
	model_api api;
	idx_set train = {0}, test = {0};
	sampler s = {0};
	void *m = NULL;
	float *x = NULL, *out = NULL;
	int32_t *y = NULL;
	int *idx = NULL, have_sampler = 0;
	char err[1024];
	double ema = 0, acc = 0;
	long long step = 0, run = 0;
	trainlog log = {0};
	dist d;
	int rc = train_args(argc, argv, &o);
	if (rc)
		return rc;
	if ((rc = load_model(&api, o.lib, o.model)) != 0)
		return rc;
	if (!api.train_step) {
		dlclose(api.lib);
		return fail("%s was compiled with --mode infer; brnrun train needs --mode train", o.lib);
	}
	if (!api.save || !api.step) {
		dlclose(api.lib);
		return fail("%s has no %s_save or %s_step; rebuild it with this brnc", o.lib, api.name,
		            api.name);
	}
	if (dist_open(&d, err, sizeof err)) {
		dlclose(api.lib);
		return fail("%s", err);
	}
	int batch = *api.batch, in = *api.input_size;
	const char *dir = idx_data_dir(o.data);
	if ((o.ckpt && (rc = check_output("--ckpt", o.ckpt, &o, dir)) != 0) ||
	    (o.log && (rc = check_output("--log", o.log, &o, dir)) != 0))
		goto done;
	if (idx_load(&train, dir, "train", err, sizeof err)) {
		rc = fail("%s", err);
		goto done;
	}
	if ((rc = check_set(&api, &train, dir, "train")) != 0)
		goto done;
	/* global batch = ranks x compiled batch; each rank takes its shard */
	if (sampler_open(&s, SAMPLER_IID, o.seed, train.n, train.labels, IDX_CLASSES, batch * d.size, 1, err,
	                 sizeof err)) {
		rc = fail("%s", err);
		goto done;
	}
	have_sampler = 1;
	x = malloc((size_t)batch * in * sizeof *x);
	y = malloc((size_t)batch * sizeof *y);
	idx = malloc((size_t)batch * d.size * sizeof *idx);
	out = malloc((size_t)batch * *api.output_size * sizeof *out);
	if (!x || !y || !idx || !out) {
		rc = fail("out of memory for a batch of %s", api.name);
		goto done;
	}
	if ((rc = open_model(&api, &m, o.weights, o.seed)) != 0)
		goto done;
	if (dist_attach(&d, api.lib, api.name, m, api.error, err, sizeof err)) {
		rc = fail("%s", err);
		goto done;
	}
	step = api.step(m);
	if (d.rank == 0 && o.eval_every && (rc = load_test(&api, dir, &test)) != 0)
		goto done;
	if (d.rank == 0 && o.log && trainlog_open(&log, o.log, step, err, sizeof err)) {
		rc = fail("%s", err);
		goto done;
	}
	if (d.rank == 0)
		fprintf(stderr,
		        "brnrun: training %s on %s, %s, %d examples, batch %d, lr %g, steps %lld..%lld\n",
		        api.name, dir, api.device ? api.device(m) : "?", train.n, batch, o.lr, step, o.steps);
	if (d.rank == 0 && d.size > 1)
		fprintf(stderr, "brnrun: %d ranks of batch %d: global batch %d\n", d.size, batch, batch * d.size);

	progress p;
	progress_start(&p, d.rank != 0, step, o.steps);
	interrupted = 0;
	if (d.size == 1) /* (ranks that stop at different steps would wait on each other) */
		signal(SIGINT, on_sigint);
	for (; step < o.steps && !interrupted; step++, run++) {
		float loss;
		sampler_batch(&s, step, idx);
		const int *shard = idx + (size_t)d.rank * batch;
		for (int j = 0; j < batch; j++) {
			memcpy(x + (size_t)j * in, train.images + (size_t)shard[j] * in, (size_t)in * sizeof *x);
			y[j] = train.labels[shard[j]];
		}
		if (api.train_step(m, x, y, batch, (float)o.lr, &loss)) {
			rc = fail("%s: train_step: %s", api.name, api.error(m));
			goto done;
		}
		if (!isfinite(loss)) {
			rc = fail("%sthe loss is %g at step %lld; try a smaller --lr",
			          p.tty ? "\n" : "", loss, step);
			goto done;
		}
		ema = run ? 0.95 * ema + 0.05 * loss : loss;
		float r_max = 0, d_max = 0;
		if (api.schedule)
			api.schedule(m, &r_max, &d_max);
		progress_draw(&p, step + 1, ema, (long)batch * d.size, r_max, d_max);
		if (log.f)
			trainlog_loss(&log, loss);
		if ((rc = train_eval_log(&o, &api, &d, m, &test, &log, &p, step + 1, out)) != 0)
			goto done;
		if (o.ckpt_every && (step + 1) % o.ckpt_every == 0 && step + 1 < o.steps &&
		    (rc = save(&api, &d, m, o.ckpt)) != 0)
			goto done;
	}
	signal(SIGINT, SIG_DFL);
	if (o.ckpt && run && (rc = save(&api, &d, m, o.ckpt)) != 0)
		goto done;
	if (!(o.ckpt && run) && dist_average(&d, err, sizeof err)) {
		rc = fail("cannot average the moving statistics: %s", err);
		goto done;
	}
	if (d.rank != 0)
		goto done; /* rank 0 alone reports and evaluates */
	if (interrupted) {
		if (log.f && log.loss_n && (rc = log_row(&log, &api, m, step, o.lr, -1)) != 0)
			goto done;
		fprintf(stderr, "%sbrnrun: interrupted at step %lld%s%s\n", p.tty ? "\n" : "", step,
		        o.ckpt ? "; saved " : "", o.ckpt ? o.ckpt : "");
		rc = 130;
		goto done;
	}
	printf("%s: step %lld", api.name, step);
	if (run)
		printf(", loss %.4f", ema);
	if (has_split(dir, "t10k")) {
		if ((rc = load_test(&api, dir, &test)) != 0 || (rc = evaluate(&api, m, &test, out, &acc)) != 0) {
			printf("\n");
			goto done;
		}
		printf(", test accuracy %.4f (%d examples)\n", acc, test.n);
	} else
		printf(", no test set in %s\n", dir);
	/* the last row: the steps since the previous one, and the accuracy */
	if (log.f && (log.loss_n || log.step < step) &&
	    (rc = log_row(&log, &api, m, step, o.lr, test.n ? acc : -1)) != 0)
		goto done;
done:
	if (log.f && trainlog_close(&log, err, sizeof err) && !rc)
		rc = fail("%s", err);
	if (m)
		api.close(m);
	if (have_sampler)
		sampler_close(&s);
	idx_free(&train);
	idx_free(&test);
	free(x);
	free(y);
	free(idx);
	free(out);
	dlclose(api.lib);
	dist_close(&d, rc);
	return rc;
}

/* --- plot: a training log drawn by gnuplot --------------------------------------------- */

/* 1 when an executable named prog is on $PATH. */
static int on_path(const char *prog)
{
	const char *path = getenv("PATH");
	char cand[4096];
	while (path && *path) {
		size_t n = strcspn(path, ":");
		snprintf(cand, sizeof cand, "%.*s/%s", (int)(n ? n : 1), n ? path : ".", prog);
		if (access(cand, X_OK) == 0)
			return 1;
		path += n + (path[n] == ':');
	}
	return 0;
}

/* A path inside a gnuplot single-quoted string: ' doubled. */
static void gp_quoted(FILE *f, const char *s)
{
	fputc('\'', f);
	for (; *s; s++)
		fputs(*s == '\'' ? "''" : (char[2]){*s, 0}, f);
	fputc('\'', f);
}

/* Checks a --log file: its header, and how many rows have a test accuracy. */
static int read_log(const char *path, long *rows, long *evals)
{
	char line[512];
	struct stat st;
	if (stat(path, &st) != 0)
		return fail("plot: cannot open %s: %s", path, strerror(errno));
	if (!S_ISREG(st.st_mode))
		return fail("plot: %s: is not a regular file", path);
	FILE *f = fopen(path, "r");
	if (!f)
		return fail("plot: cannot open %s: %s", path, strerror(errno));
	if (!fgets(line, sizeof line, f) || strcmp(line, TRAINLOG_HEADER "\n") != 0) {
		fclose(f);
		return fail("plot: %s: not a brnrun train --log file (expected the header %s)", path,
		            TRAINLOG_HEADER);
	}
	*rows = *evals = 0;
	while (fgets(line, sizeof line, f)) {
		size_t n = strlen(line);
		(*rows)++;
		*evals += n > 1 && line[n - 2] != ','; /* test_acc, the last column, is set */
	}
	fclose(f);
	return *rows ? 0 : fail("plot: %s: no rows yet", path);
}

static int cmd_plot(int argc, char **argv)
{
	const char *log = NULL, *png = NULL;
	long rows = 0, evals = 0;
	char err[1024];
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-o") == 0 && i + 1 < argc)
			png = argv[++i];
		else if (argv[i][0] == '-' || log)
			return usage_error("plot: expected LOG.csv -o CURVE.png, got '%s'", argv[i]);
		else
			log = argv[i];
	}
	if (!log || !png)
		return usage_error("plot: expected LOG.csv -o CURVE.png");
	const char *inputs[] = {log};
	if (paths_check_output("plot: -o", png, inputs, 1, err, sizeof err))
		return fail("%s", err);
	int rc = read_log(log, &rows, &evals);
	if (rc)
		return rc;
	if (!on_path("gnuplot"))
		return fail("plot: gnuplot is not on PATH; install it (Debian: apt-get install gnuplot-nox)");
	FILE *gp = popen("gnuplot", "w"); /* a fixed command: no name goes through the shell */
	if (!gp)
		return fail("plot: cannot run gnuplot: %s", strerror(errno));
	fprintf(gp, "set terminal png size 900,540\nset output ");
	gp_quoted(gp, png);
	fprintf(gp, "\nset datafile separator ','\nset key top right\nset xlabel 'step'\n"
	            "set ylabel 'loss (mean since the previous row)'\nset ytics nomirror\nset grid\n");
	if (evals)
		fprintf(gp, "set y2label 'test accuracy'\nset y2tics\n");
	fprintf(gp, "plot ");
	gp_quoted(gp, log);
	fprintf(gp, " every ::1 using 1:2 with lines title 'loss'");
	if (evals)
		fprintf(gp, ", '' every ::1 using 1:7 axes x1y2 with linespoints title 'test accuracy'");
	fprintf(gp, "\n");
	int status = pclose(gp);
	if (status != 0)
		return fail("plot: gnuplot failed (status %d) drawing %s", status, png);
	printf("%s: %ld rows, %ld with test accuracy\n", png, rows, evals);
	return 0;
}

/* --- cache: the OpenCL program cache ------------------------------------------------ */

/* brnrun cache list|clear: the entries brnrt_cl_cache_entry recognizes in
 * the cache directory, nothing else there. */
static int cmd_cache(int argc, char **argv)
{
	char dir[4096], path[8192];
	long count = 0;
	long long bytes = 0;
	if (argc != 2 || (strcmp(argv[1], "list") && strcmp(argv[1], "clear")))
		return usage_error("cache: expected 'cache list' or 'cache clear'");
	int clear = strcmp(argv[1], "clear") == 0;
	if (!brnrt_cl_cache_dir(dir, sizeof dir)) {
		printf("no program cache: %s\n", getenv("BRN_NO_CACHE") ? "BRN_NO_CACHE is set"
		                                                       : "neither XDG_CACHE_HOME nor HOME is set");
		return 0;
	}
	DIR *d = opendir(dir);
	if (!d && errno == ENOENT) {
		printf("%s: 0 entries, 0 bytes (the directory does not exist yet)\n", dir);
		return 0;
	}
	if (!d)
		return fail("cache: cannot read %s: %s", dir, strerror(errno));
	struct dirent *ent;
	int rc = 0;
	while ((ent = readdir(d)) != NULL) {
		struct stat st;
		if (!brnrt_cl_cache_entry(ent->d_name))
			continue;
		snprintf(path, sizeof path, "%s/%s", dir, ent->d_name);
		if (lstat(path, &st) != 0 || !S_ISREG(st.st_mode))
			continue;
		if (clear && unlink(path) != 0) {
			rc = fail("cache: cannot remove %s: %s", path, strerror(errno));
			continue;
		}
		if (!clear) {
			char when[32];
			strftime(when, sizeof when, "%Y-%m-%d %H:%M", localtime(&st.st_mtime));
			printf("%s %lld bytes, %s\n", ent->d_name, (long long)st.st_size, when);
		}
		count++;
		bytes += st.st_size;
	}
	closedir(d);
	printf("%s: %s%ld entr%s, %lld bytes\n", dir, clear ? "removed " : "", count, count == 1 ? "y" : "ies",
	       bytes);
	return rc;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		usage(stdout);
		return 0;
	}
	if (strcmp(argv[1], "--version") == 0) {
		printf("brnrun %s\n", BRNRT_VERSION);
		return 0;
	}
	/* --device D, with any command, picks the OpenCL device of an
	 * OpenCL-target model: it becomes BRN_DEVICE, which the runtime reads */
	for (int i = 2; i < argc; i++)
		if (strcmp(argv[i], "--device") == 0) {
			if (i + 1 >= argc)
				return usage_error("--device needs a value (an index, cpu/gpu/accelerator or a name)");
			setenv("BRN_DEVICE", argv[i + 1], 1);
			memmove(&argv[i], &argv[i + 2], (size_t)(argc - i - 1) * sizeof *argv);
			argc -= 2;
			i--;
		}
	for (int i = 0; i < NCOMMANDS; i++)
		if (strcmp(argv[1], commands[i].name) == 0)
			return commands[i].run(argc - 1, argv + 1);
	return usage_error("unknown command '%s'", argv[1]);
}
