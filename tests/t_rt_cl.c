/* t_rt_cl: the OpenCL half of libbrnrt on whatever device the machine has
 * (POCL in CI): listing and selection, kernels that compute, build errors
 * with their log, the binary cache (hits, corrupt entries, BRN_NO_CACHE),
 * profiling output and error names. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "brnrt_cl.h"
#include "tap.h"

static const char *vadd_src =
	"kernel void vadd(global const float *a, global const float *b,\n"
	"                 global float *c, int n)\n"
	"{\n"
	"\tint i = get_global_id(0);\n"
	"\tif (i < n)\n"
	"\t\tc[i] = a[i] + b[i];\n"
	"}\n";

/* One partial sum per work-group, through local memory. */
static const char *sum_src =
	"kernel void sum(global const float *x, global float *part, int n,\n"
	"                local float *tmp)\n"
	"{\n"
	"\tint i = get_global_id(0), l = get_local_id(0);\n"
	"\ttmp[l] = i < n ? x[i] : 0.0f;\n"
	"\tbarrier(CLK_LOCAL_MEM_FENCE);\n"
	"\tfor (int s = get_local_size(0) / 2; s > 0; s /= 2) {\n"
	"\t\tif (l < s)\n"
	"\t\t\ttmp[l] += tmp[l + s];\n"
	"\t\tbarrier(CLK_LOCAL_MEM_FENCE);\n"
	"\t}\n"
	"\tif (l == 0)\n"
	"\t\tpart[get_group_id(0)] = tmp[0];\n"
	"}\n";

static const char *bad_src =
	"kernel void broken(global float *x)\n"
	"{\n"
	"\tx[0] = undeclared_thing;\n"
	"}\n";

/* Under ASan, POCL and the LLVM inside it leave their caches and compiler
 * state allocated at exit (2 MB in 3700 blocks, none from brnrt frames);
 * LeakSanitizer reads these suppressions, which keep leaks of ours visible
 * unless their stack passes through the driver. Unused without ASan. */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
	return "leak:libpocl.so\nleak:libLLVM\nleak:libclang-cpp\nleak:libOpenCL.so\n";
}

static brnrt_error e;
static char tmpdir[] = "/tmp/t_rt_cl.XXXXXX";

/* Runs vadd on n elements; the number of wrong results, or -1. */
static int run_vadd(brnrt_cl *cl, cl_program prog, int n, size_t local)
{
	cl_kernel k = NULL;
	cl_mem a = NULL, b = NULL, c = NULL;
	float *x = malloc(3 * (size_t)n * sizeof *x), *y = x + n, *z = y + n;
	int bad = -1;
	size_t bytes = (size_t)n * sizeof *x;
	for (int i = 0; i < n; i++)
		x[i] = (float)i, y[i] = 0.5f * (float)i, z[i] = -1;
	if (brnrt_cl_kernel(cl, prog, "vadd", &k, &e) || brnrt_cl_alloc(cl, bytes, &a, &e) ||
	    brnrt_cl_alloc(cl, bytes, &b, &e) || brnrt_cl_alloc(cl, bytes, &c, &e) ||
	    brnrt_cl_write(cl, a, 0, bytes, x, &e) || brnrt_cl_write(cl, b, 0, bytes, y, &e))
		goto done;
	size_t sizes[] = {sizeof a, sizeof b, sizeof c, sizeof n};
	const void *ptrs[] = {&a, &b, &c, &n};
	if (brnrt_cl_launch(cl, k, "vadd", 4, sizes, ptrs, (size_t)n, local, &e) ||
	    brnrt_cl_finish(cl, &e) || brnrt_cl_read(cl, c, 0, bytes, z, &e))
		goto done;
	bad = 0;
	for (int i = 0; i < n; i++)
		bad += z[i] != 1.5f * (float)i;
done:
	if (bad < 0)
		diag("vadd: %s", e.msg);
	if (a)
		clReleaseMemObject(a);
	if (b)
		clReleaseMemObject(b);
	if (c)
		clReleaseMemObject(c);
	if (k)
		clReleaseKernel(k);
	free(x);
	return bad;
}

/* Sum of 0..n-1 by work-group partial sums, or -1 on failure. */
static double run_sum(brnrt_cl *cl, cl_program prog, int n)
{
	enum { WG = 64 };
	int groups = (n + WG - 1) / WG;
	cl_kernel k = NULL;
	cl_mem x = NULL, part = NULL;
	float *h = malloc((size_t)n * sizeof *h), *p = malloc((size_t)groups * sizeof *p);
	double total = -1;
	for (int i = 0; i < n; i++)
		h[i] = (float)i;
	if (brnrt_cl_kernel(cl, prog, "sum", &k, &e) ||
	    brnrt_cl_alloc(cl, (size_t)n * sizeof *h, &x, &e) ||
	    brnrt_cl_alloc(cl, (size_t)groups * sizeof *p, &part, &e) ||
	    brnrt_cl_write(cl, x, 0, (size_t)n * sizeof *h, h, &e))
		goto done;
	size_t sizes[] = {sizeof x, sizeof part, sizeof n, WG * sizeof(float)};
	const void *ptrs[] = {&x, &part, &n, NULL};
	if (brnrt_cl_launch(cl, k, "sum", 4, sizes, ptrs, (size_t)n, WG, &e) ||
	    brnrt_cl_read(cl, part, 0, (size_t)groups * sizeof *p, p, &e))
		goto done;
	total = 0;
	for (int g = 0; g < groups; g++)
		total += p[g];
done:
	if (total < 0)
		diag("sum: %s", e.msg);
	if (x)
		clReleaseMemObject(x);
	if (part)
		clReleaseMemObject(part);
	if (k)
		clReleaseKernel(k);
	free(h);
	free(p);
	return total;
}

/* The cache entries (*.bin) in dir; *path gets the last one's path. */
static int entries(const char *dir, char *path, size_t n, int *others)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int count = 0;
	*others = 0;
	if (!d)
		return 0;
	while ((de = readdir(d))) {
		size_t len = strlen(de->d_name);
		if (de->d_name[0] == '.')
			continue;
		if (len > 4 && strcmp(de->d_name + len - 4, ".bin") == 0) {
			count++;
			snprintf(path, n, "%s/%s", dir, de->d_name);
		} else {
			(*others)++;
		}
	}
	closedir(d);
	return count;
}

static long file_size(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

static void flip(const char *path, long at)
{
	int fd = open(path, O_RDWR);
	unsigned char c = 0;
	if (fd < 0 || pread(fd, &c, 1, at) != 1)
		diag("cannot read %s", path);
	c ^= 0x5a;
	if (fd < 0 || pwrite(fd, &c, 1, at) != 1)
		diag("cannot write %s", path);
	if (fd >= 0)
		close(fd);
}

/* Builds vadd through the cache and runs it; returns hit, or -1. */
static int cached_vadd(brnrt_cl *cl, const char *what)
{
	cl_program prog;
	int hit = -1;
	if (brnrt_cl_build(cl, vadd_src, "-cl-std=CL1.2", &prog, &hit, &e)) {
		diag("%s: %s", what, e.msg);
		return -1;
	}
	is_int(run_vadd(cl, prog, 100, 0), 0, "%s: program computes", what);
	clReleaseProgram(prog);
	return hit;
}

static void test_cache(brnrt_cl *cl)
{
	char xdg[256], dir[300], entry[600] = "", buf[600];
	int others;

	snprintf(xdg, sizeof xdg, "%s/xdg", tmpdir);
	snprintf(dir, sizeof dir, "%s/brnc", xdg);
	setenv("XDG_CACHE_HOME", xdg, 1);
	unsetenv("BRN_NO_CACHE");
	is_str(brnrt_cl_cache_dir(buf, sizeof buf), dir, "cache dir is $XDG_CACHE_HOME/brnc");

	is_int(cached_vadd(cl, "first build"), 0, "first build misses");
	is_int(entries(dir, entry, sizeof entry, &others), 1, "and writes one entry");
	is_int(others, 0, "and leaves no temporary file");
	is_int(cached_vadd(cl, "second build"), 1, "second build hits");
	long size = file_size(entry);
	ok(size > 40, "entry has a header and a payload (%ld bytes)", size);

	if (truncate(entry, size / 2) != 0)
		diag("truncate failed");
	is_int(cached_vadd(cl, "truncated entry"), 0, "truncated entry: miss, rebuilt");
	/* POCL's binary grows with the work-group sizes launched so far, so
	 * the new entry need not be as long as the old one. */
	ok(file_size(entry) > size / 2, "truncated entry is overwritten");
	is_int(cached_vadd(cl, "after rewrite"), 1, "rewritten entry hits");

	flip(entry, size / 2);
	flip(entry, size - 1);
	is_int(cached_vadd(cl, "flipped payload"), 0, "flipped payload bytes: miss, rebuilt");
	is_int(cached_vadd(cl, "after rewrite"), 1, "rewritten entry hits");

	flip(entry, 0);
	is_int(cached_vadd(cl, "flipped magic"), 0, "flipped magic: miss, rebuilt");
	if (truncate(entry, 0) != 0)
		diag("truncate failed");
	is_int(cached_vadd(cl, "empty entry"), 0, "empty entry: miss, rebuilt");
	is_int(entries(dir, entry, sizeof entry, &others), 1, "still one entry");
	is_int(others, 0, "and no temporary file");

	/* A sound header around a payload the driver refuses. */
	FILE *f = fopen(entry, "r+b");
	unsigned char h[40], junk[64];
	uint64_t len = sizeof junk, sum = 0xcbf29ce484222325ull;
	memset(junk, 0xa5, sizeof junk);
	for (size_t i = 0; i < sizeof junk; i++)
		sum = (sum ^ junk[i]) * 0x100000001b3ull;
	if (!f || fread(h, 1, sizeof h, f) != sizeof h)
		diag("cannot read %s", entry);
	memcpy(h + 24, &len, 8);
	memcpy(h + 32, &sum, 8);
	if (!f || fseek(f, 0, SEEK_SET) || fwrite(h, 1, sizeof h, f) != sizeof h ||
	    fwrite(junk, 1, sizeof junk, f) != sizeof junk || fflush(f) ||
	    ftruncate(fileno(f), (off_t)(sizeof h + sizeof junk)))
		diag("cannot rewrite %s", entry);
	if (f)
		fclose(f);
	is_int(cached_vadd(cl, "binary the driver refuses"), 0,
	       "valid entry the driver refuses: miss, built from source");
	is_int(cached_vadd(cl, "after rewrite"), 1, "rewritten entry hits");

	/* A sound header around a POCL binary cut short: POCL trusts the sizes
	 * inside its binary and aborts the process when they run past the end
	 * (the report's pocl_cache_entry_truncated_valid_checksum.bin). */
	static unsigned char whole[1 << 20];
	f = fopen(entry, "rb");
	size_t got = f ? fread(whole, 1, sizeof whole, f) : 0;
	if (f)
		fclose(f);
	if (got > 40 + 100 && memcmp(whole + 40, "poclbin", 8) == 0) {
		size_t cuts[] = {100, (got - 40) / 2, got - 40 - 1};
		for (int i = 0; i < 3; i++) {
			uint64_t cut = cuts[i], s = 0xcbf29ce484222325ull;
			for (size_t k = 0; k < cut; k++)
				s = (s ^ whole[40 + k]) * 0x100000001b3ull;
			memcpy(whole + 24, &cut, 8);
			memcpy(whole + 32, &s, 8);
			f = fopen(entry, "wb");
			if (!f || fwrite(whole, 1, 40 + cut, f) != 40 + cut || fclose(f))
				diag("cannot rewrite %s", entry);
			char what[96];
			snprintf(what, sizeof what, "POCL binary cut to %llu of %zu bytes", (unsigned long long)cut,
			         got - 40);
			is_int(cached_vadd(cl, what), 0, "%s, valid checksum: miss, rebuilt", what);
		}
		is_int(cached_vadd(cl, "after rewrite"), 1, "rewritten entry hits");
	} else {
		for (int i = 0; i < 4; i++)
			ok(1, "POCL binary cut short # SKIP the device's binaries are not POCL's");
	}

	/* A FIFO in the entry's place: not opened for reading (that would wait
	 * for a writer for ever), rebuilt, and replaced by a file. */
	unlink(entry);
	if (mkfifo(entry, 0600) == 0) {
		alarm(120); /* a hang fails the test instead of stalling the suite */
		is_int(cached_vadd(cl, "FIFO entry"), 0, "a FIFO as the entry: miss, rebuilt, no hang");
		alarm(0);
		is_int(cached_vadd(cl, "after FIFO"), 1, "the entry is a file again and hits");
	} else {
		ok(0, "mkfifo %s: %s", entry, strerror(errno));
	}

	/* Temp files of writers killed mid-entry: the next store removes those
	 * of processes that are gone, and keeps a live one's. */
	char dead[700], live[700];
	pid_t child = fork();
	if (child == 0)
		_exit(0);
	waitpid(child, NULL, 0);
	snprintf(dead, sizeof dead, "%s.tmp.%ld.0badf00d", entry, (long)child);
	snprintf(live, sizeof live, "%s.tmp.%ld.0badf00d", entry, (long)getppid());
	f = fopen(dead, "wb");
	if (f)
		fclose(f);
	f = fopen(live, "wb");
	if (f)
		fclose(f);
	if (truncate(entry, 0) != 0)
		diag("truncate failed");
	is_int(cached_vadd(cl, "store beside stale temp files"), 0, "an empty entry is rebuilt and stored");
	ok(access(dead, F_OK) != 0, "the temp file of a writer that is gone is removed");
	ok(access(live, F_OK) == 0, "a live writer's stays");
	unlink(live);

	/* A different source is a different key. */
	cl_program prog;
	int hit = -1;
	ok(brnrt_cl_build(cl, sum_src, NULL, &prog, &hit, &e) == 0 && hit == 0,
	   "another source misses");
	clReleaseProgram(prog);
	is_int(entries(dir, entry, sizeof entry, &others), 2, "and adds a second entry");

	/* BRN_NO_CACHE=1: nothing read or written. */
	snprintf(xdg, sizeof xdg, "%s/xdg2", tmpdir);
	snprintf(dir, sizeof dir, "%s/brnc", xdg);
	setenv("XDG_CACHE_HOME", xdg, 1);
	setenv("BRN_NO_CACHE", "1", 1);
	ok(brnrt_cl_cache_dir(buf, sizeof buf) == NULL, "BRN_NO_CACHE=1: no cache dir");
	is_int(cached_vadd(cl, "BRN_NO_CACHE=1"), 0, "BRN_NO_CACHE=1: miss");
	is_int(cached_vadd(cl, "BRN_NO_CACHE=1 again"), 0, "BRN_NO_CACHE=1: miss again");
	is_int(entries(dir, entry, sizeof entry, &others) + others, 0,
	       "BRN_NO_CACHE=1 writes nothing");
	unsetenv("BRN_NO_CACHE");

	/* A cache dir that cannot be created: build without it. */
	snprintf(buf, sizeof buf, "%s/file", tmpdir);
	FILE *g = fopen(buf, "w");
	if (g)
		fclose(g);
	snprintf(xdg, sizeof xdg, "%s/file/sub", tmpdir);
	setenv("XDG_CACHE_HOME", xdg, 1);
	is_int(cached_vadd(cl, "unusable cache dir"), 0, "unusable cache dir: builds, misses");
	setenv("XDG_CACHE_HOME", tmpdir, 1);
}

static void test_select(const brnrt_cl_device *devs, int n)
{
	brnrt_cl *cl = NULL;
	char sel[64], want[1024];
	size_t len;

	unsetenv("BRN_DEVICE");
	if (!ok(brnrt_cl_open(&cl, NULL, &e) == 0, "open NULL"))
		diag("%s", e.msg);
	ok(cl && brnrt_cl_info(cl)->index == 0, "NULL selects device 0");
	brnrt_cl_close(cl);
	is_int(brnrt_cl_open(&cl, "0", &e), 0, "open \"0\"");
	ok(cl && strcmp(brnrt_cl_info(cl)->name, devs[0].name) == 0, "\"0\" is device 0");
	ok(cl && brnrt_cl_context(cl) && brnrt_cl_queue(cl), "has a context and a queue");
	brnrt_cl_close(cl);

	int cpu = -1;
	for (int i = 0; i < n && cpu < 0; i++)
		if (strcmp(devs[i].type, "cpu") == 0)
			cpu = i;
	if (cpu >= 0) {
		is_int(brnrt_cl_open(&cl, "CPU", &e), 0, "open \"CPU\"");
		ok(cl && brnrt_cl_info(cl)->index == cpu, "\"CPU\" is the first cpu device");
		brnrt_cl_close(cl);
	} else {
		ok(1, "# SKIP no cpu device");
		ok(1, "# SKIP no cpu device");
	}

	/* a name substring, in other case */
	const char *name = devs[n - 1].name;
	size_t nl = strlen(name) < 6 ? strlen(name) : 6;
	for (len = 0; len < nl; len++) {
		char c = name[len];
		sel[len] = c >= 'a' && c <= 'z' ? c - 32 : c >= 'A' && c <= 'Z' ? c + 32 : c;
	}
	sel[len] = 0;
	is_int(brnrt_cl_open(&cl, sel, &e), 0, "open by name substring '%s'", sel);
	ok(cl && strncmp(brnrt_cl_info(cl)->name, name, nl) == 0, "picks a device so named");
	brnrt_cl_close(cl);

	/* the exact message for a selector that matches nothing */
	len = (size_t)snprintf(want, sizeof want,
	                       "no OpenCL device matches \"no-such-device\"; devices: ");
	for (int i = 0; i < n; i++)
		len += (size_t)snprintf(want + len, sizeof want - len, "%s%d: %s (%s, %s)",
		                        i ? "; " : "", i, devs[i].name, devs[i].type,
		                        devs[i].platform);
	cl = (brnrt_cl *)&e; /* must be reset */
	is_int(brnrt_cl_open(&cl, "no-such-device", &e), BRN_ENODEV, "bogus selector: ENODEV");
	is_str(e.msg, want, "bogus selector: message names it and lists devices");
	ok(cl == NULL, "bogus selector: *cl is NULL");
	snprintf(sel, sizeof sel, "%d", n);
	is_int(brnrt_cl_open(&cl, sel, &e), BRN_ENODEV, "index %d out of range: ENODEV", n);
	if (cpu == 0 && n == 1) {
		is_int(brnrt_cl_open(&cl, "gpu", &e), BRN_ENODEV, "gpu on a cpu-only machine: ENODEV");
		ok(strstr(e.msg, "\"gpu\""), "names the selector");
	} else {
		ok(1, "# SKIP not a cpu-only machine");
		ok(1, "# SKIP not a cpu-only machine");
	}

	setenv("BRN_DEVICE", "no-such-device", 1);
	is_int(brnrt_cl_open(&cl, "", &e), BRN_ENODEV, "BRN_DEVICE=no-such-device: ENODEV");
	ok(strncmp(e.msg, "no OpenCL device matches BRN_DEVICE=\"no-such-device\"; devices: 0: ",
	           66) == 0,
	   "message names BRN_DEVICE");
	is_int(brnrt_cl_open(&cl, "0", &e), 0, "an explicit selector wins over BRN_DEVICE");
	brnrt_cl_close(cl);
	snprintf(sel, sizeof sel, "%d", n - 1);
	setenv("BRN_DEVICE", sel, 1);
	is_int(brnrt_cl_open(&cl, NULL, &e), 0, "BRN_DEVICE=%s", sel);
	ok(cl && brnrt_cl_info(cl)->index == n - 1, "BRN_DEVICE is honoured");
	brnrt_cl_close(cl);
	unsetenv("BRN_DEVICE");
}

static void test_kernels(brnrt_cl *cl)
{
	cl_program prog = NULL;
	int hit = -1;
	size_t one = 4;
	cl_kernel k;
	cl_mem m;

	is_int(brnrt_cl_build(cl, vadd_src, NULL, &prog, &hit, &e), 0, "vadd builds");
	is_int(run_vadd(cl, prog, 1000, 0), 0, "vadd: 1000 sums right (no local size)");
	is_int(run_vadd(cl, prog, 1000, 64), 0, "vadd: 1000 sums right (global rounded up)");
	is_int(run_vadd(cl, prog, 1, 0), 0, "vadd: n = 1");
	is_int(brnrt_cl_kernel(cl, prog, "nope", &k, &e), BRN_ECL, "unknown kernel: ECL");
	is_str(e.msg, "clCreateKernel(\"nope\"): CL_INVALID_KERNEL_NAME (-46)",
	       "unknown kernel: message");
	is_int(brnrt_cl_alloc(cl, 0, &m, &e), BRN_EARG, "zero-byte buffer: EARG");
	is_int(brnrt_cl_kernel(cl, prog, "vadd", &k, &e), 0, "kernel vadd");
	const void *p = &one;
	is_int(brnrt_cl_launch(cl, k, "vadd", 1, &one, &p, 8, 0, &e), BRN_ECL,
	       "launch with args missing: ECL");
	ok(strstr(e.msg, "vadd") != NULL, "and the message names the kernel: %s", e.msg);
	clReleaseKernel(k);
	clReleaseProgram(prog);

	is_int(brnrt_cl_build(cl, sum_src, NULL, &prog, NULL, &e), 0, "sum builds");
	is_double_within(run_sum(cl, prog, 1000), 999.0 * 1000 / 2, 0, "sum of 0..999");
	is_double_within(run_sum(cl, prog, 64), 63.0 * 64 / 2, 0, "sum of 0..63 (one group)");
	clReleaseProgram(prog);

	prog = (cl_program)&e;
	is_int(brnrt_cl_build(cl, bad_src, NULL, &prog, &hit, &e), BRN_ECL, "bad source: ECL");
	ok(prog == NULL, "bad source: *prog is NULL");
	ok(strncmp(e.msg, "OpenCL build failed on ", 23) == 0, "message says the build failed");
	ok(strstr(e.msg, "CL_BUILD_PROGRAM_FAILURE") != NULL, "message names the error");
	ok(strstr(e.msg, "undeclared_thing") != NULL, "message has the log's error");
	if (!ok(strstr(e.msg, ":3:") != NULL, "message has the error's line"))
		diag("%s", e.msg);
	is_int(brnrt_cl_build(cl, vadd_src, "-no-such-option", &prog, &hit, &e), BRN_ECL,
	       "bad option: ECL");
}

/* BRN_PROFILE=1: a table on stderr at close, naming the kernels. */
static void test_profile(void)
{
	char path[300], text[4096] = "";
	brnrt_cl *cl = NULL;
	cl_program prog;
	snprintf(path, sizeof path, "%s/profile.txt", tmpdir);
	setenv("BRN_PROFILE", "1", 1);
	int rc = brnrt_cl_open(&cl, NULL, &e);
	unsetenv("BRN_PROFILE");
	is_int(rc, 0, "open with BRN_PROFILE=1");
	if (rc)
		return;
	is_int(brnrt_cl_build(cl, vadd_src, NULL, &prog, NULL, &e), 0, "vadd builds");
	is_int(run_vadd(cl, prog, 100, 0) + run_vadd(cl, prog, 100, 16), 0, "vadd twice, profiled");
	clReleaseProgram(prog);
	fflush(stderr);
	int saved = dup(2), fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	dup2(fd, 2);
	brnrt_cl_close(cl);
	fflush(stderr);
	dup2(saved, 2);
	close(fd);
	close(saved);
	FILE *f = fopen(path, "r");
	size_t n = f ? fread(text, 1, sizeof text - 1, f) : 0;
	text[n] = 0;
	if (f)
		fclose(f);
	ok(strstr(text, "brnrt profile on ") != NULL, "profile table printed at close");
	ok(strstr(text, "kernel") && strstr(text, "launches") && strstr(text, "mean us"),
	   "with its columns");
	char *row = strstr(text, "\nvadd ");
	if (!ok(row && strtol(row + 5 + strspn(row + 5, " "), NULL, 10) == 2,
	        "vadd row with 2 launches"))
		diag("%s", text);
}

static void test_strerror(void)
{
	is_str(brnrt_cl_strerror(CL_SUCCESS), "CL_SUCCESS", "strerror 0");
	is_str(brnrt_cl_strerror(CL_OUT_OF_RESOURCES), "CL_OUT_OF_RESOURCES", "strerror -5");
	is_str(brnrt_cl_strerror(CL_KERNEL_ARG_INFO_NOT_AVAILABLE),
	       "CL_KERNEL_ARG_INFO_NOT_AVAILABLE", "strerror -19");
	is_str(brnrt_cl_strerror(CL_INVALID_VALUE), "CL_INVALID_VALUE", "strerror -30");
	is_str(brnrt_cl_strerror(CL_INVALID_DEVICE_PARTITION_COUNT),
	       "CL_INVALID_DEVICE_PARTITION_COUNT", "strerror -68");
	is_str(brnrt_cl_strerror(-1001), "CL_PLATFORM_NOT_FOUND_KHR", "strerror -1001");
	is_str(brnrt_cl_strerror(-20), "unknown OpenCL error", "strerror -20");
	is_str(brnrt_cl_strerror(12345), "unknown OpenCL error", "strerror 12345");
	int named = 0;
	for (int c = -68; c <= 0; c++)
		named += strncmp(brnrt_cl_strerror(c), "CL_", 3) == 0;
	is_int(named, 20 + 39, "every OpenCL 1.2 code has a name");
}

int main(void)
{
	brnrt_cl_device devs[16];
	brnrt_cl *cl = NULL;
	int n = 0;

	if (!mkdtemp(tmpdir)) {
		printf("Bail out! mkdtemp failed\n");
		return 1;
	}
	/* No test may touch the user's cache. */
	setenv("XDG_CACHE_HOME", tmpdir, 1);
	setenv("BRN_NO_CACHE", "1", 1);
	unsetenv("BRN_PROFILE");

	test_strerror();
	if (!ok(brnrt_cl_list(devs, 16, &n, &e) == 0, "list devices"))
		diag("%s", e.msg);
	ok(n >= 1, "at least one device (%d)", n);
	if (n < 1)
		return done_testing();
	if (n > 16)
		n = 16;
	for (int i = 0; i < n; i++)
		diag("device %d: %s (%s, %s; %s)", i, devs[i].name, devs[i].type, devs[i].platform,
		     devs[i].version);
	ok(devs[0].index == 0 && devs[0].compute_units > 0 && devs[0].global_mem > 0 &&
	   devs[0].max_work_group > 0,
	   "device 0 described");
	test_select(devs, n);

	is_int(brnrt_cl_open(&cl, NULL, &e), 0, "open the default device");
	if (cl) {
		test_kernels(cl);
		test_cache(cl);
		brnrt_cl_close(cl);
	}
	test_profile();

	char cmd[400];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
	if (system(cmd) != 0)
		diag("could not remove %s", tmpdir);
	return done_testing();
}
