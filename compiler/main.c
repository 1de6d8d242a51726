/* brnc: the command line. Reads a model, runs the passes, writes code or
 * the graph. The only place that prints diagnostics and picks exit codes:
 * 0 ok, 1 input error, 2 usage error, 3 internal error. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "arena.h"
#include "ast.h"
#include "diag.h"
#include "driver.h"
#include "graph.h"
#include "names.h"
#include "onnx.h"

#define BRNC_VERSION "0.1.0"

static const char usage[] =
	"usage: brnc [options] MODEL.brn|MODEL.onnx\n"
	"\n"
	"Compiles a convolutional network with Batch Renormalization into fused,\n"
	"specialized C or OpenCL code (MODEL.h, MODEL.c [, MODEL.cl]).\n"
	"\n"
	"options:\n"
	"  -o BASE            output files BASE.h, BASE.c (default: the model name)\n"
	"  --name NAME        the model's name instead of the file's: the prefix of the\n"
	"                     generated API (two builds of one model in one program)\n"
	"  --target c|opencl  code to emit (default c)\n"
	"  --mode infer|train inference only, or training too (default infer)\n"
	"  --batch N          compile-time batch (overrides the model's 'batch')\n"
	"  --schedule S       schedule name or Lua file (overrides 'schedule')\n"
	"  --weights FILE     safetensors weights folded in (infer mode)\n"
	"  --step T           fold the r_max/d_max schedule at step T\n"
	"  --no-fuse          one kernel per op (for comparison)\n"
	"  --emit graph|dot   print the typed graph (text or Graphviz) and stop\n"
	"  --emit weights     list the tensors a weights file holds (name, shape,\n"
	"                     values) with the total, and stop\n"
	"  --shared           also build BASE.so for brnrun (needs -o and cc)\n"

	"  -h, --help         this help\n"
	"  --version          the version\n"	"\n"
	"ONNX models (MODEL.onnx; see docs/onnx.md) also write BASE.safetensors and take:\n"
	"  --renorm           every BatchNormalization becomes batch_renorm\n"
	"  --emit brn         print the model as .brn text and stop\n"
	"  --emit torch-names print brnc's tensor names beside the ONNX ones\n"
	"  --emit onnx        with --weights W -o OUT.onnx: the model with W's values\n"
	"\n"
	"exit status: 0 ok, 1 input error, 2 usage error, 3 internal error\n";

static int usage_error(const char *fmt, const char *arg)
{
	fprintf(stderr, "brnc: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\nbrnc: see brnc --help\n");
	return 2;
}

static int parse_int(const char *s, long lo, long hi, long *out)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < lo || v > hi)
		return -1;
	*out = v;
	return 0;
}

/* The directory of this executable. */
static void exe_dir(const char *argv0, char *buf, size_t n)
{
	ssize_t k = readlink("/proc/self/exe", buf, n - 1);
	if (k <= 0) {
		snprintf(buf, n, "%s", argv0);
		k = (ssize_t)strlen(buf);
	}
	buf[k] = 0;
	char *slash = strrchr(buf, '/');
	if (slash)
		*slash = 0;
	else
		snprintf(buf, n, ".");
}

/* Where schedules/ lives: $BRN_SCHEDULES, else next to the binary
 * (build/brnc -> ./schedules; PREFIX/bin/brnc -> PREFIX/share/brnc/schedules). */
static void schedule_dir(const char *argv0, char *buf, size_t n)
{
	const char *env = getenv("BRN_SCHEDULES");
	if (env && *env) {
		snprintf(buf, n, "%s", env);
		return;
	}
	char exe[PATH_MAX];
	exe_dir(argv0, exe, sizeof exe);
	/* installed, then the source tree (build/brnc, build/asan/brnc) */
	static const char *const rel[] = {"../share/brnc/schedules", "../schedules", "../../schedules"};
	for (size_t i = 0; i < sizeof rel / sizeof *rel; i++) {
		char cand[PATH_MAX + 64];
		snprintf(cand, sizeof cand, "%s/%s", exe, rel[i]);
		if (access(cand, R_OK) == 0) {
			snprintf(buf, n, "%s", cand);
			return;
		}
	}
	snprintf(buf, n, "%s/../schedules", exe);
}

/* Runs argv (no shell: names are passed as they are); 0 when it exits 0. */
static int run_argv(char *const argv[])
{
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		execvp(argv[0], argv);
		fprintf(stderr, "brnc: --shared: cannot run %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	int status;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

/* --shared: builds BASE.so from the emitted BASE.c with $CC (default cc;
 * split at spaces, as make does), against libbrnrt next to brnc (build
 * tree) or in PREFIX/lib (installed). */
static int build_shared(const char *argv0, const char *base, const char *target)
{
	char dir[PATH_MAX], inc[PATH_MAX + 32], lib[PATH_MAX + 32], probe[PATH_MAX + 64];
	exe_dir(argv0, dir, sizeof dir);
	snprintf(probe, sizeof probe, "%s/../runtime/brnrt.h", dir);
	int tree = access(probe, R_OK) == 0;
	snprintf(probe, sizeof probe, "%s/../../runtime/brnrt.h", dir);
	int subtree = !tree && access(probe, R_OK) == 0; /* build/asan/brnc */
	if (tree || subtree) {
		snprintf(inc, sizeof inc, "-I%s/%sruntime", dir, tree ? "../" : "../../");
		snprintf(lib, sizeof lib, "%s", dir);
	} else {
		snprintf(inc, sizeof inc, "-I%s/../include/brnrt", dir);
		snprintf(lib, sizeof lib, "%s/../lib", dir);
	}
	const char *cc = getenv("CC") && *getenv("CC") ? getenv("CC") : "cc";
	/* a base starting with '-' would read as an option */
	const char *dot = base[0] == '-' ? "./" : "";
	size_t n = strlen(base) + 8;
	char *src = malloc(n), *so = malloc(n), *libdir = malloc(strlen(lib) + 3), *words = strdup(cc);
	char *argv[64];
	int k = 0, rc = 3;
	if (!src || !so || !libdir || !words) {
		fprintf(stderr, "brnc: --shared: out of memory\n");
		goto done;
	}
	snprintf(src, n, "%s%s.c", dot, base);
	snprintf(so, n, "%s%s.so", dot, base);
	snprintf(libdir, strlen(lib) + 3, "-L%s", lib);
	for (char *w = strtok(words, " \t"); w && k < 40; w = strtok(NULL, " \t"))
		argv[k++] = w;
	if (!k)
		argv[k++] = "cc";
	char *fixed[] = {"-std=c11", "-O2", "-shared", "-fPIC", inc, src, "-o", so, libdir, "-lbrnrt",
	                 "-Xlinker", "-rpath", "-Xlinker", lib};
	for (size_t i = 0; i < sizeof fixed / sizeof *fixed; i++)
		argv[k++] = fixed[i];
	if (!strcmp(target, "opencl"))
		argv[k++] = "-lOpenCL";
	argv[k++] = "-lm";
	argv[k] = NULL;
	if (run_argv(argv) == 0) {
		rc = 0;
		goto done;
	}
	fprintf(stderr, "brnc: --shared: the C compiler failed:");
	for (int i = 0; i < k; i++)
		fprintf(stderr, " %s", argv[i]);
	fprintf(stderr, "\n");
done:
	free(src);
	free(so);
	free(libdir);
	free(words);
	return rc;
}

/* -o BASE names files BASE.h, BASE.c: its last part must be a file name,
 * and one the generated .c can #include "BASE.h". */
static int check_base(const char *base)
{
	const char *name = strrchr(base, '/') ? strrchr(base, '/') + 1 : base;
	if (!*name || !strcmp(name, ".") || !strcmp(name, ".."))
		return usage_error("-o '%s' names a directory; expected a file base such as 'dir/model' "
		                   "(brnc writes BASE.h and BASE.c)", base);
	for (const char *c = name; *c; c++)
		if (*c == '"' || *c == '\\' || (unsigned char)*c < 0x20 || *c == 0x7f)
			return usage_error("-o '%s': the file name cannot be #included (no '\"', '\\' or control "
			                   "characters)", base);
	/* the generated .c includes "brnrt.h" &c. from beside its own header */
	if (!strncmp(name, "brnrt", 5))
		return usage_error("-o '%s': BASE.h would shadow libbrnrt's headers (brnrt*.h); expected another "
		                   "file base", base);
	return 0;
}

/* --name NAME: a name the model statement could give (a C identifier of at
 * most 128 characters, free in C). */
static int check_name(const char *name)
{
	size_t n = strlen(name);
	int ident = n > 0 && n <= 128 && !(name[0] >= '0' && name[0] <= '9');
	for (const char *c = name; *c && ident; c++)
		ident = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
		        *c == '_';
	if (!ident)
		return usage_error("--name '%s': expected a name of letters, digits and '_' that does not start "
		                   "with a digit (at most 128 characters)", name);
	if (brn_model_name_problem(name)) {
		fprintf(stderr, "brnc: --name '%s' %s; expected a name free in C (the generated API takes it)\n",
		        name, brn_model_name_problem(name));
		fprintf(stderr, "brnc: see brnc --help\n");
		return 2;
	}
	return 0;
}

int main(int argc, char **argv)
{
	brn_options o;
	memset(&o, 0, sizeof o);
	o.target = "c";
	o.mode = "infer";
	o.step = -1;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		long num;
		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			fputs(usage, stdout);
			return 0;
		} else if (!strcmp(a, "--version")) {
			printf("brnc %s\n", BRNC_VERSION);
			return 0;
		} else if (!strcmp(a, "--no-fuse")) {
			o.no_fuse = 1;
		} else if (!strcmp(a, "--shared")) {
			o.shared = 1;
		} else if (!strcmp(a, "--renorm")) {
			o.renorm = 1;
		} else if (!strcmp(a, "-o") || !strcmp(a, "--target") || !strcmp(a, "--mode") ||
		           !strcmp(a, "--batch") || !strcmp(a, "--schedule") || !strcmp(a, "--weights") ||
		           !strcmp(a, "--step") || !strcmp(a, "--emit") || !strcmp(a, "--name")) {
			if (!v)
				return usage_error("option %s needs a value", a);
			i++;
			if (!strcmp(a, "-o"))
				o.out = v;
			else if (!strcmp(a, "--name")) {
				if (check_name(v))
					return 2;
				o.name = v;
			}
			else if (!strcmp(a, "--target")) {
				if (strcmp(v, "c") && strcmp(v, "opencl"))
					return usage_error("--target must be c or opencl, not '%s'", v);
				o.target = v;
			} else if (!strcmp(a, "--mode")) {
				if (strcmp(v, "infer") && strcmp(v, "train"))
					return usage_error("--mode must be infer or train, not '%s'", v);
				o.mode = v;
			} else if (!strcmp(a, "--batch")) {
				if (parse_int(v, 1, 65536, &num))
					return usage_error("--batch must be an integer from 1 to 65536, not '%s'", v);
				o.batch = (int)num;
			} else if (!strcmp(a, "--step")) {
				if (parse_int(v, 0, LONG_MAX, &num))
					return usage_error("--step must be a non-negative integer, not '%s'", v);
				o.step = num;
			} else if (!strcmp(a, "--schedule"))
				o.schedule = v;
			else if (!strcmp(a, "--weights"))
				o.weights = v;
			else {
				if (strcmp(v, "graph") && strcmp(v, "dot") && strcmp(v, "weights") && strcmp(v, "brn") &&
				    strcmp(v, "onnx") && strcmp(v, "torch-names"))
					return usage_error("--emit must be graph, dot, weights, brn, onnx or torch-names, not '%s'", v);
				o.emit = v;
			}
		} else if (a[0] == '-' && a[1]) {
			return usage_error("unknown option '%s'", a);
		} else if (o.model) {
			return usage_error("more than one model file ('%s')", a);
		} else {
			o.model = a;
		}
	}
	if (!o.model)
		return usage_error("no model file given%s", "");
	if (o.shared && !o.emit && !o.out)
		return usage_error("--shared needs -o BASE%s", "");
	if (o.out && check_base(o.out))
		return 2;
	if (o.weights && !strcmp(o.mode, "train") && !(o.emit && !strcmp(o.emit, "onnx")))
		return usage_error("--weights folds weights into inference code; use --mode infer (a training "
		                   "program loads weights at run time with _open)%s", "");
	int onnx_emit = o.emit && (!strcmp(o.emit, "brn") || !strcmp(o.emit, "onnx") || !strcmp(o.emit, "torch-names"));
	if ((o.renorm || onnx_emit) && !brn_onnx_sniff(o.model))
		return usage_error("--renorm and --emit brn|onnx|torch-names apply to ONNX models, and '%s' is "
		                   "not one", o.model);
	char dir[PATH_MAX + 64];
	schedule_dir(argv[0], dir, sizeof dir);
	o.schedule_dir = dir;

	/* the command line, for the generated files' header comment */
	char cmd[1024] = "brnc";
	for (int i = 1; i < argc; i++)
		snprintf(cmd + strlen(cmd), sizeof cmd - strlen(cmd), " %s", argv[i]);
	o.command_line = cmd;

	brn_diag d;
	memset(&d, 0, sizeof d);
	int rc = brn_compile(&o, stdout, &d);
	if (rc) {
		char buf[4096];
		brn_diag_render(&d, buf, sizeof buf);
		fprintf(stderr, "brnc: %s", buf); /* every diagnostic names its program */
		if (buf[0] && buf[strlen(buf) - 1] != '\n')
			fputc('\n', stderr);
		return rc == BRN_COMPILE_INTERNAL ? 3 : 1;
	}
	if (o.shared && !o.emit)
		return build_shared(argv[0], o.out, o.target);
	return 0;
}
