/* Arena allocator: one per compilation. Passes allocate from it and never
 * free piecemeal; brn_arena_free releases everything at once. */
#ifndef BRN_ARENA_H
#define BRN_ARENA_H

#include <stddef.h>

typedef struct brn_arena_block brn_arena_block;
typedef struct brn_arena {
	brn_arena_block *head;
	size_t total;     /* bytes handed out so far */
	size_t limit;     /* 0: no limit; else allocations past it fail */
} brn_arena;

void brn_arena_init(brn_arena *a);
/* Zeroed memory aligned for any type, or NULL when out of memory. */
void *brn_arena_alloc(brn_arena *a, size_t n);
char *brn_arena_strdup(brn_arena *a, const char *s);
char *brn_arena_strndup(brn_arena *a, const char *s, size_t n);
/* printf into fresh arena memory. */
char *brn_arena_printf(brn_arena *a, const char *fmt, ...)
#if defined(__GNUC__)
	__attribute__((format(printf, 2, 3)))
#endif
	;
void brn_arena_free(brn_arena *a);

#endif
