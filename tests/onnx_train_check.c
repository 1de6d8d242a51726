/* onnx_train_check: an ONNX model compiled with --renorm --mode train
 * (C target) against the reference interpreter, both starting from the
 * weights brnc wrote from the model's initializers. Run by tests/t_onnx.py
 * (not a test itself: it needs the .onnx file PyTorch exports); prints TAP
 * lines without a plan, which t_onnx.py relays.
 *
 *   onnx_train_check MODEL.onnx STEPS LR [SAVE]
 *
 * SAVE: where to write the trained state (for t_onnx.py's export check).
 *
 * Same tolerances as t_codegen: losses 1e-4 + 1e-3|x|; the state (weights,
 * statistics, momentum) after STEPS steps 2e-4 + 2e-3|x|. */
#include "codegen.h"
#include "onnx.h"

int main(int argc, char **argv)
{
	if (argc != 4 && argc != 5) {
		fprintf(stderr, "usage: onnx_train_check MODEL.onnx STEPS LR [SAVE]\n");
		return 2;
	}
	const char *path = argv[1];
	int steps = atoi(argv[2]);
	double lr = atof(argv[3]);
	api a;
	char weights[600];
	cg_renorm = 1;
	if (cg_build(&a, path, "renorm_train", "renorm_train", "c", "train", 0, 0, NULL)) {
		ok(0, "%s --renorm --mode train builds", path);
		return 1;
	}
	snprintf(weights, sizeof weights, "%s/renorm_train.safetensors", cg_tmpdir());
	if (a.open(&a.m, weights)) {
		ok(0, "opens %s: %s", weights, a.m ? a.error(a.m) : "");
		return 1;
	}
	brn_arena ar;
	brn_graph g;
	brn_diag d;
	brn_onnx_import im;
	brn_onnx_options io = {"renorm_train", 1, 1};
	brn_interp *ip = NULL;
	memset(&d, 0, sizeof d);
	brn_arena_init(&ar);
	if (brn_onnx_import_file(path, &io, &ar, &im, &d) ||
	    brn_load_text(path, im.text, im.len, 0, NULL, "schedules", &ar, &g, &d) ||
	    brn_interp_open(&ip, &g, 1, &d)) {
		ok(0, "interpreter: %s", d.msg);
		return 1;
	}
	for (int i = 0; i < im.nw; i++) {
		long count;
		double *dst = brn_interp_tensor(ip, im.w[i].name, &count);
		for (long j = 0; dst && j < count; j++)
			dst[j] = im.w[i].data[j];
		if (!dst)
			diag("no tensor %s in the interpreter", im.w[i].name);
	}
	int n = g.batch, classes = g.nodes[g.labels].classes;
	long in = brn_shape_count(g.nodes[g.input].shape) * n;
	float *xf = malloc((size_t)in * sizeof *xf);
	double *xd = malloc((size_t)in * sizeof *xd);
	int32_t *y = malloc((size_t)n * sizeof *y);
	int good = 1;
	for (int s = 0; s < steps; s++) {
		for (long i = 0; i < in; i++)
			xf[i] = (float)(xd[i] = 2 * cg_uniform() - 1);
		for (int i = 0; i < n; i++)
			y[i] = (int32_t)(cg_uniform() * classes);
		float loss;
		double want;
		int rc = a.train_step(a.m, xf, y, n, (float)lr, &loss);
		brn_interp_train_step(ip, xd, y, n, lr, &want, &d);
		double r = fabs(loss - want) / (1e-4 + 1e-3 * fabs(want));
		good &= ok(rc == 0 && r <= 1, "step %d: loss %.6f, interpreter %.6f (%.2f of tolerance)", s + 1, loss,
		           want, r);
	}
	char what[64];
	snprintf(what, sizeof what, "after %d steps", steps);
	good &= cg_compare_state(&a, ip, &g, 1, 2e-4, 2e-3, what);
	if (argc == 5 && a.save(a.m, argv[4])) {
		diag("save: %s", a.error(a.m));
		good = 0;
	}
	free(xf);
	free(xd);
	free(y);
	brn_interp_close(ip);
	brn_arena_free(&ar);
	cg_unload(&a);
	cg_cleanup();
	return good ? 0 : 1;
}
