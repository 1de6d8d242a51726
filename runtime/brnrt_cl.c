/* libbrnrt OpenCL half (brnrt_cl.h): one device, one context, one in-order
 * queue. Programs come through an on-disk binary cache whose entries carry a
 * checksum, so a torn or corrupt entry is rebuilt, never trusted. A brnrt_cl
 * is not thread-safe: use one per thread or lock around it. */
#include "brnrt_cl.h"
#include "brnrt_fs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#ifndef CL_PLATFORM_NOT_FOUND_KHR
#define CL_PLATFORM_NOT_FOUND_KHR -1001
#endif

#define MAX_PLATFORMS 16
#define MAX_DEVICES 64
#define PROF_KERNELS 128 /* distinct names; later ones share the last row */
#define PROF_PENDING 1024 /* events held before their times are read */
#define INSTALL_HINT "install an OpenCL driver (for a CPU: apt-get install pocl-opencl-icd)"

typedef struct prof_row {
	char name[64];
	long launches;
	double ns;
} prof_row;

struct brnrt_cl {
	brnrt_cl_device info;
	char platform_version[256];
	cl_device_id dev;
	cl_context ctx;
	cl_command_queue queue;
	int profile;
	int nrows, npending;
	prof_row rows[PROF_KERNELS];
	cl_event pending[PROF_PENDING];
	int pending_row[PROF_PENDING];
};

/* --- errors -------------------------------------------------------------- */

const char *brnrt_cl_strerror(cl_int err)
{
	switch (err) {
#define C(x) case x: return #x;
	C(CL_SUCCESS) C(CL_DEVICE_NOT_FOUND) C(CL_DEVICE_NOT_AVAILABLE)
	C(CL_COMPILER_NOT_AVAILABLE) C(CL_MEM_OBJECT_ALLOCATION_FAILURE)
	C(CL_OUT_OF_RESOURCES) C(CL_OUT_OF_HOST_MEMORY)
	C(CL_PROFILING_INFO_NOT_AVAILABLE) C(CL_MEM_COPY_OVERLAP)
	C(CL_IMAGE_FORMAT_MISMATCH) C(CL_IMAGE_FORMAT_NOT_SUPPORTED)
	C(CL_BUILD_PROGRAM_FAILURE) C(CL_MAP_FAILURE)
	C(CL_MISALIGNED_SUB_BUFFER_OFFSET)
	C(CL_EXEC_STATUS_ERROR_FOR_EVENTS_IN_WAIT_LIST)
	C(CL_COMPILE_PROGRAM_FAILURE) C(CL_LINKER_NOT_AVAILABLE)
	C(CL_LINK_PROGRAM_FAILURE) C(CL_DEVICE_PARTITION_FAILED)
	C(CL_KERNEL_ARG_INFO_NOT_AVAILABLE)
	C(CL_INVALID_VALUE) C(CL_INVALID_DEVICE_TYPE) C(CL_INVALID_PLATFORM)
	C(CL_INVALID_DEVICE) C(CL_INVALID_CONTEXT) C(CL_INVALID_QUEUE_PROPERTIES)
	C(CL_INVALID_COMMAND_QUEUE) C(CL_INVALID_HOST_PTR)
	C(CL_INVALID_MEM_OBJECT) C(CL_INVALID_IMAGE_FORMAT_DESCRIPTOR)
	C(CL_INVALID_IMAGE_SIZE) C(CL_INVALID_SAMPLER) C(CL_INVALID_BINARY)
	C(CL_INVALID_BUILD_OPTIONS) C(CL_INVALID_PROGRAM)
	C(CL_INVALID_PROGRAM_EXECUTABLE) C(CL_INVALID_KERNEL_NAME)
	C(CL_INVALID_KERNEL_DEFINITION) C(CL_INVALID_KERNEL)
	C(CL_INVALID_ARG_INDEX) C(CL_INVALID_ARG_VALUE) C(CL_INVALID_ARG_SIZE)
	C(CL_INVALID_KERNEL_ARGS) C(CL_INVALID_WORK_DIMENSION)
	C(CL_INVALID_WORK_GROUP_SIZE) C(CL_INVALID_WORK_ITEM_SIZE)
	C(CL_INVALID_GLOBAL_OFFSET) C(CL_INVALID_EVENT_WAIT_LIST)
	C(CL_INVALID_EVENT) C(CL_INVALID_OPERATION) C(CL_INVALID_GL_OBJECT)
	C(CL_INVALID_BUFFER_SIZE) C(CL_INVALID_MIP_LEVEL)
	C(CL_INVALID_GLOBAL_WORK_SIZE) C(CL_INVALID_PROPERTY)
	C(CL_INVALID_IMAGE_DESCRIPTOR) C(CL_INVALID_COMPILER_OPTIONS)
	C(CL_INVALID_LINKER_OPTIONS) C(CL_INVALID_DEVICE_PARTITION_COUNT)
	C(CL_PLATFORM_NOT_FOUND_KHR)
#undef C
	}
	return "unknown OpenCL error";
}

#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static int clfail(brnrt_error *e, cl_int err, const char *fmt, ...)
{
	char what[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(what, sizeof what, fmt, ap);
	va_end(ap);
	return brnrt_errorf(e, BRN_ECL, "%s: %s (%d)", what, brnrt_cl_strerror(err), (int)err);
}

/* Set and not "0": BRN_PROFILE=1, BRN_NO_CACHE=1. */
static int env_on(const char *name)
{
	const char *v = getenv(name);
	return v && *v && strcmp(v, "0") != 0;
}

static int lower(int c)
{
	return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c;
}

static int icase_eq(const char *a, const char *b)
{
	while (*a && lower(*a) == lower(*b))
		a++, b++;
	return lower(*a) == lower(*b);
}

static int icase_contains(const char *hay, const char *needle)
{
	for (; *hay; hay++) {
		size_t i = 0;
		while (needle[i] && lower(hay[i]) == lower(needle[i]))
			i++;
		if (!needle[i])
			return 1;
	}
	return !*needle;
}

/* --- devices ------------------------------------------------------------- */

/* Info strings are NUL-terminated and stripped of the trailing blanks some
 * drivers pad them with; an unanswered query reads "?". */
static void info_str(cl_int err, char *s, size_t n)
{
	if (err != CL_SUCCESS)
		snprintf(s, n, "?");
	s[n - 1] = 0;
	size_t len = strlen(s);
	while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\n'))
		s[--len] = 0;
}

static void describe(brnrt_cl_device *d, int index, cl_platform_id p, cl_device_id id)
{
	cl_device_type type = 0;
	cl_uint cu = 0;
	cl_ulong mem = 0;
	size_t wg = 0;

	memset(d, 0, sizeof *d);
	d->index = index;
	info_str(clGetPlatformInfo(p, CL_PLATFORM_NAME, sizeof d->platform, d->platform, NULL),
	         d->platform, sizeof d->platform);
	info_str(clGetDeviceInfo(id, CL_DEVICE_NAME, sizeof d->name, d->name, NULL),
	         d->name, sizeof d->name);
	info_str(clGetDeviceInfo(id, CL_DEVICE_VENDOR, sizeof d->vendor, d->vendor, NULL),
	         d->vendor, sizeof d->vendor);
	info_str(clGetDeviceInfo(id, CL_DEVICE_VERSION, sizeof d->version, d->version, NULL),
	         d->version, sizeof d->version);
	info_str(clGetDeviceInfo(id, CL_DRIVER_VERSION, sizeof d->driver, d->driver, NULL),
	         d->driver, sizeof d->driver);
	clGetDeviceInfo(id, CL_DEVICE_TYPE, sizeof type, &type, NULL);
	clGetDeviceInfo(id, CL_DEVICE_MAX_COMPUTE_UNITS, sizeof cu, &cu, NULL);
	clGetDeviceInfo(id, CL_DEVICE_GLOBAL_MEM_SIZE, sizeof mem, &mem, NULL);
	clGetDeviceInfo(id, CL_DEVICE_MAX_WORK_GROUP_SIZE, sizeof wg, &wg, NULL);
	d->type = type & CL_DEVICE_TYPE_GPU           ? "gpu"
	          : type & CL_DEVICE_TYPE_CPU         ? "cpu"
	          : type & CL_DEVICE_TYPE_ACCELERATOR ? "accelerator"
	                                              : "other";
	d->compute_units = cu;
	d->global_mem = mem;
	d->max_work_group = wg;
}

static int make_dirs(const char *dir);

/* POCL drops all its devices when it cannot create its kernel cache
 * directory (pocl_cache_init_topdir: $POCL_CACHE_DIR if it exists, else
 * $XDG_CACHE_HOME/pocl/kcache, else ~/.cache/pocl/kcache), and the platform
 * then looks empty. 1, with why filled, when that directory is unusable. */
static int pocl_cache_unusable(char *why, size_t n)
{
	const char *env = getenv("POCL_CACHE_DIR"), *xdg = getenv("XDG_CACHE_HOME");
	const char *home = getenv("HOME");
	char dir[4096];
	struct stat st;
	if (env && *env && stat(env, &st) == 0)
		snprintf(dir, sizeof dir, "%s", env);
	else if (xdg && *xdg)
		snprintf(dir, sizeof dir, "%s/pocl/kcache", xdg);
	else if (home)
		snprintf(dir, sizeof dir, "%s/.cache/pocl/kcache", home);
	else
		snprintf(dir, sizeof dir, "/tmp/POCL_CACHE");
	errno = 0;
	if (make_dirs(dir) == 0 && access(dir, W_OK) == 0)
		return 0;
	snprintf(why, n, "POCL's kernel cache directory %.600s cannot be created or written (%s), and "
	         "POCL drops its devices without it; set POCL_CACHE_DIR or XDG_CACHE_HOME to a "
	         "writable directory", dir, errno ? strerror(errno) : "not a directory");
	return 1;
}

/* Lists every device of every platform into out (and ids, when not NULL),
 * up to max; *count gets the total. */
static int list(brnrt_cl_device *out, cl_device_id *ids, int max, int *count, brnrt_error *e)
{
	cl_platform_id plats[MAX_PLATFORMS];
	cl_uint np = 0;
	int n = 0, pocl = 0;
	char why[900];

	*count = 0;
	cl_int err = clGetPlatformIDs(MAX_PLATFORMS, plats, &np);
	if (err == CL_PLATFORM_NOT_FOUND_KHR || (err == CL_SUCCESS && np == 0))
		return brnrt_errorf(e, BRN_ENODEV, "no OpenCL platform found; %s", INSTALL_HINT);
	if (err != CL_SUCCESS)
		return clfail(e, err, "clGetPlatformIDs");
	if (np > MAX_PLATFORMS)
		np = MAX_PLATFORMS;
	for (cl_uint p = 0; p < np; p++) {
		cl_device_id devs[MAX_DEVICES];
		cl_uint nd = 0;
		char pname[256];
		info_str(clGetPlatformInfo(plats[p], CL_PLATFORM_NAME, sizeof pname, pname, NULL), pname,
		         sizeof pname);
		pocl |= icase_contains(pname, "Portable Computing Language") || icase_contains(pname, "pocl");
		err = clGetDeviceIDs(plats[p], CL_DEVICE_TYPE_ALL, MAX_DEVICES, devs, &nd);
		if (err == CL_DEVICE_NOT_FOUND)
			continue;
		if (err != CL_SUCCESS)
			return clfail(e, err, "clGetDeviceIDs(platform %u)", p);
		for (cl_uint d = 0; d < nd && d < MAX_DEVICES; d++, n++) {
			if (n >= max)
				continue;
			describe(&out[n], n, plats[p], devs[d]);
			if (ids)
				ids[n] = devs[d];
		}
	}
	*count = n;
	if (n == 0 && pocl && pocl_cache_unusable(why, sizeof why))
		return brnrt_errorf(e, BRN_ENODEV, "no OpenCL device found on %u platform%s: %s",
		                    np, np == 1 ? "" : "s", why);
	if (n == 0)
		return brnrt_errorf(e, BRN_ENODEV, "no OpenCL device found on %u platform%s; %s",
		                    np, np == 1 ? "" : "s", INSTALL_HINT);
	return BRN_OK;
}

int brnrt_cl_list(brnrt_cl_device *out, int max, int *count, brnrt_error *e)
{
	if (!count || max < 0 || (max > 0 && !out))
		return brnrt_errorf(e, BRN_EARG, "brnrt_cl_list: bad arguments");
	return list(out, NULL, max, count, e);
}

/* The index a selector picks among n devices, or -1. */
static int pick(const brnrt_cl_device *devs, int n, const char *sel)
{
	const char *s = sel;
	while (*s >= '0' && *s <= '9')
		s++;
	if (!*s) {
		long i = s - sel <= 4 ? strtol(sel, NULL, 10) : -1;
		return i < n ? (int)i : -1;
	}
	if (icase_eq(sel, "cpu") || icase_eq(sel, "gpu") || icase_eq(sel, "accelerator")) {
		for (int i = 0; i < n; i++)
			if (icase_eq(devs[i].type, sel))
				return i;
		return -1;
	}
	for (int i = 0; i < n; i++)
		if (icase_contains(devs[i].name, sel) || icase_contains(devs[i].platform, sel))
			return i;
	return -1;
}

static int no_match(const brnrt_cl_device *devs, int n, const char *sel, int from_env,
                    brnrt_error *e)
{
	char all[768];
	size_t len = 0;
	all[0] = 0;
	for (int i = 0; i < n && len < sizeof all; i++) {
		int w = snprintf(all + len, sizeof all - len, "%s%d: %s (%s, %s)", i ? "; " : "",
		                 i, devs[i].name, devs[i].type, devs[i].platform);
		len += w > 0 ? (size_t)w : 0;
	}
	return brnrt_errorf(e, BRN_ENODEV, "no OpenCL device matches %s\"%s\"; devices: %s",
	                    from_env ? "BRN_DEVICE=" : "", sel, all);
}

static int create(brnrt_cl *cl, cl_device_id dev, brnrt_error *e)
{
	cl_platform_id plat;
	cl_int err = clGetDeviceInfo(dev, CL_DEVICE_PLATFORM, sizeof plat, &plat, NULL);
	if (err != CL_SUCCESS)
		return clfail(e, err, "clGetDeviceInfo(CL_DEVICE_PLATFORM)");
	info_str(clGetPlatformInfo(plat, CL_PLATFORM_VERSION, sizeof cl->platform_version,
	                           cl->platform_version, NULL),
	         cl->platform_version, sizeof cl->platform_version);
	cl_context_properties props[] = {CL_CONTEXT_PLATFORM, (cl_context_properties)plat, 0};
	cl->dev = dev;
	cl->ctx = clCreateContext(props, 1, &dev, NULL, NULL, &err);
	if (err != CL_SUCCESS)
		return clfail(e, err, "clCreateContext(%s)", cl->info.name);
	cl->profile = env_on("BRN_PROFILE");
	cl->queue = clCreateCommandQueue(cl->ctx, dev,
	                                 cl->profile ? CL_QUEUE_PROFILING_ENABLE : 0, &err);
	if (err != CL_SUCCESS)
		return clfail(e, err, "clCreateCommandQueue(%s)", cl->info.name);
	return BRN_OK;
}

int brnrt_cl_open(brnrt_cl **out, const char *selector, brnrt_error *e)
{
	brnrt_cl_device *devs;
	cl_device_id ids[MAX_DEVICES];
	int n, rc, from_env = 0;

	if (!out)
		return brnrt_errorf(e, BRN_EARG, "brnrt_cl_open: out is NULL");
	*out = NULL;
	if (!(devs = malloc(MAX_DEVICES * sizeof *devs)))
		return brnrt_errorf(e, BRN_ENOMEM, "out of memory listing OpenCL devices");
	if ((rc = list(devs, ids, MAX_DEVICES, &n, e)) != BRN_OK)
		goto done;
	if (n > MAX_DEVICES)
		n = MAX_DEVICES;
	if (!selector || !*selector) {
		selector = getenv("BRN_DEVICE");
		from_env = selector && *selector;
		if (!from_env)
			selector = "0";
	}
	int i = pick(devs, n, selector);
	if (i < 0) {
		rc = no_match(devs, n, selector, from_env, e);
		goto done;
	}
	brnrt_cl *cl = calloc(1, sizeof *cl);
	if (!cl) {
		rc = brnrt_errorf(e, BRN_ENOMEM, "out of memory opening %s", devs[i].name);
		goto done;
	}
	cl->info = devs[i];
	if ((rc = create(cl, ids[i], e)) != BRN_OK)
		brnrt_cl_close(cl);
	else
		*out = cl;
done:
	free(devs);
	return rc;
}

const brnrt_cl_device *brnrt_cl_info(const brnrt_cl *cl)
{
	return &cl->info;
}

cl_context brnrt_cl_context(const brnrt_cl *cl)
{
	return cl->ctx;
}

cl_command_queue brnrt_cl_queue(const brnrt_cl *cl)
{
	return cl->queue;
}

/* --- profiling ------------------------------------------------------------- */

/* Waits for the held events and adds their times to their rows. */
static void prof_collect(brnrt_cl *cl)
{
	if (cl->npending == 0)
		return;
	clWaitForEvents((cl_uint)cl->npending, cl->pending);
	for (int i = 0; i < cl->npending; i++) {
		cl_ulong t0 = 0, t1 = 0;
		if (clGetEventProfilingInfo(cl->pending[i], CL_PROFILING_COMMAND_START, sizeof t0,
		                            &t0, NULL) == CL_SUCCESS &&
		    clGetEventProfilingInfo(cl->pending[i], CL_PROFILING_COMMAND_END, sizeof t1,
		                            &t1, NULL) == CL_SUCCESS &&
		    t1 >= t0)
			cl->rows[cl->pending_row[i]].ns += (double)(t1 - t0);
		clReleaseEvent(cl->pending[i]);
	}
	cl->npending = 0;
}

static int prof_row_of(brnrt_cl *cl, const char *name)
{
	if (!name)
		name = "(unnamed)";
	for (int i = 0; i < cl->nrows; i++)
		if (strcmp(cl->rows[i].name, name) == 0)
			return i;
	if (cl->nrows == PROF_KERNELS)
		return PROF_KERNELS - 1;
	prof_row *r = &cl->rows[cl->nrows];
	snprintf(r->name, sizeof r->name, "%s", cl->nrows == PROF_KERNELS - 1 ? "(others)" : name);
	return cl->nrows++;
}

/* The table, printed by brnrt_prof_print as the CPU pool's is. */
static void prof_print(brnrt_cl *cl)
{
	brnrt_prof_row rows[PROF_KERNELS];
	for (int i = 0; i < cl->nrows; i++) {
		rows[i].name = cl->rows[i].name;
		rows[i].launches = cl->rows[i].launches;
		rows[i].ns = cl->rows[i].ns;
	}
	brnrt_prof_print(cl->info.name, rows, cl->nrows);
}

void brnrt_cl_close(brnrt_cl *cl)
{
	if (!cl)
		return;
	if (cl->queue)
		clFinish(cl->queue);
	if (cl->profile) {
		prof_collect(cl);
		if (cl->nrows)
			prof_print(cl);
	}
	if (cl->queue)
		clReleaseCommandQueue(cl->queue);
	if (cl->ctx)
		clReleaseContext(cl->ctx);
	free(cl);
}

/* --- the program cache ------------------------------------------------------- */

/* An entry is <hash>.bin: a header, then the device binary.
 *   0 "BRNCLBIN"  8 u32 version  12 u32 header size  16 u64 key
 *  24 u64 payload length  32 u64 FNV-1a of the payload
 * in host byte order (a cache is local to one machine). */
#define ENTRY_MAGIC "BRNCLBIN"
#define ENTRY_VERSION 1u
#define ENTRY_HEADER 40u
#define ENTRY_MAX ((uint64_t)1 << 30)

#define FNV_BASIS 0xcbf29ce484222325ull

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
	const unsigned char *s = p;
	for (size_t i = 0; i < n; i++)
		h = (h ^ s[i]) * 0x100000001b3ull;
	return h;
}

/* Each part with its NUL, so ("ab", "c") and ("a", "bc") differ. */
static uint64_t cache_key(const brnrt_cl *cl, const char *src, const char *options)
{
	const char *parts[] = {src, options, cl->info.name, cl->info.driver,
	                       cl->platform_version, cl->info.version};
	uint64_t h = FNV_BASIS;
	for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++)
		h = fnv(h, parts[i], strlen(parts[i]) + 1);
	return h;
}

const char *brnrt_cl_cache_dir(char *buf, size_t n)
{
	const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
	int w;
	if (!buf || n == 0 || env_on("BRN_NO_CACHE"))
		return NULL;
	if (xdg && xdg[0] == '/') /* the XDG spec ignores relative paths */
		w = snprintf(buf, n, "%s/brnc", xdg);
	else if (home && home[0] == '/')
		w = snprintf(buf, n, "%s/.cache/brnc", home);
	else
		return NULL;
	return w > 0 && (size_t)w < n ? buf : NULL;
}

/* mkdir -p; 0 when dir is a directory afterwards. */
static int make_dirs(const char *dir)
{
	char p[4096];
	struct stat st;
	if (snprintf(p, sizeof p, "%s", dir) >= (int)sizeof p)
		return -1;
	for (char *s = p + 1;; s++) {
		if (*s == '/' || !*s) {
			char c = *s;
			*s = 0;
			if (mkdir(p, 0700) != 0 && errno != EEXIST)
				return -1;
			*s = c;
			if (!c)
				break;
		}
	}
	return stat(dir, &st) == 0 && S_ISDIR(st.st_mode) ? 0 : -1;
}

/* --- POCL's binaries ---
 * POCL trusts the sizes inside its binaries and asserts (aborting the
 * process) when one runs past the end, so a binary cut short inside an
 * entry whose checksum is sound (a binary that grew between the size query
 * and the copy, an entry written by hand) would take the program down. A
 * binary that starts with "poclbin" is walked here first. Format 9 (pocl
 * 3): a 77-byte header (magic, device id, version, kernel count, flags,
 * build hash), the program's bitcode as one sized file record, then per
 * kernel a record that starts with its own size and ends with its files.
 * A file is two strings, each a u32 length and the bytes. Other formats of
 * POCL are not known here: they are built from source and not cached. */
#define POCL_MAGIC "poclbin"
#define POCL_FORMAT 9u
#define POCL_HEADER 77u

static uint64_t le(const unsigned char *p, int bytes)
{
	uint64_t v = 0;
	for (int i = bytes - 1; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

/* Files (two strings each) filling [p, p + n) exactly. */
static int pocl_files(const unsigned char *p, uint64_t n)
{
	uint64_t at = 0;
	while (at < n)
		for (int s = 0; s < 2; s++) {
			uint64_t len = n - at >= 4 ? le(p + at, 4) : 0;
			if (len == 0 || len > n - at - 4)
				return 0;
			at += 4 + len;
		}
	return 1;
}

/* 1 when bin may go to the driver: not POCL's, or POCL's and whole. */
static int binary_whole(const unsigned char *bin, uint64_t n)
{
	if (n < 8 || memcmp(bin, POCL_MAGIC, 8) != 0)
		return 1; /* another driver's, which checks its own */
	if (n < POCL_HEADER + 8 || le(bin + 16, 4) != POCL_FORMAT)
		return 0;
	uint64_t kernels = le(bin + 20, 4), at = POCL_HEADER, size = le(bin + at, 8);
	if (size > n - at - 8 || !pocl_files(bin + at + 8, size))
		return 0;
	at += 8 + size;
	for (uint64_t k = 0; k < kernels; k++) {
		if (n - at < 20)
			return 0;
		uint64_t record = le(bin + at, 8), files = le(bin + at + 8, 8);
		if (record < 20 || record > n - at || files > record - 20 ||
		    !pocl_files(bin + at + record - files, files))
			return 0;
		at += record;
	}
	return at == n;
}

/* The payload of a sound entry for key, or NULL. */
static unsigned char *entry_read(const char *path, uint64_t key, size_t *len)
{
	unsigned char h[ENTRY_HEADER], *buf = NULL;
	uint32_t version, hsize;
	uint64_t k, n, sum;
	struct stat st;
	/* O_NONBLOCK: a FIFO in the cache would block the open; only files are read */
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	FILE *f = NULL;
	if (fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode))
		f = fdopen(fd, "rb");
	if (!f) {
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	if (fread(h, 1, sizeof h, f) != sizeof h || memcmp(h, ENTRY_MAGIC, 8) != 0)
		goto bad;
	memcpy(&version, h + 8, 4);
	memcpy(&hsize, h + 12, 4);
	memcpy(&k, h + 16, 8);
	memcpy(&n, h + 24, 8);
	memcpy(&sum, h + 32, 8);
	if (version != ENTRY_VERSION || hsize != ENTRY_HEADER || k != key || n == 0 ||
	    n > ENTRY_MAX)
		goto bad;
	if (!(buf = malloc((size_t)n)) || fread(buf, 1, (size_t)n, f) != n || fgetc(f) != EOF ||
	    fnv(FNV_BASIS, buf, (size_t)n) != sum || !binary_whole(buf, n))
		goto bad;
	fclose(f);
	*len = (size_t)n;
	return buf;
bad:
	free(buf);
	fclose(f);
	return NULL;
}

static int write_all(int fd, const void *p, size_t n)
{
	const char *s = p;
	while (n > 0) {
		ssize_t w = write(fd, s, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		s += w, n -= (size_t)w;
	}
	return 0;
}

/* Writes to a temporary name unique to this process and call, then renames:
 * a reader sees the old entry, the new one, or none, never a torn one.
 * Failing to write is not an error; the next build just misses again. */
static void entry_write(const char *path, uint64_t key, const unsigned char *bin, size_t n)
{
	struct timespec ts;
	char tmp[4200];
	unsigned char h[ENTRY_HEADER];
	uint32_t version = ENTRY_VERSION, hsize = ENTRY_HEADER;
	uint64_t len = n, sum = fnv(FNV_BASIS, bin, n), salt;

	clock_gettime(CLOCK_REALTIME, &ts);
	salt = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 30) ^ (uintptr_t)&ts;
	salt = fnv(FNV_BASIS, &salt, sizeof salt); /* O_EXCL settles any clash */
	if (snprintf(tmp, sizeof tmp, "%s.tmp.%ld.%08x", path, (long)getpid(),
	             (unsigned)(salt & 0xffffffffu)) >= (int)sizeof tmp)
		return;
	memcpy(h, ENTRY_MAGIC, 8);
	memcpy(h + 8, &version, 4);
	memcpy(h + 12, &hsize, 4);
	memcpy(h + 16, &key, 8);
	memcpy(h + 24, &len, 8);
	memcpy(h + 32, &sum, 8);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL, 0600);
	if (fd < 0)
		return;
	int bad = write_all(fd, h, sizeof h) || write_all(fd, bin, n);
	bad |= close(fd) != 0;
	if (bad || rename(tmp, path) != 0)
		unlink(tmp);
}

/* Stores only a binary that would load: one whose size did not change
 * while it was copied, and (POCL's) that is whole. */
static void cache_store(cl_program prog, const char *path, uint64_t key)
{
	size_t n = 0, again = 0;
	if (clGetProgramInfo(prog, CL_PROGRAM_BINARY_SIZES, sizeof n, &n, NULL) != CL_SUCCESS ||
	    n == 0 || n > ENTRY_MAX)
		return;
	unsigned char *bin = malloc(n), *bins[1] = {bin};
	if (bin && clGetProgramInfo(prog, CL_PROGRAM_BINARIES, sizeof bins, bins, NULL) ==
	               CL_SUCCESS &&
	    clGetProgramInfo(prog, CL_PROGRAM_BINARY_SIZES, sizeof again, &again, NULL) ==
	            CL_SUCCESS &&
	    again == n && binary_whole(bin, n)) {
		brnrt_fs_remove_stale_temps(path, ".tmp.");
		entry_write(path, key, bin, n);
	}
	free(bin);
}

/* A program from a sound cache entry, or NULL when it cannot be had. */
static cl_program cache_load(brnrt_cl *cl, const char *path, uint64_t key, const char *options)
{
	size_t n;
	cl_int status = CL_SUCCESS, err;
	unsigned char *bin = entry_read(path, key, &n);
	if (!bin)
		return NULL;
	const unsigned char *bins[1] = {bin};
	cl_program p = clCreateProgramWithBinary(cl->ctx, 1, &cl->dev, &n, bins, &status, &err);
	free(bin);
	if (err != CL_SUCCESS || status != CL_SUCCESS) {
		if (p && err == CL_SUCCESS)
			clReleaseProgram(p);
		return NULL;
	}
	if (clBuildProgram(p, 1, &cl->dev, options, NULL, NULL) != CL_SUCCESS) {
		clReleaseProgram(p);
		return NULL;
	}
	return p;
}

/* --- building --------------------------------------------------------------- */

/* The message keeps the head of the log, where the first error is. */
static int build_failed(brnrt_cl *cl, cl_program p, cl_int err, brnrt_error *e)
{
	char msg[sizeof e->msg];
	size_t n = 0;
	char *log = NULL;
	if (clGetProgramBuildInfo(p, cl->dev, CL_PROGRAM_BUILD_LOG, 0, NULL, &n) == CL_SUCCESS &&
	    n > 0 && (log = malloc(n + 1)) &&
	    clGetProgramBuildInfo(p, cl->dev, CL_PROGRAM_BUILD_LOG, n, log, NULL) == CL_SUCCESS) {
		log[n] = 0;
		n = strlen(log);
		while (n > 0 && (log[n - 1] == '\n' || log[n - 1] == ' ' || log[n - 1] == '\r'))
			log[--n] = 0;
	} else {
		n = 0;
	}
	int w = snprintf(msg, sizeof msg, "OpenCL build failed on %s: %s (%d); build log:\n",
	                 cl->info.name, brnrt_cl_strerror(err), (int)err);
	size_t room = sizeof msg - (size_t)w - 1;
	if (n == 0)
		snprintf(msg + w, room + 1, "(empty)");
	else if (n <= room)
		snprintf(msg + w, room + 1, "%s", log);
	else
		snprintf(msg + w, room + 1, "%.*s\n[... %zu more bytes of build log]",
		         (int)(room - 48), log, n - (room - 48));
	free(log);
	return brnrt_errorf(e, BRN_ECL, "%s", msg);
}

static int build_source(brnrt_cl *cl, const char *src, const char *options, cl_program *out,
                        brnrt_error *e)
{
	cl_int err;
	cl_program p = clCreateProgramWithSource(cl->ctx, 1, &src, NULL, &err);
	if (err != CL_SUCCESS)
		return clfail(e, err, "clCreateProgramWithSource");
	err = clBuildProgram(p, 1, &cl->dev, options, NULL, NULL);
	if (err != CL_SUCCESS) {
		int rc = build_failed(cl, p, err, e);
		clReleaseProgram(p);
		return rc;
	}
	*out = p;
	return BRN_OK;
}

int brnrt_cl_build(brnrt_cl *cl, const char *src, const char *options, cl_program *prog,
                   int *hit, brnrt_error *e)
{
	char dir[4096], path[4200];
	if (hit)
		*hit = 0;
	if (!cl || !src || !prog)
		return brnrt_errorf(e, BRN_EARG, "brnrt_cl_build: NULL argument");
	*prog = NULL;
	if (!options)
		options = "";
	uint64_t key = cache_key(cl, src, options);
	int cached = brnrt_cl_cache_dir(dir, sizeof dir) && make_dirs(dir) == 0 &&
	             snprintf(path, sizeof path, "%s/%016llx.bin", dir,
	                      (unsigned long long)key) < (int)sizeof path;
	if (cached && (*prog = cache_load(cl, path, key, options))) {
		if (hit)
			*hit = 1;
		return BRN_OK;
	}
	int rc = build_source(cl, src, options, prog, e);
	if (rc == BRN_OK && cached)
		cache_store(*prog, path, key);
	return rc;
}

int brnrt_cl_cache_entry(const char *name)
{
	size_t i = 0;
	while (i < 16 && ((name[i] >= '0' && name[i] <= '9') || (name[i] >= 'a' && name[i] <= 'f')))
		i++;
	return i == 16 && strncmp(name + 16, ".bin", 4) == 0 &&
	       (name[20] == 0 || strncmp(name + 20, ".tmp.", 5) == 0);
}

/* --- buffers and launches ------------------------------------------------------ */

int brnrt_cl_kernel(brnrt_cl *cl, cl_program prog, const char *name, cl_kernel *k,
                    brnrt_error *e)
{
	cl_int err;
	if (!cl || !prog || !name || !k)
		return brnrt_errorf(e, BRN_EARG, "brnrt_cl_kernel: NULL argument");
	*k = clCreateKernel(prog, name, &err);
	if (err != CL_SUCCESS) {
		*k = NULL;
		return clfail(e, err, "clCreateKernel(\"%s\")", name);
	}
	return BRN_OK;
}

int brnrt_cl_alloc(brnrt_cl *cl, size_t bytes, cl_mem *buf, brnrt_error *e)
{
	cl_int err;
	if (!cl || !buf || bytes == 0)
		return brnrt_errorf(e, BRN_EARG, "brnrt_cl_alloc: %s",
		                    bytes ? "NULL argument" : "zero bytes");
	*buf = clCreateBuffer(cl->ctx, CL_MEM_READ_WRITE, bytes, NULL, &err);
	if (err != CL_SUCCESS) {
		*buf = NULL;
		return clfail(e, err, "clCreateBuffer(%zu bytes on %s)", bytes, cl->info.name);
	}
	return BRN_OK;
}

/* Blocking, so the caller may reuse src as soon as this returns. */
int brnrt_cl_write(brnrt_cl *cl, cl_mem buf, size_t offset, size_t bytes, const void *src,
                   brnrt_error *e)
{
	if (!cl || !buf || (bytes && !src))
		return brnrt_errorf(e, BRN_EARG, "brnrt_cl_write: NULL argument");
	if (bytes == 0)
		return BRN_OK;
	cl_int err = clEnqueueWriteBuffer(cl->queue, buf, CL_TRUE, offset, bytes, src, 0, NULL,
	                                  NULL);
	if (err != CL_SUCCESS)
		return clfail(e, err, "clEnqueueWriteBuffer(%zu bytes at %zu)", bytes, offset);
	return BRN_OK;
}

int brnrt_cl_read(brnrt_cl *cl, cl_mem buf, size_t offset, size_t bytes, void *dst,
                  brnrt_error *e)
{
	if (!cl || !buf || (bytes && !dst))
		return brnrt_errorf(e, BRN_EARG, "brnrt_cl_read: NULL argument");
	if (bytes == 0)
		return BRN_OK;
	cl_int err = clEnqueueReadBuffer(cl->queue, buf, CL_TRUE, offset, bytes, dst, 0, NULL,
	                                 NULL);
	if (err != CL_SUCCESS)
		return clfail(e, err, "clEnqueueReadBuffer(%zu bytes at %zu)", bytes, offset);
	return BRN_OK;
}

int brnrt_cl_launch(brnrt_cl *cl, cl_kernel k, const char *name, int nargs,
                    const size_t *sizes, const void *const *ptrs, size_t global, size_t local,
                    brnrt_error *e)
{
	cl_event ev = NULL;
	cl_int err;
	if (!name)
		name = "(unnamed)";
	if (!cl || !k || nargs < 0 || (nargs > 0 && (!sizes || !ptrs)))
		return brnrt_errorf(e, BRN_EARG, "brnrt_cl_launch(%s): bad arguments", name);
	if (global == 0)
		return BRN_OK;
	for (int i = 0; i < nargs; i++) {
		err = clSetKernelArg(k, (cl_uint)i, sizes[i], ptrs[i]);
		if (err != CL_SUCCESS)
			return clfail(e, err, "clSetKernelArg(%s, arg %d, %zu bytes)", name, i,
			              sizes[i]);
	}
	if (local)
		global = (global + local - 1) / local * local;
	if (cl->profile && cl->npending == PROF_PENDING)
		prof_collect(cl);
	err = clEnqueueNDRangeKernel(cl->queue, k, 1, NULL, &global, local ? &local : NULL, 0,
	                             NULL, cl->profile ? &ev : NULL);
	if (err != CL_SUCCESS)
		return clfail(e, err, "clEnqueueNDRangeKernel(%s, global %zu, local %zu)", name,
		              global, local);
	if (cl->profile) {
		int r = prof_row_of(cl, name);
		cl->rows[r].launches++;
		cl->pending[cl->npending] = ev;
		cl->pending_row[cl->npending++] = r;
	}
	return BRN_OK;
}

int brnrt_cl_finish(brnrt_cl *cl, brnrt_error *e)
{
	if (!cl)
		return brnrt_errorf(e, BRN_EARG, "brnrt_cl_finish: NULL argument");
	cl_int err = clFinish(cl->queue);
	if (err != CL_SUCCESS)
		return clfail(e, err, "clFinish(%s)", cl->info.name);
	if (cl->profile)
		prof_collect(cl);
	return BRN_OK;
}
