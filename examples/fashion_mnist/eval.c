/* eval: the test accuracy of a brnc-generated fashion_cnn (any mode, any
 * target) with given weights, on the device the generated code chose:
 *   test accuracy (LABEL, <device>): 0.XXXX */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fashion_cnn.h"
#include "idx.h"

#define BATCH FASHION_CNN_BATCH
#define INPUT FASHION_CNN_INPUT_SIZE
#define CLASSES FASHION_CNN_OUTPUT_SIZE

static const char usage[] =
	"usage: eval [--weights FILE] [--data DIR] [--label NAME]\n"
	"Prints the Fashion-MNIST test accuracy of fashion_cnn with those weights:\n"
	"  test accuracy (NAME, <device>): 0.XXXX\n"
	"\n"
	"  --weights FILE  safetensors weights or a checkpoint from train (omit it\n"
	"                  for a model compiled with brnc --weights)\n"
	"  --data DIR      IDX files (default $BRN_DATA, else " IDX_DEFAULT_DIR ")\n"
	"  --label NAME    first word of the result line (default opencl)\n"
	"  --help          this text\n";

static int fail(const char *fmt, const char *a, const char *b)
{
	fprintf(stderr, "eval: ");
	fprintf(stderr, fmt, a, b);
	fputc('\n', stderr);
	return 1;
}

int main(int argc, char **argv)
{
	static float out[BATCH * CLASSES];
	const char *weights = NULL, *data = NULL, *label = "opencl";
	char err[1024];
	fashion_cnn *m = NULL;
	idx_set test;
	long correct = 0;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			fputs(usage, stdout);
			return 0;
		}
		if (strcmp(a, "--weights") && strcmp(a, "--data") && strcmp(a, "--label")) {
			return fail("unknown argument '%s'%s; try 'eval --help'", a, "");
		}
		if (!v)
			return fail("%s needs a value%s", a, "");
		i++;
		if (!strcmp(a, "--weights"))
			weights = v;
		else if (!strcmp(a, "--data"))
			data = v;
		else
			label = v;
	}
#ifndef FASHION_CNN_WEIGHTS_FOLDED
	if (!weights)
		return fail("--weights FILE is required: this fashion_cnn has no weights compiled in%s%s", "", "");
#endif
	if (idx_load(&test, idx_data_dir(data), "t10k", err, sizeof err))
		return fail("%s%s", err, "");
	if (test.rows * test.cols != INPUT) {
		fprintf(stderr, "eval: images are %d x %d; fashion_cnn takes %d values per example\n",
			test.rows, test.cols, INPUT);
		return 1;
	}
	if (fashion_cnn_open(&m, weights))
		return fail("%s: %s", weights ? weights : "fashion_cnn", m ? fashion_cnn_error(m) : "cannot open the model");
	for (int i = 0; i < test.n; i += BATCH) {
		int n = test.n - i < BATCH ? test.n - i : BATCH;
		if (fashion_cnn_infer(m, test.images + (size_t)i * INPUT, n, out))
			return fail("infer: %s%s", fashion_cnn_error(m), "");
		correct += idx_count_correct(out, test.labels + i, n, CLASSES);
	}
	printf("test accuracy (%s, %s): %.4f\n", label, fashion_cnn_device(m),
	       (double)correct / test.n);
	fashion_cnn_close(m);
	idx_free(&test);
	return 0;
}
