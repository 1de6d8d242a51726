/* brnrun: lists OpenCL devices and runs models that `brnc --shared` compiled
 * into a shared library, loaded with dlopen. Each subcommand is one entry in
 * the table below and one function; exit 0 ok, 1 runtime error, 2 usage. */
#include <dlfcn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "brnrt.h"
#include "brnrt_cl.h"

typedef struct command {
	const char *name, *args, *help;
	int (*run)(int argc, char **argv);
} command;

static int cmd_devices(int argc, char **argv);
static int cmd_bench(int argc, char **argv);

static const command commands[] = {
	{"devices", "", "list the OpenCL devices of every platform", cmd_devices},
	{"bench", "LIB.so [--model NAME] [--weights FILE] [--batch N] [--iters N] [--train]",
	 "time inference (or training steps) of a compiled model", cmd_bench},
};
#define NCOMMANDS (int)(sizeof commands / sizeof commands[0])

static void usage(FILE *f)
{
	fprintf(f, "usage: brnrun COMMAND [ARGS]\n\ncommands:\n");
	for (int i = 0; i < NCOMMANDS; i++)
		fprintf(f, "  %s%s%s\n      %s\n", commands[i].name, *commands[i].args ? " " : "",
		        commands[i].args, commands[i].help);
	fprintf(f, "\noptions: --help, --version\n"
	           "environment: BRN_DEVICE (index, cpu/gpu/accelerator, or name substring),\n"
	           "  BRN_PROFILE=1 (per-kernel times at exit), BRN_NO_CACHE=1 (no program cache)\n");
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
	fprintf(stderr, "try 'brnrun --help'\n");
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

/* --- bench: a model from a shared library ------------------------------------ */

/* The generated API of a model M, looked up by name (see DESIGN.md §6). */
typedef struct model_api {
	void *lib;
	int (*open)(void **m, const char *weights);
	void (*close)(void *m);
	int (*infer)(void *m, const float *x, int n, float *out);
	int (*train_step)(void *m, const float *x, const int32_t *y, int n, float lr,
	                  float *loss);
	const char *(*error)(const void *m);
	const int *input_size, *output_size, *batch;
} model_api;

static void *sym(void *lib, const char *model, const char *suffix)
{
	char name[256];
	snprintf(name, sizeof name, "%s_%s", model, suffix);
	return dlsym(lib, name);
}

static int load_model(model_api *api, const char *path, const char *model)
{
	char local[4096];
	memset(api, 0, sizeof *api);
	if (!strchr(path, '/')) { /* dlopen would search the library path instead */
		snprintf(local, sizeof local, "./%s", path);
		path = local;
	}
	if (!(api->lib = dlopen(path, RTLD_NOW | RTLD_LOCAL)))
		return fail("%s", dlerror());
	api->open = (int (*)(void **, const char *))sym(api->lib, model, "open");
	api->close = (void (*)(void *))sym(api->lib, model, "close");
	api->infer = (int (*)(void *, const float *, int, float *))sym(api->lib, model, "infer");
	api->train_step = (int (*)(void *, const float *, const int32_t *, int, float, float *))sym(
		api->lib, model, "train_step");
	api->error = (const char *(*)(const void *))sym(api->lib, model, "error");
	api->input_size = sym(api->lib, model, "input_size");
	api->output_size = sym(api->lib, model, "output_size");
	api->batch = sym(api->lib, model, "batch");
	if (!api->open || !api->close || !api->infer || !api->error || !api->input_size ||
	    !api->output_size || !api->batch) {
		dlclose(api->lib);
		return fail("%s has no model '%s' (looked for %s_open, _close, _infer, _error, "
		            "_input_size, _output_size, _batch)", path, model, model);
	}
	return 0;
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

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int positive(const char *s, int *out)
{
	char *end;
	long v = strtol(s, &end, 10);
	if (*s == 0 || *end || v < 1 || v > 1000000)
		return -1;
	*out = (int)v;
	return 0;
}

typedef struct bench_opts {
	const char *lib, *model, *weights;
	int batch, iters, train;
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
		} else if (a[0] == '-')
			return usage_error("bench: unknown or incomplete option '%s'", a);
		else if (!o->lib)
			o->lib = a;
		else
			return usage_error("bench: one library at a time; extra '%s'", a);
	}
	return o->lib ? 0 : usage_error("bench: which library?");
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
	bench_opts o = {0};
	model_api api;
	char name[256];
	void *m = NULL;
	int rc = bench_args(argc, argv, &o);
	if (rc)
		return rc;
	if (!o.model) {
		model_name(o.lib, name, sizeof name);
		o.model = name;
	}
	if (!o.iters)
		o.iters = 20;
	if ((rc = load_model(&api, o.lib, o.model)) != 0)
		return rc;
	if (!o.batch || o.batch > *api.batch)
		o.batch = *api.batch;
	if (o.train && !api.train_step) {
		dlclose(api.lib);
		return fail("%s was compiled without --mode train", o.model);
	}
	size_t nx = (size_t)o.batch * (size_t)*api.input_size;
	float *x = malloc(nx * sizeof *x);
	float *out = malloc((size_t)o.batch * (size_t)*api.output_size * sizeof *out);
	int32_t *y = malloc((size_t)o.batch * sizeof *y);
	if (!x || !out || !y) {
		rc = fail("out of memory for a batch of %s", o.model);
		goto done;
	}
	unsigned s = 12345; /* fixed inputs: runs are comparable */
	for (size_t i = 0; i < nx; i++)
		s = s * 1103515245u + 12345u, x[i] = (float)((s >> 8) & 0xffff) / 32768.0f - 1.0f;
	for (int i = 0; i < o.batch; i++)
		y[i] = i % *api.output_size;
	if ((rc = api.open(&m, o.weights)) != 0) {
		rc = fail("cannot open %s: %s", o.model, m ? api.error(m) : brnrt_strerror(rc));
		goto done;
	}
	double best = 1e300, total = 0;
	for (int i = -2; i < o.iters; i++) { /* two warm-up runs */
		double t0 = now_ms();
		if (run_once(&api, m, &o, x, y, out) != 0) {
			rc = fail("%s", api.error(m));
			goto done;
		}
		double t = now_ms() - t0;
		if (i >= 0)
			total += t, best = t < best ? t : best;
	}
	double mean = total / o.iters;
	printf("%s %s: batch %d, %d runs, mean %.3f ms, min %.3f ms, %.0f examples/s\n", o.model,
	       o.train ? "train_step" : "infer", o.batch, o.iters, mean, best,
	       mean > 0 ? o.batch * 1e3 / mean : 0.0);
done:
	if (m)
		api.close(m);
	free(x);
	free(out);
	free(y);
	dlclose(api.lib);
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
	for (int i = 0; i < NCOMMANDS; i++)
		if (strcmp(argv[1], commands[i].name) == 0)
			return commands[i].run(argc - 1, argv + 1);
	return usage_error("unknown command '%s'", argv[1]);
}
