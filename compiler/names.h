/* Names a model cannot take: its name names the generated C API (the
 * type and the prefix of every symbol), so it must be free in C. */
#ifndef BRN_NAMES_H
#define BRN_NAMES_H

/* Why name cannot be a model's name ("is a C keyword", ...), or NULL. */
const char *brn_model_name_problem(const char *name);

/* compiler/cnames.c (tools/cnames.py): the C library's names, sorted. */
extern const char *const brn_c_library_names[];
extern const int brn_c_library_count;

#endif
