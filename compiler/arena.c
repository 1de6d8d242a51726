/* Arena allocator: bump allocation in growing blocks. */
#include "arena.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct brn_arena_block {
	brn_arena_block *next;
	size_t used, size;
	_Alignas(max_align_t) unsigned char data[];
};

enum { BLOCK_MIN = 64 * 1024 };

void brn_arena_init(brn_arena *a)
{
	memset(a, 0, sizeof *a);
}

void *brn_arena_alloc(brn_arena *a, size_t n)
{
	const size_t align = _Alignof(max_align_t);
	size_t need = (n + align - 1) & ~(align - 1);
	if (need < n)
		return NULL;
	if (a->limit && (need > a->limit || a->total > a->limit - need))
		return NULL;
	brn_arena_block *b = a->head;
	if (!b || b->size - b->used < need) {
		size_t size = need > BLOCK_MIN ? need : BLOCK_MIN;
		if (size > (size_t)-1 - sizeof *b)
			return NULL;
		b = malloc(sizeof *b + size);
		if (!b)
			return NULL;
		b->used = 0;
		b->size = size;
		b->next = a->head;
		a->head = b;
	}
	void *p = b->data + b->used;
	b->used += need;
	a->total += need;
	memset(p, 0, n);
	return p;
}

char *brn_arena_strndup(brn_arena *a, const char *s, size_t n)
{
	char *p = brn_arena_alloc(a, n + 1);
	if (p)
		memcpy(p, s, n);
	return p;
}

char *brn_arena_strdup(brn_arena *a, const char *s)
{
	return brn_arena_strndup(a, s, strlen(s));
}

char *brn_arena_printf(brn_arena *a, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return NULL;
	char *p = brn_arena_alloc(a, (size_t)n + 1);
	if (!p)
		return NULL;
	va_start(ap, fmt);
	vsnprintf(p, (size_t)n + 1, fmt, ap);
	va_end(ap);
	return p;
}

void brn_arena_free(brn_arena *a)
{
	brn_arena_block *b = a->head;
	while (b) {
		brn_arena_block *next = b->next;
		free(b);
		b = next;
	}
	brn_arena_init(a);
}
