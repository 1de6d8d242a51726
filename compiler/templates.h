/* Kernel templates embedded at build time (tools/embed.c writes them). */
#ifndef BRN_TEMPLATES_H
#define BRN_TEMPLATES_H

typedef struct brn_template {
	const char *name;   /* "c/conv.c", relative to templates/ */
	const char *text;
} brn_template;

extern const brn_template brn_templates[]; /* ends with {0, 0} */

/* The template's text, or NULL when there is none of that name. */
const char *brn_template_find(const char *name);

#endif
