/* The pipeline: .brn text -> AST -> Graph -> schedules -> (lower, fuse,
 * emit). Every stage reports into one brn_diag; nothing here prints. */
#include "driver.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "emit.h"
#include "fuse.h"
#include "onnx.h"
#include "schedule.h"

enum { MAX_MODEL_BYTES = 16 << 20 };

int brn_read_file(const char *path, brn_arena *a, char **text, size_t *len, brn_diag *d)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return brn_diag_error(d, path, 0, 0, "cannot open: %s", strerror(errno));
	struct stat st;
	if (fstat(fileno(f), &st) == 0 && S_ISDIR(st.st_mode)) {
		fclose(f);
		return brn_diag_error(d, path, 0, 0, "is a directory, not a model file");
	}
	size_t cap = 4096, n = 0;
	char *buf = NULL;
	for (;;) {
		char *bigger = brn_arena_alloc(a, cap + 1);
		if (!bigger) {
			fclose(f);
			return brn_diag_error(d, path, 0, 0, "out of memory reading the file");
		}
		if (n)
			memcpy(bigger, buf, n);
		buf = bigger;
		n += fread(buf + n, 1, cap - n, f);
		if (n < cap)
			break;
		if (cap >= MAX_MODEL_BYTES) {
			fclose(f);
			return brn_diag_error(d, path, 0, 0, "file is larger than 16 MiB; not a model file");
		}
		cap *= 2;
	}
	int bad = ferror(f);
	fclose(f);
	if (bad)
		return brn_diag_error(d, path, 0, 0, "read error: %s", strerror(errno));
	buf[n] = 0;
	*text = buf;
	*len = n;
	return 0;
}

/* Runs one schedule script. A script's own errors point into the script;
 * a name that does not resolve points at where the model names it (line 0:
 * it came from the command line or the default). */
static int load_schedule(const brn_graph *g, const char *dir, const char *spec, int line, int col,
                         brn_schedule *s, brn_diag *d)
{
	brn_diag sd;
	memset(&sd, 0, sizeof sd);
	if (brn_schedule_load(spec, dir, s, NULL, 0, NULL, &sd) == 0)
		return 0;
	if (sd.file[0])
		*d = sd;
	else if (line)
		brn_diag_error(d, g->file, line, col, "%s", sd.msg);
	else
		brn_diag_error(d, "", 0, 0, "%s", sd.msg);
	return -1;
}

/* Resolves the model's schedule (always, so a bad one is reported even
 * when no batch_renorm uses it) and every other one a batch_renorm names. */
int brn_resolve_schedules(brn_graph *g, const char *dir, brn_diag *d)
{
	brn_schedule model, other;
	if (load_schedule(g, dir, g->schedule, g->schedule_line, g->schedule_col, &model, d))
		return -1;
	for (int i = 0; i < g->n; i++) {
		brn_node *n = &g->nodes[i];
		if (n->op != BRN_OP_BATCH_RENORM)
			continue;
		brn_bound *bounds[2] = {&n->r_max, &n->d_max};
		for (int k = 0; k < 2; k++) {
			brn_bound *b = bounds[k];
			const brn_schedule *s = &model;
			if (!b->sched) {
				brn_piecewise_constant(&b->pw, b->value);
				continue;
			}
			if (strcmp(b->sched, g->schedule) != 0) {
				if (load_schedule(g, dir, b->sched, n->line, n->col, &other, d))
					return -1;
				s = &other;
			}
			b->pw = k == 0 ? s->r_max : s->d_max;
		}
	}
	return 0;
}

int brn_load_model(const char *path, int batch, const char *schedule,
                   const char *schedule_dir, brn_arena *a, brn_graph *g, brn_diag *d)
{
	char *text;
	size_t len;
	if (brn_read_file(path, a, &text, &len, d))
		return BRN_COMPILE_INPUT;
	return brn_load_text(path, text, len, batch, schedule, schedule_dir, a, g, d);
}

int brn_load_text(const char *path, const char *text, size_t len, int batch, const char *schedule,
                  const char *schedule_dir, brn_arena *a, brn_graph *g, brn_diag *d)
{
	brn_ast ast;
	brn_diag_source(d, path, text, len);
	if (brn_parse(path, text, len, a, &ast, d) ||
	    brn_graph_build(&ast, batch, schedule, a, g, d) ||
	    brn_resolve_schedules(g, schedule_dir, d))
		return BRN_COMPILE_INPUT;
	if (brn_graph_check(g, d))
		return BRN_COMPILE_INTERNAL;
	return 0;
}

/* The kernels(layer) knobs of the model's schedule, one per node. */
static int knobs_for(const brn_graph *g, const char *dir, brn_arena *a, brn_knobs **out, char *path,
                     size_t pathlen, brn_diag *d)
{
	brn_layer_desc *layers = brn_arena_alloc(a, (size_t)g->n * sizeof *layers);
	brn_knobs *knobs = brn_arena_alloc(a, (size_t)g->n * sizeof *knobs);
	if (!layers || !knobs)
		return brn_diag_error(d, g->file, 0, 0, "out of memory");
	for (int i = 0; i < g->n; i++) {
		const brn_node *n = &g->nodes[i];
		const brn_node *x = n->nin ? &g->nodes[n->in[0]] : n;
		layers[i].name = n->name;
		layers[i].op = brn_op_name(n->op);
		memcpy(layers[i].in, x->shape, sizeof layers[i].in);
		memcpy(layers[i].out, n->shape, sizeof layers[i].out);
	}
	brn_schedule s;
	brn_diag sd;
	memset(&sd, 0, sizeof sd);
	if (brn_schedule_load(g->schedule, dir, &s, layers, g->n, knobs, &sd)) {
		if (sd.file[0])
			*d = sd;
		else
			brn_diag_error(d, g->file, g->schedule_line, g->schedule_col, "%s", sd.msg);
		return -1;
	}
	*out = knobs;
	snprintf(path, pathlen, "%s", s.path);
	return 0;
}

/* Refuses outputs that are inputs (brnc mlp.h: the model's name is mlp, so
 * mlp.h would be written over the model): same file, by device and inode,
 * so links and other spellings of a path count too. */
static int outputs_clear(const brn_options *o, const char *base, const char *schedule, brn_diag *d)
{
	static const char *const ext[] = {".h", ".c", ".cl", ".so"};
	const char *inputs[] = {o->model, o->weights, schedule};
	const char *what[] = {"model", "weights", "schedule"};
	int nout = strcmp(o->target, "opencl") == 0 ? 3 : 2;
	size_t n = strlen(base) + 4;
	char *path = malloc(n);
	if (!path)
		return brn_diag_error(d, "", 0, 0, "out of memory");
	int rc = 0;
	for (int i = 0; i < 4 && !rc; i++) {
		struct stat so, si;
		if ((i == 3 && !o->shared) || (i == 2 && nout < 3))
			continue;
		snprintf(path, n, "%s%s", base, ext[i]);
		if (stat(path, &so) != 0)
			continue;
		for (int k = 0; k < 3 && !rc; k++)
			if (inputs[k] && stat(inputs[k], &si) == 0 && si.st_dev == so.st_dev && si.st_ino == so.st_ino)
				rc = brn_diag_error(d, "", 0, 0, "output '%s' is the %s file '%s'; choose another -o BASE",
				                    path, what[k], inputs[k]);
	}
	free(path);
	return rc;
}

static int generate(const brn_options *o, const brn_graph *g, brn_arena *a, brn_diag *d)
{
	brn_knobs *knobs = NULL;
	brn_plan plan;
	char schedule[512] = "";
	if (knobs_for(g, o->schedule_dir, a, &knobs, schedule, sizeof schedule, d) ||
	    outputs_clear(o, o->out ? o->out : g->model, schedule[0] ? schedule : NULL, d))
		return BRN_COMPILE_INPUT;
	int train = strcmp(o->mode, "train") == 0;
	if (brn_plan_build(g, o->target, train, o->no_fuse, o->step, knobs, o->weights, a, &plan, d))
		return d->msg[0] && strncmp(d->msg, "internal", 8) ? BRN_COMPILE_INPUT : BRN_COMPILE_INTERNAL;
	brn_emit_options eo;
	eo.base = o->out ? o->out : g->model;
	eo.target = o->target;
	eo.source = o->model;
	eo.command = o->command_line;
	if (brn_emit(&plan, &eo, d))
		return strncmp(d->msg, "internal", 8) ? BRN_COMPILE_INPUT : BRN_COMPILE_INTERNAL;
	return 0;
}

/* An ONNX model: imported as .brn text, then the same front end. */
static int load_onnx(const brn_options *o, brn_arena *a, brn_onnx_import *im, brn_graph *g, brn_diag *d)
{
	brn_onnx_options io;
	memset(&io, 0, sizeof io);
	io.name = brn_onnx_model_name(o->out ? o->out : o->model, a);
	io.renorm = o->renorm;
	io.train = strcmp(o->mode, "train") == 0;
	if (!io.name || brn_onnx_import_file(o->model, &io, a, im, d))
		return BRN_COMPILE_INPUT;
	if (o->emit && !strcmp(o->emit, "brn"))
		return 0;
	return brn_load_text(o->model, im->text, im->len, o->batch, o->schedule, o->schedule_dir, a, g, d);
}

/* What an ONNX model adds: --emit brn|onnx|torch-names, or the code and
 * BASE.safetensors. */
static int onnx_outputs(const brn_options *o, brn_graph *g, brn_onnx_import *im, FILE *out, brn_diag *d)
{
	if (!o->emit) {
		int rc = generate(o, g, g->arena, d);
		if (rc)
			return rc;
		const char *base = o->out ? o->out : g->model;
		char *path = brn_arena_printf(g->arena, "%s.safetensors", base);
		if (!path)
			return brn_diag_error(d, "", 0, 0, "out of memory"), BRN_COMPILE_INTERNAL;
		return brn_onnx_write_weights(im, path, d) ? BRN_COMPILE_INPUT : 0;
	}
	if (!strcmp(o->emit, "brn"))
		fwrite(im->text, 1, im->len, out);
	else if (!strcmp(o->emit, "torch-names"))
		brn_onnx_print_names(im, out);
	else if (!strcmp(o->emit, "onnx")) {
		if (!o->out)
			return brn_diag_error(d, "", 0, 0, "--emit onnx needs -o OUT.onnx"), BRN_COMPILE_INPUT;
		return brn_onnx_export(o->model, im, o->weights, o->out, d) ? BRN_COMPILE_INPUT : 0;
	} else if (!strcmp(o->emit, "dot"))
		brn_graph_print_dot(g, out);
	else if (!strcmp(o->emit, "weights"))
		brn_graph_print_params(g, out);
	else
		brn_graph_print(g, out);
	return 0;
}

int brn_compile(const brn_options *o, FILE *out, brn_diag *d)
{
	brn_arena a;
	brn_graph g;
	brn_arena_init(&a);
	brn_onnx_import im;
	int onnx = brn_onnx_sniff(o->model), rc;
	if (onnx)
		rc = load_onnx(o, &a, &im, &g, d);
	else
		rc = brn_load_model(o->model, o->batch, o->schedule, o->schedule_dir, &a, &g, d);
	brn_diag_source(d, NULL, NULL, 0);
	if (rc == 0 && o->name) /* checked by the caller, as a model statement's name is */
		g.model = o->name;
	if (rc == 0 && onnx && (o->emit || !o->weights))
		rc = onnx_outputs(o, &g, &im, out, d);
	else if (rc == 0 && o->emit) {
		if (strcmp(o->emit, "dot") == 0)
			brn_graph_print_dot(&g, out);
		else if (strcmp(o->emit, "weights") == 0)
			brn_graph_print_params(&g, out);
		else
			brn_graph_print(&g, out);
	} else if (rc == 0) {
		rc = generate(o, &g, &a, d);
	}
	brn_arena_free(&a);
	return rc;
}
