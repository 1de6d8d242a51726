/* Lookup of the kernel templates that tools/embed.c compiled in. */
#include "templates.h"

#include <string.h>

const char *brn_template_find(const char *name)
{
	for (const brn_template *t = brn_templates; t->name; t++)
		if (strcmp(t->name, name) == 0)
			return t->text;
	return NULL;
}
