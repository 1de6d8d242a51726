/* libbrnrt weights I/O: safetensors files of float32 tensors. Load checks
 * the whole header against the model's specs and reads the tensors into
 * scratch memory before it touches the caller's buffers; save writes a
 * temporary file, syncs it and renames it over the old one. */
#include "brnrt_st.h"
#include "brnrt_fs.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define ST_MAX_HEADER 100000000 /* as the reference reader: 100 MB */
#define ST_MAX_DIMS 8
#define ST_MAX_INT 9007199254740992.0 /* 2^53: larger JSON numbers are inexact */

/* A tensor as the file's header describes it. */
struct ftensor {
	const char *name;
	int ndim;
	int64_t shape[ST_MAX_DIMS];
	int64_t begin, end;  /* byte offsets into the data buffer */
	int spec;            /* index into specs, or -1 when skipped */
};

static void format_shape(char *out, size_t size, const int64_t *shape, int ndim)
{
	size_t len = 0;

	len += (size_t)snprintf(out, size, "[");
	for (int i = 0; i < ndim && len < size; i++)
		len += (size_t)snprintf(out + len, size - len, "%s%lld", i ? ", " : "",
		                        (long long)shape[i]);
	if (len < size)
		snprintf(out + len, size - len, "]");
}

/* Bytes of a float32 tensor of this shape, or -1 when it does not fit. */
static int64_t shape_bytes(const int64_t *shape, int ndim)
{
	int64_t count = 1;

	for (int i = 0; i < ndim; i++)
		if (shape[i] == 0)
			return 0;
	for (int i = 0; i < ndim; i++) {
		if (shape[i] < 0 || count > INT64_MAX / 4 / shape[i])
			return -1;
		count *= shape[i];
	}
	return count * 4;
}

static int ends_with(const char *s, const char *suffix)
{
	size_t ls = strlen(s), lx = strlen(suffix);
	return lx <= ls && memcmp(s + ls - lx, suffix, lx) == 0;
}

/* Shared argument checks for load and save. */
static int check_specs(const brnrt_st_tensor *specs, int n, const char *who,
                       brnrt_error *e)
{
	if (n < 0 || (n > 0 && !specs))
		return brnrt_errorf(e, BRN_EARG, "%s: no specs (n = %d)", who, n);
	for (int i = 0; i < n; i++) {
		const brnrt_st_tensor *t = &specs[i];
		if (!t->name)
			return brnrt_errorf(e, BRN_EARG, "%s: spec %d has no name", who, i);
		if (t->ndim < 1 || t->ndim > 4)
			return brnrt_errorf(e, BRN_EARG, "%s: tensor '%s' has %d dimensions (1..4)",
			                    who, t->name, t->ndim);
		int64_t bytes = shape_bytes(t->shape, t->ndim);
		if (bytes < 0)
			return brnrt_errorf(e, BRN_EARG, "%s: tensor '%s' has a bad shape", who,
			                    t->name);
		if (bytes > 0 && !t->data)
			return brnrt_errorf(e, BRN_EARG, "%s: tensor '%s' has no data", who, t->name);
		if (strcmp(t->name, "__metadata__") == 0)
			return brnrt_errorf(e, BRN_EARG, "%s: '__metadata__' is not a tensor name", who);
		for (int j = 0; j < i; j++)
			if (strcmp(specs[j].name, t->name) == 0)
				return brnrt_errorf(e, BRN_EARG, "%s: tensor '%s' appears twice", who,
				                    t->name);
	}
	return BRN_OK;
}

/* --- load ------------------------------------------------------------------ */

/* Reads len bytes at off. Returns 0, an errno, or -1 at end of file. */
static int read_at(int fd, int64_t off, void *buf, size_t len)
{
	char *p = buf;

	while (len > 0) {
		ssize_t got = pread(fd, p, len, (off_t)off);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0)
			return errno;
		if (got == 0)
			return -1;
		p += got;
		off += got;
		len -= (size_t)got;
	}
	return 0;
}

static int read_error(const char *path, int err, brnrt_error *e)
{
	if (err < 0)
		return brnrt_errorf(e, BRN_EFORMAT, "%s: file ended early (truncated?)", path);
	return brnrt_errorf(e, BRN_EIO, "%s: cannot read: %s", path, strerror(err));
}

/* A JSON number that is an exact integer in [0, 2^53]. */
static int get_count(const cJSON *item, int64_t *out)
{
	if (!cJSON_IsNumber(item))
		return 0;
	double v = item->valuedouble;
	if (!(v >= 0 && v <= ST_MAX_INT) || (double)(int64_t)v != v)
		return 0;
	*out = (int64_t)v;
	return 1;
}

static int parse_step(const char *path, const cJSON *meta, int64_t *step, brnrt_error *e)
{
	const cJSON *s;
	char *end;
	long long v;

	if (!cJSON_IsObject(meta))
		return brnrt_errorf(e, BRN_EFORMAT, "%s: __metadata__ is not a JSON object", path);
	s = cJSON_GetObjectItemCaseSensitive(meta, "step");
	if (!s)
		return BRN_OK;
	if (!cJSON_IsString(s))
		return brnrt_errorf(e, BRN_EFORMAT, "%s: __metadata__ step is not a string", path);
	/* strtoll alone would take " -5" and "+5": only what save writes is a step */
	const char *digits = s->valuestring + (s->valuestring[0] == '-');
	errno = 0;
	v = strtoll(s->valuestring, &end, 10);
	if (*digits < '0' || *digits > '9' || errno || *end)
		return brnrt_errorf(e, BRN_EFORMAT, "%s: __metadata__ step '%s' is not an integer%s",
		                    path, s->valuestring, errno == ERANGE ? " of 64 bits" : "");
	*step = v;
	return BRN_OK;
}

/* Fills t from one header entry and checks it against the data size. */
static int parse_tensor(const char *path, const cJSON *item, int64_t data_size,
                        struct ftensor *t, brnrt_error *e)
{
	const char *name = item->string;
	const cJSON *dtype, *shape, *offs, *x;
	char buf[256];

	if (!cJSON_IsObject(item))
		return brnrt_errorf(e, BRN_EFORMAT, "%s: tensor '%s' is not a JSON object", path, name);
	dtype = cJSON_GetObjectItemCaseSensitive(item, "dtype");
	if (!cJSON_IsString(dtype))
		return brnrt_errorf(e, BRN_EFORMAT, "%s: tensor '%s' has no dtype", path, name);
	if (strcmp(dtype->valuestring, "F32") != 0)
		return brnrt_errorf(e, BRN_EMISMATCH,
		                    "%s: tensor '%s' has dtype %s; only F32 is supported", path,
		                    name, dtype->valuestring);

	shape = cJSON_GetObjectItemCaseSensitive(item, "shape");
	t->ndim = 0;
	if (!cJSON_IsArray(shape) || cJSON_GetArraySize(shape) > ST_MAX_DIMS)
		goto bad_shape;
	cJSON_ArrayForEach(x, shape) {
		if (!get_count(x, &t->shape[t->ndim++]))
			goto bad_shape;
	}

	offs = cJSON_GetObjectItemCaseSensitive(item, "data_offsets");
	if (!cJSON_IsArray(offs) || cJSON_GetArraySize(offs) != 2 ||
	    !get_count(cJSON_GetArrayItem(offs, 0), &t->begin) ||
	    !get_count(cJSON_GetArrayItem(offs, 1), &t->end) || t->begin > t->end)
		return brnrt_errorf(e, BRN_EFORMAT,
		                    "%s: tensor '%s' has no valid data_offsets (two integers, "
		                    "begin <= end)", path, name);
	if (t->end > data_size)
		return brnrt_errorf(e, BRN_EFORMAT,
		                    "%s: tensor '%s' has data_offsets [%lld, %lld] past the end of "
		                    "the data (%lld bytes; truncated file?)", path, name,
		                    (long long)t->begin, (long long)t->end, (long long)data_size);
	int64_t need = shape_bytes(t->shape, t->ndim);
	if (need != t->end - t->begin) {
		format_shape(buf, sizeof buf, t->shape, t->ndim);
		return brnrt_errorf(e, BRN_EFORMAT,
		                    "%s: tensor '%s' has data_offsets [%lld, %lld] (%lld bytes) "
		                    "but shape %s needs %lld bytes", path, name,
		                    (long long)t->begin, (long long)t->end,
		                    (long long)(t->end - t->begin), buf, (long long)need);
	}
	t->name = name;
	return BRN_OK;

bad_shape:
	return brnrt_errorf(e, BRN_EFORMAT,
	                    "%s: tensor '%s' has no valid shape (up to %d non-negative integers)",
	                    path, name, ST_MAX_DIMS);
}

/* --- mismatches: every one reported at once --------------------------------- */

/* The differences between a file and the model: one is reported in its
 * own words, several as a list (as many as fit, then a count). */
typedef struct mismatches {
	int count;
	char first[1024]; /* the message when there is one */
	char list[800];
	size_t used;
	int cut;
} mismatches;

#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static void mismatch(mismatches *m, const char *single, const char *fmt, ...)
{
	char item[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(item, sizeof item, fmt, ap);
	va_end(ap);
	if (m->count++ == 0)
		snprintf(m->first, sizeof m->first, "%s", single);
	size_t len = strlen(item) + (m->used ? 2 : 0);
	if (m->cut || m->used + len >= sizeof m->list) {
		m->cut++;
		return;
	}
	snprintf(m->list + m->used, sizeof m->list - m->used, "%s%s", m->used ? "; " : "", item);
	m->used += len;
}

/* Levenshtein distance of a and b, or limit + 1 once it must exceed limit. */
static size_t edit_distance(const char *a, const char *b, size_t limit)
{
	size_t la = strlen(a), lb = strlen(b);
	if ((la > lb ? la - lb : lb - la) > limit || lb > 1024)
		return limit + 1;
	size_t row[1025];
	for (size_t j = 0; j <= lb; j++)
		row[j] = j;
	for (size_t i = 1; i <= la; i++) {
		size_t diag = row[0], best = row[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t up = row[j], v = diag + (a[i - 1] != b[j - 1]);
			v = up + 1 < v ? up + 1 : v;
			v = row[j - 1] + 1 < v ? row[j - 1] + 1 : v;
			diag = up;
			row[j] = v;
			best = v < best ? v : best;
		}
		if (best > limit)
			return limit + 1;
	}
	return row[lb];
}

/* The model's tensor the file's name most likely meant: the nearest name
 * the file lacks, within a few edits (a third of the name); NULL if none. */
static const char *near_name(const char *name, const brnrt_st_tensor *specs, int n,
                             const unsigned char *seen)
{
	size_t limit = strlen(name) / 3 > 1 ? strlen(name) / 3 : 1, best = limit + 1;
	const char *pick = NULL;
	for (int i = 0, tried = 0; i < n && tried < 4096; i++) {
		if (seen[i])
			continue;
		tried++;
		size_t d = edit_distance(name, specs[i].name, best - 1 < limit ? best - 1 : limit);
		if (d < best)
			best = d, pick = specs[i].name;
	}
	return pick;
}

/* Matches t to a spec: it must exist (unless ignored), once, same shape.
 * A name or shape the model does not have is noted in m (t->spec -1);
 * only a tensor given twice is an error at once. */
static int match_spec(const char *path, struct ftensor *t, const brnrt_st_tensor *specs,
                      int n, const char *ignore_suffix, const unsigned char *seen,
                      mismatches *m, brnrt_error *e)
{
	char fbuf[256], mbuf[256], single[1024];

	t->spec = -1;
	if (ignore_suffix && *ignore_suffix && ends_with(t->name, ignore_suffix))
		return BRN_OK;
	for (int i = 0; i < n; i++)
		if (strcmp(specs[i].name, t->name) == 0)
			t->spec = i;
	if (t->spec < 0)
		return BRN_OK; /* after the whole header: near_name needs to know what is missing */
	if (seen[t->spec])
		return brnrt_errorf(e, BRN_EFORMAT, "%s: tensor '%s' appears twice", path, t->name);

	const brnrt_st_tensor *s = &specs[t->spec];
	int same = s->ndim == t->ndim;
	for (int i = 0; same && i < t->ndim; i++)
		same = s->shape[i] == t->shape[i];
	if (!same) {
		format_shape(fbuf, sizeof fbuf, t->shape, t->ndim);
		format_shape(mbuf, sizeof mbuf, s->shape, s->ndim);
		snprintf(single, sizeof single, "%s: tensor '%s' has shape %s in the file but the model expects %s",
		         path, t->name, fbuf, mbuf);
		mismatch(m, single, "'%s' is %s in the file, %s in the model", t->name, fbuf, mbuf);
		t->spec = -1;
		return BRN_OK;
	}
	return BRN_OK;
}

static int by_begin(const void *a, const void *b)
{
	const struct ftensor *x = a, *y = b;
	return (x->begin > y->begin) - (x->begin < y->begin);
}

/* Sorts ts by offset and rejects two non-empty tensors sharing bytes. */
static int check_overlap(const char *path, struct ftensor *ts, int count, brnrt_error *e)
{
	const struct ftensor *prev = NULL;

	qsort(ts, (size_t)count, sizeof *ts, by_begin);
	for (int i = 0; i < count; i++) {
		if (ts[i].begin == ts[i].end)
			continue;
		if (prev && ts[i].begin < prev->end)
			return brnrt_errorf(e, BRN_EFORMAT, "%s: tensors '%s' and '%s' overlap in the data",
			                    path, prev->name, ts[i].name);
		if (!prev || ts[i].end > prev->end)
			prev = &ts[i];
	}
	return BRN_OK;
}

/* Checks the parsed header against the specs; fills ts (one per tensor)
 * and *step. Writes nothing else. */
static int check_header(const char *path, const cJSON *root, int64_t data_size,
                        const brnrt_st_tensor *specs, int n, const char *ignore_suffix,
                        struct ftensor *ts, int *count, unsigned char *seen,
                        int64_t *step, brnrt_error *e)
{
	const cJSON *item;
	char buf[256], single[1024];
	mismatches m = {0};
	int rc, shape_wrong = 0;

	*count = 0;
	cJSON_ArrayForEach(item, root) {
		if (strcmp(item->string, "__metadata__") == 0) {
			if ((rc = parse_step(path, item, step, e)) != BRN_OK)
				return rc;
			continue;
		}
		struct ftensor *t = &ts[*count];
		if ((rc = parse_tensor(path, item, data_size, t, e)) != BRN_OK)
			return rc;
		int before = m.count;
		if ((rc = match_spec(path, t, specs, n, ignore_suffix, seen, &m, e)) != BRN_OK)
			return rc;
		if (t->spec >= 0)
			seen[t->spec] = 1;
		else if (m.count > before) { /* in the model, another shape: not missing too */
			for (int i = 0; i < n; i++)
				if (strcmp(specs[i].name, t->name) == 0)
					seen[i] = 2;
			shape_wrong++;
		}
		(*count)++;
	}
	/* names the model does not have, each with the nearest one it lacks */
	for (int i = 0; i < *count; i++) {
		const char *name = ts[i].name, *near;
		if (ts[i].spec >= 0 || (ignore_suffix && *ignore_suffix && ends_with(name, ignore_suffix)))
			continue;
		int in_model = 0;
		for (int k = 0; k < n && shape_wrong && !in_model; k++)
			in_model = strcmp(specs[k].name, name) == 0;
		if (in_model)
			continue;
		near = near_name(name, specs, n, seen);
		snprintf(single, sizeof single, "%s has tensor '%s' that the model does not have%s%s%s", path, name,
		         near ? " (did you mean '" : "", near ? near : "", near ? "'?)" : "");
		mismatch(&m, single, "'%s' is not in the model%s%s%s", name, near ? " (did you mean '" : "",
		         near ? near : "", near ? "'?)" : "");
	}
	for (int i = 0; i < n; i++) {
		if (seen[i] || specs[i].optional)
			continue;
		format_shape(buf, sizeof buf, specs[i].shape, specs[i].ndim);
		snprintf(single, sizeof single, "%s has no tensor '%s' (the model needs %s)", path, specs[i].name, buf);
		mismatch(&m, single, "'%s' %s is missing", specs[i].name, buf);
	}
	if (m.count == 1)
		return brnrt_errorf(e, BRN_EMISMATCH, "%s", m.first);
	if (m.count > 1)
		return brnrt_errorf(e, BRN_EMISMATCH, "%s does not match the model in %d ways: %s%s", path, m.count,
		                    m.list, m.cut ? "; ..." : "");
	if ((rc = check_overlap(path, ts, *count, e)) != BRN_OK)
		return rc;
	/* bytes that no tensor owns are damage, or a second file appended */
	int64_t data_end = 0;
	for (int i = 0; i < *count; i++)
		data_end = ts[i].end > data_end ? ts[i].end : data_end;
	if (data_end != data_size)
		return brnrt_errorf(e, BRN_EFORMAT,
		                    "%s: %lld bytes after the last tensor's data (the tensors end "
		                    "at byte %lld of %lld)", path, (long long)(data_size - data_end),
		                    (long long)data_end, (long long)data_size);
	return BRN_OK;
}

/* Reads the matched tensors into one scratch block, then decodes them into
 * the specs; the specs are untouched if any read fails. */
static int read_tensors(const char *path, int fd, int64_t data_start,
                        const struct ftensor *ts, int count,
                        brnrt_st_tensor *specs, brnrt_error *e)
{
	size_t total = 0, at = 0;
	unsigned char *scratch;
	int err;

	for (int i = 0; i < count; i++)
		if (ts[i].spec >= 0)
			total += (size_t)(ts[i].end - ts[i].begin);
	scratch = malloc(total ? total : 1);
	if (!scratch)
		return brnrt_errorf(e, BRN_ENOMEM, "%s: out of memory for %zu bytes of tensors",
		                    path, total);
	for (int i = 0; i < count; i++) {
		size_t len = (size_t)(ts[i].end - ts[i].begin);
		if (ts[i].spec < 0 || len == 0)
			continue;
		if ((err = read_at(fd, data_start + ts[i].begin, scratch + at, len)) != 0) {
			free(scratch);
			return read_error(path, err, e);
		}
		at += len;
	}
	/* decode in place, and refuse a NaN or an infinity before any is copied */
	at = 0;
	for (int i = 0; i < count; i++) {
		size_t len = (size_t)(ts[i].end - ts[i].begin);
		if (ts[i].spec < 0)
			continue;
		for (size_t k = 0; k < len / 4; k++) {
			unsigned char *b = scratch + at + 4 * k;
			uint32_t u = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 |
			             (uint32_t)b[3] << 24;
			float v;
			memcpy(&v, &u, 4);
			memcpy(b, &v, 4);
			if (!isfinite(v)) {
				free(scratch);
				return brnrt_errorf(e, BRN_EFORMAT,
				                    "%s: tensor '%s' is %s at index %zu; expected finite values",
				                    path, ts[i].name, isnan(v) ? "nan" : v > 0 ? "inf" : "-inf", k);
			}
		}
		at += len;
	}
	at = 0;
	for (int i = 0; i < count; i++) {
		size_t len = (size_t)(ts[i].end - ts[i].begin);
		if (ts[i].spec < 0)
			continue;
		memcpy(specs[ts[i].spec].data, scratch + at, len);
		at += len;
	}
	free(scratch);
	return BRN_OK;
}

int brnrt_st_load(const char *path, brnrt_st_tensor *specs, int n,
                  const char *ignore_suffix, int64_t *step, brnrt_error *e)
{
	unsigned char lenbuf[8];
	char *header = NULL;
	cJSON *root = NULL;
	struct ftensor *ts = NULL;
	unsigned char *seen = NULL;
	const char *end = NULL;
	struct stat st;
	uint64_t hlen = 0;
	int64_t file_step = 0;
	int fd, rc, err, count;

	if (!path)
		return brnrt_errorf(e, BRN_EARG, "brnrt_st_load: path is NULL");
	if ((rc = check_specs(specs, n, "brnrt_st_load", e)) != BRN_OK)
		return rc;
	/* O_NONBLOCK: opening a FIFO would wait for a writer; it is refused below */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return brnrt_errorf(e, BRN_EIO, "%s: cannot open: %s", path, strerror(errno));
	if (fstat(fd, &st) != 0) {
		rc = brnrt_errorf(e, BRN_EIO, "%s: cannot stat: %s", path, strerror(errno));
		goto done;
	}
	if (S_ISDIR(st.st_mode)) {
		rc = brnrt_errorf(e, BRN_EIO, "%s: is a directory", path);
		goto done;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = brnrt_errorf(e, BRN_EIO, "%s: is not a regular file (a FIFO, socket or device)", path);
		goto done;
	}
	if (st.st_size < 8) {
		rc = brnrt_errorf(e, BRN_EFORMAT,
		                  "%s: file is %lld bytes, too short for a safetensors header",
		                  path, (long long)st.st_size);
		goto done;
	}
	if ((err = read_at(fd, 0, lenbuf, 8)) != 0) {
		rc = read_error(path, err, e);
		goto done;
	}
	for (int i = 7; i >= 0; i--)
		hlen = hlen << 8 | lenbuf[i];
	if (hlen > ST_MAX_HEADER) {
		rc = brnrt_errorf(e, BRN_EFORMAT, "%s: header length %llu is absurd (more than %d bytes)",
		                  path, (unsigned long long)hlen, ST_MAX_HEADER);
		goto done;
	}
	if ((int64_t)hlen > st.st_size - 8) {
		rc = brnrt_errorf(e, BRN_EFORMAT,
		                  "%s: header length %llu is larger than the file (%lld bytes)",
		                  path, (unsigned long long)hlen, (long long)st.st_size);
		goto done;
	}
	if (!(header = malloc(hlen + 1))) {
		rc = brnrt_errorf(e, BRN_ENOMEM, "%s: out of memory for the header", path);
		goto done;
	}
	if ((err = read_at(fd, 8, header, hlen)) != 0) {
		rc = read_error(path, err, e);
		goto done;
	}
	header[hlen] = '\0';

	root = cJSON_ParseWithLengthOpts(header, hlen, &end, 0);
	if (!root) {
		rc = brnrt_errorf(e, BRN_EFORMAT, "%s: header is not valid JSON (at byte %lld of %llu)",
		                  path, end ? (long long)(end - header) : 0LL,
		                  (unsigned long long)hlen);
		goto done;
	}
	/* The format pads the header with spaces; anything else is damage. */
	for (; end < header + hlen; end++) {
		if (*end != ' ' && *end != '\t' && *end != '\n' && *end != '\r') {
			rc = brnrt_errorf(e, BRN_EFORMAT, "%s: header has bytes after its JSON (at byte %lld)",
			                  path, (long long)(end - header));
			goto done;
		}
	}
	if (!cJSON_IsObject(root)) {
		rc = brnrt_errorf(e, BRN_EFORMAT, "%s: header is not a JSON object", path);
		goto done;
	}

	int entries = cJSON_GetArraySize(root);
	ts = malloc(sizeof *ts * (size_t)(entries ? entries : 1));
	seen = calloc((size_t)(n ? n : 1), 1);
	if (!ts || !seen) {
		rc = brnrt_errorf(e, BRN_ENOMEM, "%s: out of memory for the header", path);
		goto done;
	}
	rc = check_header(path, root, st.st_size - 8 - (int64_t)hlen, specs, n, ignore_suffix,
	                  ts, &count, seen, &file_step, e);
	if (rc == BRN_OK)
		rc = read_tensors(path, fd, 8 + (int64_t)hlen, ts, count, specs, e);
	if (rc == BRN_OK && step)
		*step = file_step;
done:
	free(seen);
	free(ts);
	cJSON_Delete(root);
	free(header);
	close(fd);
	return rc;
}

/* --- save ------------------------------------------------------------------ */

/* A growing string; oom sticks once an allocation fails. */
struct sbuf {
	char *p;
	size_t len, cap;
	int oom;
};

static void sb_add(struct sbuf *b, const char *s, size_t len)
{
	if (b->oom)
		return;
	if (b->len + len + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		while (cap < b->len + len + 1)
			cap *= 2;
		char *p = realloc(b->p, cap);
		if (!p) {
			b->oom = 1;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, len);
	b->len += len;
	b->p[b->len] = '\0';
}

static void sb_puts(struct sbuf *b, const char *s)
{
	sb_add(b, s, strlen(s));
}

static void sb_printf(struct sbuf *b, const char *fmt, ...)
#if defined(__GNUC__)
	__attribute__((format(printf, 2, 3)))
#endif
	;

static void sb_printf(struct sbuf *b, const char *fmt, ...)
{
	char buf[128];
	va_list ap;

	va_start(ap, fmt);
	int len = vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	if (len < 0 || (size_t)len >= sizeof buf)
		b->oom = 1; /* only short numeric fields go through here */
	else
		sb_add(b, buf, (size_t)len);
}

/* A JSON string literal. */
static void sb_quote(struct sbuf *b, const char *s)
{
	sb_puts(b, "\"");
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			sb_printf(b, "\\%c", c);
		else if (c < 0x20)
			sb_printf(b, "\\u%04x", c);
		else
			sb_add(b, s, 1);
	}
	sb_puts(b, "\"");
}

/* The JSON header, padded with spaces so the data starts 8-aligned. */
static int build_header(struct sbuf *b, const brnrt_st_tensor *specs, int n, int64_t step)
{
	int64_t at = 0;

	sb_printf(b, "{\"__metadata__\":{\"step\":\"%lld\"}", (long long)step);
	for (int i = 0; i < n; i++) {
		const brnrt_st_tensor *t = &specs[i];
		int64_t bytes = shape_bytes(t->shape, t->ndim);
		sb_add(b, ",", 1);
		sb_quote(b, t->name);
		sb_puts(b, ":{\"dtype\":\"F32\",\"shape\":[");
		for (int d = 0; d < t->ndim; d++)
			sb_printf(b, "%s%lld", d ? "," : "", (long long)t->shape[d]);
		sb_printf(b, "],\"data_offsets\":[%lld,%lld]}", (long long)at,
		          (long long)(at + bytes));
		at += bytes;
	}
	sb_add(b, "}", 1);
	while (!b->oom && (8 + b->len) % 8 != 0)
		sb_add(b, " ", 1);
	return b->oom ? BRN_ENOMEM : BRN_OK;
}

static int write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t put = write(fd, p, len);
		if (put < 0 && errno == EINTR)
			continue;
		if (put < 0)
			return errno;
		p += put;
		len -= (size_t)put;
	}
	return 0;
}

/* Length, header and the tensors as little-endian floats. */
static int write_file(int fd, const struct sbuf *h, const brnrt_st_tensor *specs, int n)
{
	unsigned char buf[4096];
	uint64_t hlen = h->len;
	int err;

	for (int i = 0; i < 8; i++)
		buf[i] = (unsigned char)(hlen >> (8 * i));
	if ((err = write_all(fd, buf, 8)) != 0 || (err = write_all(fd, h->p, h->len)) != 0)
		return err;
	for (int i = 0; i < n; i++) {
		size_t count = (size_t)(shape_bytes(specs[i].shape, specs[i].ndim) / 4), used = 0;
		for (size_t k = 0; k < count; k++) {
			uint32_t u;
			memcpy(&u, &specs[i].data[k], 4);
			for (int j = 0; j < 4; j++)
				buf[used++] = (unsigned char)(u >> (8 * j));
			if (used == sizeof buf || k + 1 == count) {
				if ((err = write_all(fd, buf, used)) != 0)
					return err;
				used = 0;
			}
		}
	}
	return 0;
}

/* Makes the rename durable; a failure here loses nothing already written. */
static void sync_dir(const char *path)
{
	const char *slash = strrchr(path, '/');
	char *dir;
	int fd;

	if (!slash)
		dir = strdup(".");
	else if (slash == path)
		dir = strdup("/");
	else
		dir = strndup(path, (size_t)(slash - path));
	if (!dir)
		return;
	fd = open(dir, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		fsync(fd);
		close(fd);
	}
	free(dir);
}

/* The temp name is unique per process, not per call: two threads saving to
 * one path (separate models may run in separate threads) would truncate and
 * rename each other's temp file, so a process writes one temp file at a time. */
static pthread_mutex_t save_lock = PTHREAD_MUTEX_INITIALIZER;

int brnrt_st_save(const char *path, const brnrt_st_tensor *specs, int n,
                  int64_t step, brnrt_error *e)
{
	struct sbuf h = {0};
	char *tmp = NULL;
	int fd = -1, rc, err, locked = 0;

	if (!path)
		return brnrt_errorf(e, BRN_EARG, "brnrt_st_save: path is NULL");
	if ((rc = check_specs(specs, n, "brnrt_st_save", e)) != BRN_OK)
		return rc;
	size_t tmplen = strlen(path) + 32;
	if (build_header(&h, specs, n, step) != BRN_OK || !(tmp = malloc(tmplen))) {
		rc = brnrt_errorf(e, BRN_ENOMEM, "%s: out of memory for the header", path);
		goto done;
	}
	snprintf(tmp, tmplen, "%s.tmp-%ld", path, (long)getpid());

	locked = pthread_mutex_lock(&save_lock) == 0;
	brnrt_fs_remove_stale_temps(path, ".tmp-");
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
	if (fd < 0) {
		rc = brnrt_errorf(e, BRN_EIO, "%s: cannot create %s: %s", path, tmp, strerror(errno));
		goto done;
	}
	err = write_file(fd, &h, specs, n);
	if (!err && fsync(fd) != 0)
		err = errno;
	if (err) {
		rc = brnrt_errorf(e, BRN_EIO, "%s: cannot write %s: %s", path, tmp, strerror(err));
		goto fail;
	}
	err = close(fd) != 0 ? errno : 0;
	fd = -1;
	if (err) {
		rc = brnrt_errorf(e, BRN_EIO, "%s: cannot write %s: %s", path, tmp, strerror(err));
		goto fail;
	}
	if (rename(tmp, path) != 0) {
		rc = brnrt_errorf(e, BRN_EIO, "%s: cannot rename %s over it: %s", path, tmp,
		                  strerror(errno));
		goto fail;
	}
	sync_dir(path);
	rc = BRN_OK;
	goto done;
fail:
	if (fd >= 0)
		close(fd);
	unlink(tmp);
done:
	if (locked)
		pthread_mutex_unlock(&save_lock);
	free(tmp);
	free(h.p);
	return rc;
}
