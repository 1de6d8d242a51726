/* t_ex_idx: the IDX reader of examples/fashion_mnist on small files written
 * here, gzipped and plain, good and broken; then the Debian data set when it
 * is installed. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "brnrt.h"
#include "idx.h"
#include "tap.h"

static char dir[256];
static char err[1024];

/* Writes a header (magic, dims) and len bytes of data, gzipped or plain. */
static void write_idx(const char *name, int gz, uint32_t magic, const uint32_t *dims,
		      int ndims, const unsigned char *data, size_t len)
{
	unsigned char buf[4096];
	size_t n = 0;
	char path[512];
	uint32_t words[4] = {magic};

	for (int i = 0; i < ndims; i++)
		words[1 + i] = dims[i];
	for (int i = 0; i < 1 + ndims; i++) {
		buf[n++] = (unsigned char)(words[i] >> 24);
		buf[n++] = (unsigned char)(words[i] >> 16);
		buf[n++] = (unsigned char)(words[i] >> 8);
		buf[n++] = (unsigned char)words[i];
	}
	if (len)
		memcpy(buf + n, data, len);
	n += len;
	snprintf(path, sizeof path, "%s/%s", dir, name);
	if (gz) {
		gzFile f = gzopen(path, "wb");
		if (!f || gzwrite(f, buf, (unsigned)n) != (int)n || gzclose(f) != Z_OK)
			diag("cannot write %s", path);
	} else {
		FILE *f = fopen(path, "wb");
		if (!f || fwrite(buf, 1, n, f) != n || fclose(f))
			diag("cannot write %s", path);
	}
}

static const char *at(const char *name)
{
	static char path[512];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	return path;
}

static void rm(const char *name)
{
	unlink(at(name));
}

static const uint32_t dims345[3] = {3, 4, 5};
static unsigned char pixels[60], labels[3] = {0, 9, 4};

static void good_files(int gz)
{
	const uint32_t three = 3;
	write_idx(gz ? "train-images-idx3-ubyte.gz" : "train-images-idx3-ubyte", gz, 0x803,
		  dims345, 3, pixels, 60);
	write_idx(gz ? "train-labels-idx1-ubyte.gz" : "train-labels-idx1-ubyte", gz, 0x801,
		  &three, 1, labels, 3);
}

static void test_good(int gz)
{
	idx_set s;
	int rc;

	good_files(gz);
	rc = idx_load(&s, dir, "train", err, sizeof err);
	is_int(rc, BRN_OK, "%s files load", gz ? "gzipped" : "plain");
	if (rc)
		diag("%s", err);
	is_int(s.n, 3, "%s: 3 examples", gz ? "gz" : "plain");
	ok(s.rows == 4 && s.cols == 5, "%s: 4 x 5 pixels", gz ? "gz" : "plain");
	ok(s.images && s.images[0] == 0.0f && s.images[1] == 51 / 255.0f &&
		   s.images[59] == 1.0f,
	   "%s: pixels scaled to [0, 1]", gz ? "gz" : "plain");
	ok(s.labels && s.labels[0] == 0 && s.labels[1] == 9 && s.labels[2] == 4,
	   "%s: labels read", gz ? "gz" : "plain");
	idx_free(&s);
	ok(s.images == NULL && s.labels == NULL, "idx_free empties the set");
}

static void test_errors(int gz)
{
	const char *img = gz ? "t10k-images-idx3-ubyte.gz" : "t10k-images-idx3-ubyte";
	const char *lab = gz ? "t10k-labels-idx1-ubyte.gz" : "t10k-labels-idx1-ubyte";
	const char *kind = gz ? "gz" : "plain";
	const uint32_t three = 3, two = 2, zero_rows[3] = {3, 0, 5};
	unsigned char bad_labels[3] = {1, 10, 2};
	char want[2048], ipath[512], lpath[512];
	float *x = NULL;
	int32_t *y = NULL;
	int n, r, c, rc;
	idx_set s;

	snprintf(ipath, sizeof ipath, "%s", at(img));
	snprintf(lpath, sizeof lpath, "%s", at(lab));

	write_idx(img, gz, 0x801, dims345, 3, pixels, 60);
	rc = idx_read_images(ipath, &x, &n, &r, &c, err, sizeof err);
	snprintf(want, sizeof want, "%s: bad magic 0x00000801 (expected 0x00000803, an IDX image file)",
		 ipath);
	is_int(rc, BRN_EFORMAT, "%s: wrong magic is a format error", kind);
	is_str(err, want, "%s: wrong magic message", kind);

	write_idx(lab, gz, 0x803, &three, 1, labels, 3);
	rc = idx_read_labels(lpath, &y, &n, err, sizeof err);
	snprintf(want, sizeof want, "%s: bad magic 0x00000803 (expected 0x00000801, an IDX label file)",
		 lpath);
	is_str(err, want, "%s: wrong label magic message", kind);

	write_idx(img, gz, 0x803, dims345, 3, pixels, 50);
	rc = idx_read_images(ipath, &x, &n, &r, &c, err, sizeof err);
	snprintf(want, sizeof want, "%s: truncated: expected 60 bytes of image data, got 50", ipath);
	is_int(rc, BRN_EFORMAT, "%s: truncated images are a format error", kind);
	is_str(err, want, "%s: truncated images message", kind);

	write_idx(img, gz, 0x803, dims345, 1, NULL, 0);
	rc = idx_read_images(ipath, &x, &n, &r, &c, err, sizeof err);
	snprintf(want, sizeof want, "%s: truncated: expected a 16-byte header, got 8", ipath);
	is_str(err, want, "%s: truncated header message", kind);

	write_idx(lab, gz, 0x801, &three, 1, labels, 2);
	rc = idx_read_labels(lpath, &y, &n, err, sizeof err);
	snprintf(want, sizeof want, "%s: truncated: expected 3 bytes of label data, got 2", lpath);
	is_str(err, want, "%s: truncated labels message", kind);

	write_idx(img, gz, 0x803, zero_rows, 3, pixels, 60);
	rc = idx_read_images(ipath, &x, &n, &r, &c, err, sizeof err);
	snprintf(want, sizeof want,
		 "%s: absurd dimensions 3 x 0 x 5 (expected 1..10000000 images of 1..1024 x 1..1024 pixels)",
		 ipath);
	is_int(rc, BRN_EFORMAT, "%s: zero rows are a format error", kind);
	is_str(err, want, "%s: absurd dimensions message", kind);

	write_idx(lab, gz, 0x801, &three, 1, bad_labels, 3);
	rc = idx_read_labels(lpath, &y, &n, err, sizeof err);
	snprintf(want, sizeof want, "%s: label 10 of example 1 is out of range 0..9", lpath);
	is_str(err, want, "%s: label out of range message", kind);

	write_idx(img, gz, 0x803, dims345, 3, pixels, 60);
	write_idx(lab, gz, 0x801, &two, 1, labels, 2);
	rc = idx_load(&s, dir, "t10k", err, sizeof err);
	snprintf(want, sizeof want, "%s has 3 images but %s has 2 labels", ipath, lpath);
	is_int(rc, BRN_EFORMAT, "%s: count mismatch is a format error", kind);
	is_str(err, want, "%s: count mismatch message", kind);
	ok(s.images == NULL && s.labels == NULL, "%s: a failed load leaves the set empty", kind);
	ok(x == NULL && y == NULL, "%s: failed reads leave outputs alone", kind);
	rm(img);
	rm(lab);
}

static void test_missing(void)
{
	char want[1024];
	idx_set s;
	int rc = idx_load(&s, dir, "nosuch", err, sizeof err);
	snprintf(want, sizeof want, "cannot open %s/nosuch-images-idx3-ubyte.gz: No such file or directory",
		 dir);
	is_int(rc, BRN_EIO, "a missing file is an I/O error");
	is_str(err, want, "missing file message");
}

/* A header is a claim: 10^7 images of 1024 x 1024 in a file of 60 bytes
 * of pixels is truncation, found without asking for 10^13 bytes first. */
static void test_huge_claims(int gz)
{
	char want[1024];
	const char *kind = gz ? "gzip" : "plain";
	const uint32_t huge[3] = {10000000, 1024, 1024};
	uint32_t many = 10000000;
	float *x = NULL;
	int32_t *y = NULL;
	int n, rows, cols;
	write_idx("huge", gz, 0x803, huge, 3, pixels, 60);
	int rc = idx_read_images(at("huge"), &x, &n, &rows, &cols, err, sizeof err);
	snprintf(want, sizeof want, "%s: truncated: expected 10485760000000 bytes of image data, got 60",
		 at("huge"));
	is_int(rc, BRN_EFORMAT, "%s: a header claiming 10^13 bytes over 60 is a format error", kind);
	is_str(err, want, "%s: truncated, not out of memory", kind);
	write_idx("huge", gz, 0x801, &many, 1, labels, 3);
	rc = idx_read_labels(at("huge"), &y, &n, err, sizeof err);
	snprintf(want, sizeof want, "%s: truncated: expected 10000000 bytes of label data, got 3", at("huge"));
	is_str(err, want, "%s: labels claiming 10^7 bytes over 3", kind);
	ok(!x && !y, "%s: nothing returned", kind);
	rm("huge");
}

static void test_directory(void)
{
	char want[1024];
	float *x = NULL;
	int n, rows, cols;
	int rc = idx_read_images(dir, &x, &n, &rows, &cols, err, sizeof err);
	snprintf(want, sizeof want, "%s: is a directory", dir);
	is_int(rc, BRN_EIO, "a directory is an I/O error");
	is_str(err, want, "a directory: its message");
}

/* A gzip stream cut short: zlib reports a premature end, read as truncation. */
static void test_cut_gzip(void)
{
	unsigned char noise[60], buf[4096];
	float *x;
	int n, r, c, rc;
	FILE *f;
	size_t len;

	for (int i = 0; i < 60; i++)
		noise[i] = (unsigned char)(i * 97 + 13);
	write_idx("cut.gz", 1, 0x803, dims345, 3, noise, 60);
	f = fopen(at("cut.gz"), "rb");
	len = f ? fread(buf, 1, sizeof buf, f) : 0;
	if (f)
		fclose(f);
	f = fopen(at("cut.gz"), "wb");
	if (f) {
		fwrite(buf, 1, len - 20, f);
		fclose(f);
	}
	rc = idx_read_images(at("cut.gz"), &x, &n, &r, &c, err, sizeof err);
	is_int(rc, BRN_EFORMAT, "a cut gzip stream is a format error");
	ok(strstr(err, "truncated") != NULL, "a cut gzip stream reads as truncated: %s", err);
	rm("cut.gz");
}

static void test_data_dir(void)
{
	unsetenv("BRN_DATA");
	is_str(idx_data_dir(NULL), IDX_DEFAULT_DIR, "default data directory");
	setenv("BRN_DATA", "/from/env", 1);
	is_str(idx_data_dir(NULL), "/from/env", "BRN_DATA overrides the default");
	is_str(idx_data_dir("/from/flag"), "/from/flag", "--data overrides BRN_DATA");
	setenv("BRN_DATA", "", 1);
	is_str(idx_data_dir(NULL), IDX_DEFAULT_DIR, "an empty BRN_DATA is ignored");
	unsetenv("BRN_DATA");
}

static void test_debian(void)
{
	idx_set train, test;
	int bad = 0;
	if (access(IDX_DEFAULT_DIR "/train-images-idx3-ubyte.gz", R_OK) != 0) {
		ok(1, "Debian Fashion-MNIST # SKIP dataset-fashion-mnist not installed");
		return;
	}
	is_int(idx_load(&train, IDX_DEFAULT_DIR, "train", err, sizeof err), BRN_OK,
	       "Debian training set loads");
	is_int(idx_load(&test, IDX_DEFAULT_DIR, "t10k", err, sizeof err), BRN_OK,
	       "Debian test set loads");
	is_int(train.n, 60000, "60000 training examples");
	is_int(test.n, 10000, "10000 test examples");
	ok(train.rows == 28 && train.cols == 28 && test.rows == 28 && test.cols == 28,
	   "28 x 28 images");
	for (int i = 0; i < train.n; i++)
		bad += train.labels[i] < 0 || train.labels[i] > 9;
	for (int i = 0; i < test.n; i++)
		bad += test.labels[i] < 0 || test.labels[i] > 9;
	is_int(bad, 0, "labels in 0..9");
	idx_free(&train);
	idx_free(&test);
}

int main(void)
{
	const char *tmp = getenv("TMPDIR");
	snprintf(dir, sizeof dir, "%s/t_ex_idx.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	for (int i = 0; i < 60; i++)
		pixels[i] = (unsigned char)(i * 51 % 256);
	pixels[59] = 255;

	test_good(1);
	rm("train-images-idx3-ubyte.gz");
	rm("train-labels-idx1-ubyte.gz");
	test_good(0);
	rm("train-images-idx3-ubyte");
	rm("train-labels-idx1-ubyte");
	test_errors(1);
	test_errors(0);
	test_missing();
	test_huge_claims(0);
	test_huge_claims(1);
	test_directory();
	test_cut_gzip();
	test_data_dir();
	test_debian();
	rmdir(dir);
	return done_testing();
}
