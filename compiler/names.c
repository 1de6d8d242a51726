/* Model names the generated C cannot use. The model's name is the type of
 * its API and the prefix of its symbols; everything else the generated
 * code declares begins with brn_ or BRN_, so those prefixes are reserved
 * with the runtime's brnrt, and so are C's keywords, its reserved
 * identifiers and the names its headers declare. */
#include "names.h"

#include <stdlib.h>
#include <string.h>

/* C11 and C23 keywords, GNU C's, and the entry point of a program */
static const char *const keywords[] = {
	"alignas", "alignof", "asm", "auto", "bool", "break", "case", "char", "const", "constexpr",
	"continue", "default", "do", "double", "else", "enum", "extern", "false", "float", "for",
	"goto", "if", "inline", "int", "long", "nullptr", "register", "restrict", "return", "short",
	"signed", "sizeof", "static", "static_assert", "struct", "switch", "thread_local", "true",
	"typedef", "typeof", "typeof_unqual", "union", "unsigned", "void", "volatile", "while",
};

static int by_name(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

const char *brn_model_name_problem(const char *name)
{
	for (size_t i = 0; i < sizeof keywords / sizeof *keywords; i++)
		if (!strcmp(name, keywords[i]))
			return "is a C keyword";
	if (!strcmp(name, "main"))
		return "is the entry point of C programs";
	if (name[0] == '_')
		return "is reserved in C (a leading underscore)";
	if (!strncmp(name, "brn", 3) || !strncmp(name, "BRN", 3))
		return "is reserved for brnc and libbrnrt (brn..., BRN...)";
	if (!strncmp(name, "cl_", 3) || !strncmp(name, "CL_", 3) ||
	    (!strncmp(name, "cl", 2) && name[2] >= 'A' && name[2] <= 'Z'))
		return "is reserved for OpenCL (cl_..., CL_..., clX...)";
	if (bsearch(&name, brn_c_library_names, (size_t)brn_c_library_count, sizeof *brn_c_library_names, by_name))
		return "is a name of the C library";
	return NULL;
}
