/* t_rt_st_fuzz: brnrt_st_load on a few thousand damaged copies of a valid
 * file (byte flips, header cuts, random header lengths, JSON-ish inserts),
 * from a fixed seed. Each load must return a known code, with a message and
 * untouched buffers when it fails; `make asan` runs this under ASan/UBSan. */
#include "brnrt_st.h"
#include "tap.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SENTINEL -777.0f

static float w[8 * 3 * 3 * 3], b[8], m[8];
static brnrt_st_tensor specs[3] = {
	{"conv.weight", 4, {8, 3, 3, 3}, w, 0},
	{"conv.bias", 1, {8}, b, 0},
	{"conv.mean", 1, {8}, m, 1},
};

static uint64_t rng = 0x9e3779b97f4a7c15u;

static uint64_t next(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static char path[512];
static unsigned char orig[8192], buf[8192 + 64];
static size_t orig_len, hdr_len;

static void sentinel(void)
{
	for (size_t i = 0; i < sizeof w / sizeof w[0]; i++)
		w[i] = SENTINEL;
	for (int i = 0; i < 8; i++)
		b[i] = m[i] = SENTINEL;
}

static int untouched(void)
{
	for (size_t i = 0; i < sizeof w / sizeof w[0]; i++)
		if (w[i] != SENTINEL)
			return 0;
	for (int i = 0; i < 8; i++)
		if (b[i] != SENTINEL || m[i] != SENTINEL)
			return 0;
	return 1;
}

/* Writes buf[0..len) to path and loads it; 1 when the outcome is sane. */
static int try_load(size_t len, const char *what, long round)
{
	FILE *f = fopen(path, "wb");
	brnrt_error e = {{0}};
	int64_t step = -1;

	if (!f || fwrite(buf, 1, len, f) != len || fclose(f) != 0) {
		diag("cannot write %s", path);
		return 0;
	}
	sentinel();
	int rc = brnrt_st_load(path, specs, 3, ".momentum", &step, &e);
	int sane = rc == BRN_OK || rc == BRN_EFORMAT || rc == BRN_EMISMATCH || rc == BRN_EIO;
	if (rc != BRN_OK)
		sane &= e.msg[0] != '\0' && untouched() && step == -1;
	if (!sane)
		diag("%s round %ld: rc %d (%s) msg '%s'", what, round, rc, brnrt_strerror(rc), e.msg);
	return sane;
}

static void set_len(uint64_t len)
{
	for (int i = 0; i < 8; i++)
		buf[i] = (unsigned char)(len >> (8 * i));
}

int main(void)
{
	char dir[256];
	const char *base = getenv("TMPDIR");
	brnrt_error e = {{0}};
	int good;
	long ok_loads = 0;

	snprintf(dir, sizeof dir, "%s/brnrt_fuzz_XXXXXX", base && *base ? base : "/tmp");
	if (!mkdtemp(dir)) {
		diag("mkdtemp: %s", strerror(errno));
		return 1;
	}
	snprintf(path, sizeof path, "%s/f.safetensors", dir);
	for (size_t i = 0; i < sizeof w / sizeof w[0]; i++)
		w[i] = (float)i / 7.0f;
	for (int i = 0; i < 8; i++)
		b[i] = m[i] = (float)i;
	is_int(brnrt_st_save(path, specs, 3, 31337, &e), BRN_OK, "save the seed file");
	FILE *f = fopen(path, "rb");
	orig_len = f ? fread(orig, 1, sizeof orig, f) : 0;
	if (f)
		fclose(f);
	hdr_len = orig_len >= 8 ? (size_t)orig[0] | (size_t)orig[1] << 8 : 0;
	ok(orig_len > 8 && 8 + hdr_len < orig_len, "seed file is %zu bytes, header %zu",
	   orig_len, hdr_len);
	memcpy(buf, orig, orig_len);
	ok(try_load(orig_len, "seed", 0) && w[1] == 1.0f / 7.0f, "the seed file loads");

	/* Byte flips anywhere, 1..8 per round. */
	good = 1;
	for (long r = 0; r < 3000; r++) {
		memcpy(buf, orig, orig_len);
		for (int k = 1 + (int)(next() % 8); k > 0; k--)
			buf[next() % orig_len] ^= (unsigned char)(1 + next() % 255);
		good &= try_load(orig_len, "flip", r);
	}
	ok(good, "3000 files with flipped bytes");

	/* Every cut inside the length and the header, with the length kept. */
	good = 1;
	for (size_t cut = 0; cut <= 8 + hdr_len; cut++) {
		memcpy(buf, orig, orig_len);
		good &= try_load(cut, "cut", (long)cut);
	}
	ok(good, "%zu cuts through the header", hdr_len + 9);

	/* Every header length from 0 to past the file, then random ones. */
	good = 1;
	for (size_t len = 0; len < orig_len + 16; len++) {
		memcpy(buf, orig, orig_len);
		set_len(len);
		good &= try_load(orig_len, "length", (long)len);
	}
	for (long r = 0; r < 1000; r++) {
		memcpy(buf, orig, orig_len);
		uint64_t x = next();
		set_len(r % 2 ? x : x >> (next() % 64));
		good &= try_load(orig_len, "random length", r);
	}
	ok(good, "%zu header lengths in turn and 1000 random ones", orig_len + 16);

	/* JSON-ish characters overwritten or inserted inside the header, so the
	 * parser and the checks see near-valid numbers, arrays and strings. */
	static const char alphabet[] = "{}[]\",:-.0123456789eE +\\u\0x";
	good = 1;
	for (long r = 0; r < 3000; r++) {
		size_t len = orig_len;
		memcpy(buf, orig, orig_len);
		for (int k = 1 + (int)(next() % 4); k > 0; k--) {
			size_t at = 8 + next() % hdr_len;
			char c = alphabet[next() % (sizeof alphabet - 1)];
			if (next() % 2) {
				buf[at] = (unsigned char)c;
			} else if (len < sizeof buf) {
				memmove(buf + at + 1, buf + at, len - at);
				buf[at] = (unsigned char)c;
				len++;
				set_len(hdr_len + (len - orig_len));
			}
		}
		good &= try_load(len, "json", r);
		ok_loads += untouched() ? 0 : 1;
	}
	ok(good, "3000 headers with JSON characters changed or inserted");
	diag("%ld of the JSON-damaged files still loaded", ok_loads);

	unlink(path);
	rmdir(dir);
	return done_testing();
}
