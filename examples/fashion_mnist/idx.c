/* idx: IDX file reader. zlib's gzread reads gzipped and plain files alike,
 * so one path handles both. The format: a big-endian magic (0x0000 0803 for
 * 3-d unsigned bytes, 0x0000 0801 for 1-d), one big-endian uint32 per
 * dimension, then the bytes. */
#include "idx.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "brnrt.h"
#include "errbuf.h"

#define IMAGES_MAGIC 0x00000803u
#define LABELS_MAGIC 0x00000801u
#define MAX_EXAMPLES 10000000u
#define MAX_SIDE 1024u

const char *idx_data_dir(const char *flag)
{
	const char *env = getenv("BRN_DATA");
	if (flag)
		return flag;
	if (env && *env)
		return env;
	return IDX_DEFAULT_DIR;
}

/* Reads up to len bytes; returns the count read, or -1 on a stream error
 * other than a premature end (which is a short count, reported by the
 * caller as truncation). */
static long read_full(gzFile f, unsigned char *buf, size_t len)
{
	size_t got = 0;
	while (got < len) {
		size_t want = len - got > (1u << 30) ? (1u << 30) : len - got;
		int r = gzread(f, buf + got, (unsigned)want);
		if (r < 0) {
			int zerr;
			gzerror(f, &zerr);
			return zerr == Z_BUF_ERROR ? (long)got : -1;
		}
		if (r == 0)
			break;
		got += (size_t)r;
	}
	return (long)got;
}

static uint32_t be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Opens path and reads its header of 1 + ndims words; checks the magic. */
static int open_header(const char *path, uint32_t magic, const char *what, int ndims,
		       gzFile *out, uint32_t *dims, char *err, size_t errlen)
{
	unsigned char hdr[16];
	size_t len = 4 + 4 * (size_t)ndims;
	gzFile f;
	long got;
	uint32_t m;

	struct stat st;
	if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
		return errbuf_fail(err, errlen, BRN_EIO, "%s: is a directory", path);
	errno = 0;
	f = gzopen(path, "rb");
	if (!f)
		return errbuf_fail(err, errlen, BRN_EIO, "cannot open %s: %s", path,
			    errno ? strerror(errno) : "out of memory");
	got = read_full(f, hdr, len);
	if (got < 0) {
		int zerr;
		errbuf_fail(err, errlen, BRN_EFORMAT, "%s: %s", path, gzerror(f, &zerr));
		gzclose(f);
		return BRN_EFORMAT;
	}
	if (got >= 4 && (m = be32(hdr)) != magic) {
		errbuf_fail(err, errlen, BRN_EFORMAT, "%s: bad magic 0x%08x (expected 0x%08x, an IDX %s file)",
		     path, (unsigned)m, (unsigned)magic, what);
		gzclose(f);
		return BRN_EFORMAT;
	}
	if ((size_t)got < len) {
		errbuf_fail(err, errlen, BRN_EFORMAT, "%s: truncated: expected a %zu-byte header, got %ld",
		     path, len, got);
		gzclose(f);
		return BRN_EFORMAT;
	}
	for (int i = 0; i < ndims; i++)
		dims[i] = be32(hdr + 4 + 4 * i);
	*out = f;
	return BRN_OK;
}

/* Reads len data bytes after the header, closing f in every case. The
 * header's len is only a claim (up to 10^13 bytes): the buffer grows with
 * the data that comes, so memory follows the file, not the header. */
static int read_body(gzFile f, const char *path, const char *what, size_t len,
		     unsigned char **out, char *err, size_t errlen)
{
	size_t cap = len < ((size_t)1 << 24) ? len : (size_t)1 << 24;
	unsigned char *buf = malloc(cap ? cap : 1);
	long got = 0, r;
	int zerr;

	if (!buf) {
		gzclose(f);
		return errbuf_fail(err, errlen, BRN_ENOMEM, "%s: out of memory for %zu bytes", path, cap);
	}
	while ((size_t)got < len) {
		if ((size_t)got == cap) {
			size_t more = cap > len - cap ? len : 2 * cap;
			unsigned char *p = realloc(buf, more);
			if (!p) {
				free(buf);
				gzclose(f);
				return errbuf_fail(err, errlen, BRN_ENOMEM, "%s: out of memory for %zu bytes",
					    path, more);
			}
			buf = p, cap = more;
		}
		if ((r = read_full(f, buf + got, cap - (size_t)got)) < 0) {
			got = -1;
			break;
		}
		got += r;
		if ((size_t)got < cap)
			break; /* the end of the stream */
	}
	if (got < 0 || (size_t)got < len) {
		if (got < 0)
			errbuf_fail(err, errlen, BRN_EFORMAT, "%s: %s", path, gzerror(f, &zerr));
		else
			errbuf_fail(err, errlen, BRN_EFORMAT,
			     "%s: truncated: expected %zu bytes of %s data, got %ld", path, len,
			     what, got);
		free(buf);
		gzclose(f);
		return BRN_EFORMAT;
	}
	gzclose(f);
	*out = buf;
	return BRN_OK;
}

int idx_read_images(const char *path, float **images, int *n, int *rows, int *cols,
		    char *err, size_t errlen)
{
	uint32_t d[3];
	unsigned char *bytes;
	gzFile f;
	size_t len;
	float *x;
	int rc;

	rc = open_header(path, IMAGES_MAGIC, "image", 3, &f, d, err, errlen);
	if (rc)
		return rc;
	if (d[0] < 1 || d[0] > MAX_EXAMPLES || d[1] < 1 || d[1] > MAX_SIDE || d[2] < 1 ||
	    d[2] > MAX_SIDE) {
		gzclose(f);
		return errbuf_fail(err, errlen, BRN_EFORMAT,
			    "%s: absurd dimensions %u x %u x %u (expected 1..%u images of 1..%u x 1..%u pixels)",
			    path, (unsigned)d[0], (unsigned)d[1], (unsigned)d[2], MAX_EXAMPLES,
			    MAX_SIDE, MAX_SIDE);
	}
	len = (size_t)d[0] * d[1] * d[2];
	rc = read_body(f, path, "image", len, &bytes, err, errlen);
	if (rc)
		return rc;
	x = malloc(len * sizeof *x);
	if (!x) {
		free(bytes);
		return errbuf_fail(err, errlen, BRN_ENOMEM, "%s: out of memory for %zu floats", path, len);
	}
	for (size_t i = 0; i < len; i++)
		x[i] = bytes[i] / 255.0f;
	free(bytes);
	*images = x;
	*n = (int)d[0];
	*rows = (int)d[1];
	*cols = (int)d[2];
	return BRN_OK;
}

int idx_read_labels(const char *path, int32_t **labels, int *n, char *err, size_t errlen)
{
	uint32_t d[1];
	unsigned char *bytes;
	int32_t *y;
	gzFile f;
	int rc;

	rc = open_header(path, LABELS_MAGIC, "label", 1, &f, d, err, errlen);
	if (rc)
		return rc;
	if (d[0] < 1 || d[0] > MAX_EXAMPLES) {
		gzclose(f);
		return errbuf_fail(err, errlen, BRN_EFORMAT, "%s: absurd count of %u labels (expected 1..%u)",
			    path, (unsigned)d[0], MAX_EXAMPLES);
	}
	rc = read_body(f, path, "label", d[0], &bytes, err, errlen);
	if (rc)
		return rc;
	for (uint32_t i = 0; i < d[0]; i++) {
		if (bytes[i] >= IDX_CLASSES) {
			errbuf_fail(err, errlen, BRN_EFORMAT, "%s: label %d of example %u is out of range 0..%d",
			     path, bytes[i], (unsigned)i, IDX_CLASSES - 1);
			free(bytes);
			return BRN_EFORMAT;
		}
	}
	y = malloc(d[0] * sizeof *y);
	if (!y) {
		free(bytes);
		return errbuf_fail(err, errlen, BRN_ENOMEM, "%s: out of memory", path);
	}
	for (uint32_t i = 0; i < d[0]; i++)
		y[i] = bytes[i];
	free(bytes);
	*labels = y;
	*n = (int)d[0];
	return BRN_OK;
}

/* dir/<split>-<kind>-idx<k>-ubyte.gz, or without .gz when only that exists. */
static void data_path(char *buf, size_t len, const char *dir, const char *split,
		      const char *kind)
{
	FILE *probe;
	snprintf(buf, len, "%s/%s-%s-ubyte.gz", dir, split, kind);
	if ((probe = fopen(buf, "rb")) != NULL) {
		fclose(probe);
		return;
	}
	snprintf(buf, len, "%s/%s-%s-ubyte", dir, split, kind);
	if ((probe = fopen(buf, "rb")) != NULL) {
		fclose(probe);
		return;
	}
	snprintf(buf, len, "%s/%s-%s-ubyte.gz", dir, split, kind); /* for the message */
}

void idx_paths(const char *dir, const char *split, char *images, char *labels, size_t len)
{
	data_path(images, len, dir, split, "images-idx3");
	data_path(labels, len, dir, split, "labels-idx1");
}

int idx_load(idx_set *s, const char *dir, const char *split, char *err, size_t errlen)
{
	char ipath[4096], lpath[4096];
	int nl, rc;

	memset(s, 0, sizeof *s);
	idx_paths(dir, split, ipath, lpath, sizeof ipath);
	rc = idx_read_images(ipath, &s->images, &s->n, &s->rows, &s->cols, err, errlen);
	if (rc)
		return rc;
	rc = idx_read_labels(lpath, &s->labels, &nl, err, errlen);
	if (rc == BRN_OK && nl != s->n)
		rc = errbuf_fail(err, errlen, BRN_EFORMAT, "%s has %d images but %s has %d labels", ipath,
			  s->n, lpath, nl);
	if (rc)
		idx_free(s);
	return rc;
}

void idx_free(idx_set *s)
{
	free(s->images);
	free(s->labels);
	memset(s, 0, sizeof *s);
}

int idx_count_correct(const float *scores, const int32_t *labels, int n, int classes)
{
	int correct = 0;
	for (int j = 0; j < n; j++) {
		const float *s = scores + (size_t)j * classes;
		int best = 0;
		for (int c = 1; c < classes; c++)
			if (s[c] > s[best])
				best = c;
		correct += best == labels[j];
	}
	return correct;
}
