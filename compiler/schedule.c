/* Schedules: runs a Lua 5.4 script in a sandbox (base, string, table, math;
 * capped memory; a sticky instruction budget) and copies what it returns,
 * r_max(t), d_max(t) and per-layer kernel knobs, into C structs. */
#include "schedule.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

enum {
	MEM_CAP = 32 << 20,         /* bytes a script may hold */
	INSN_BUDGET = 50000000,     /* VM instructions per load, about 1 s */
	HOOK_EVERY = 1000,          /* instructions between budget checks */
	WALL_MS = 5000,             /* wall-clock limit per load: C calls cost no instructions */
	TEXT_MAX = 1 << 20,         /* largest script read */
	HORIZON = 1000000,          /* functions are sampled on steps [0, HORIZON] */
	SAMPLE_MAX = 32768          /* samples kept while fitting one function */
};

#define PW_META "brn.piecewise"
#define STR_(x) #x
#define STR(x) STR_(x)
#define TOL_TEXT STR(BRN_SCHEDULE_FIT_TOL)   /* "1e-4", as the header says it */

typedef struct ctx {
	lua_State *L;
	const char *path;
	const char *text;
	size_t text_len;
	size_t used;                /* bytes held by the Lua state */
	long left;                  /* instructions left */
	double deadline;            /* CLOCK_MONOTONIC seconds */
	int spent;                  /* budget spent: the hook raises on every instruction */
	const char *why;            /* what was spent */
	int mem_refused, mem_line;  /* the allocator said no, at this script line */
	int ret_line;               /* line of the last return from a Lua function called from C */
	int main_line;              /* ret_line when the script returned its table */
	brn_schedule *s;
	const brn_layer_desc *layers;
	int nlayers;
	brn_knobs *knobs;
} ctx;

/* What constant(), ramp() and piecewise() return. */
typedef struct pw_ud {
	brn_piecewise pw;
	int line;
} pw_ud;

double brn_piecewise_eval(const brn_piecewise *p, double t)
{
	if (p->n < 1)
		return 0;
	if (t <= p->t[0])
		return p->v[0];
	if (t >= p->t[p->n - 1])
		return p->v[p->n - 1];
	int lo = 0, hi = p->n - 1;          /* t[lo] < t < t[hi] */
	while (hi - lo > 1) {
		int mid = (lo + hi) / 2;
		if (p->t[mid] <= t)
			lo = mid;
		else
			hi = mid;
	}
	double f = (t - p->t[lo]) / (p->t[hi] - p->t[lo]);
	return p->v[lo] + f * (p->v[hi] - p->v[lo]);
}

int brn_is_float(double v)
{
	return v == 0 || (fabs(v) >= FLT_MIN && fabs(v) <= FLT_MAX);
}

void brn_piecewise_constant(brn_piecewise *p, double v)
{
	memset(p, 0, sizeof *p);
	p->n = 1;
	p->v[0] = v;
}

/* ---- the sandbox ------------------------------------------------------- */

/* The line the innermost Lua function is at, or 0. */
static int script_line(lua_State *L)
{
	lua_Debug ar;
	for (int level = 0; level < 32 && lua_getstack(L, level, &ar); level++)
		if (lua_getinfo(L, "l", &ar) && ar.currentline > 0)
			return ar.currentline;
	return 0;
}

static void *l_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
	ctx *c = ud;
	if (!ptr)
		osize = 0;
	if (nsize == 0) {
		free(ptr);
		c->used -= osize;
		return NULL;
	}
	if (nsize > osize && c->used - osize + nsize > MEM_CAP) {
		/* walking the stack reads frames only; it does not allocate */
		c->mem_refused = 1;
		c->mem_line = c->L ? script_line(c->L) : 0;
		return NULL;
	}
	void *p = realloc(ptr, nsize);
	if (p)
		c->used = c->used - osize + nsize;
	return p;
}

static ctx *get_ctx(lua_State *L)
{
	void *ud;
	lua_getallocf(L, &ud);
	return ud;
}

/* Raises "path:line: msg" (no location when line is 0). */
static int fail(lua_State *L, int line, const char *fmt, ...)
#if defined(__GNUC__)
	__attribute__((format(printf, 3, 4)))
#endif
	;
static int fail(lua_State *L, int line, const char *fmt, ...)
{
	ctx *c = get_ctx(L);
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (line > 0)
		lua_pushfstring(L, "%s:%d: %s", c->path, line, msg);
	else
		lua_pushstring(L, msg);
	return lua_error(L);
}

/* Counts instructions in chunks; once the budget is spent the hook fires on
 * every instruction, so a script that catches the error with pcall meets it
 * again at its next instruction. Also notes where Lua functions called
 * from C return, to place errors about what they returned. */
static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void hook(lua_State *L, lua_Debug *ar)
{
	ctx *c = get_ctx(L);
	if (ar->event == LUA_HOOKRET) {
		lua_Debug caller;
		if (lua_getstack(L, 1, &caller) && lua_getinfo(L, "S", &caller) &&
		    strcmp(caller.what, "C") == 0 && lua_getinfo(L, "l", ar))
			c->ret_line = ar->currentline;
		return;
	}
	if (!c->spent) {
		c->left -= HOOK_EVERY;
		if (c->left > 0 && now() < c->deadline)
			return;
		c->why = c->left > 0 ? "time limit exceeded" : "instruction limit exceeded";
		c->spent = 1;
		lua_sethook(L, hook, LUA_MASKCOUNT | LUA_MASKRET, 1);
	}
	lua_getinfo(L, "l", ar);
	fail(L, ar->currentline, "%s (runaway script?)", c->why);
}

/* ---- helpers the script calls -------------------------------------------- */

static void got(lua_State *L, int i, char *buf, size_t n)
{
	double v = lua_tonumber(L, i);
	if (lua_type(L, i) != LUA_TNUMBER)
		snprintf(buf, n, "%s", luaL_typename(L, i));
	else if (isnan(v))
		snprintf(buf, n, "nan");
	else
		snprintf(buf, n, "%g", v);
}

/* luaL_error with C's printf, so numbers print as %g does (Lua's %f adds
 * ".0" to whole numbers); Lua prefixes the caller's "path:line:". */
static int helper_error(lua_State *L, const char *fmt, ...)
#if defined(__GNUC__)
	__attribute__((format(printf, 2, 3)))
#endif
	;
static int helper_error(lua_State *L, const char *fmt, ...)
{
	char msg[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	return luaL_error(L, "%s", msg);
}

static double finite_arg(lua_State *L, int i, const char *fn, const char *what)
{
	if (lua_type(L, i) != LUA_TNUMBER || !isfinite(lua_tonumber(L, i))) {
		char g[32];
		got(L, i, g, sizeof g);
		luaL_error(L, "%s: %s must be a finite number (got %s)", fn, what, g);
	}
	return lua_tonumber(L, i);
}

/* Breakpoints are steps: whole numbers, and within 2^53 so that every one
 * is exact in a double and in the generated code's int64_t step. */
#define STEP_MAX 9007199254740992.0
#define STEP_MAX_TEXT "2^53"

static int is_step(double t)
{
	return t == floor(t) && fabs(t) <= STEP_MAX;
}

static double step_arg(lua_State *L, int i, const char *fn, const char *what)
{
	double t = finite_arg(L, i, fn, what);
	if (!is_step(t))
		helper_error(L, "%s: %s must be a whole step with |%s| <= " STEP_MAX_TEXT " (got %.15g)", fn,
		             what, what, t);
	return t;
}

static brn_piecewise *new_pw(lua_State *L)
{
	pw_ud *u = lua_newuserdatauv(L, sizeof *u, 0);
	memset(u, 0, sizeof *u);
	lua_Debug ar;
	if (lua_getstack(L, 1, &ar) && lua_getinfo(L, "l", &ar))
		u->line = ar.currentline;
	luaL_setmetatable(L, PW_META);
	return &u->pw;
}

static int l_constant(lua_State *L)
{
	double v = finite_arg(L, 1, "constant", "v");
	brn_piecewise_constant(new_pw(L), v);
	return 1;
}

static int l_ramp(lua_State *L)
{
	double t0 = step_arg(L, 1, "ramp", "t0"), t1 = step_arg(L, 2, "ramp", "t1");
	double v0 = finite_arg(L, 3, "ramp", "v0"), v1 = finite_arg(L, 4, "ramp", "v1");
	if (!(t1 > t0))
		return helper_error(L, "ramp: t1 (%g) must be greater than t0 (%g)", t1, t0);
	brn_piecewise *p = new_pw(L);
	p->n = 2;
	p->t[0] = t0, p->v[0] = v0;
	p->t[1] = t1, p->v[1] = v1;
	return 1;
}

static int l_piecewise(lua_State *L)
{
	if (!lua_istable(L, 1))
		return luaL_error(L, "piecewise: expected a table of {t, v} pairs (got %s)",
		                  luaL_typename(L, 1));
	lua_Integer n = (lua_Integer)lua_rawlen(L, 1);
	if (n < 1)
		return luaL_error(L, "piecewise: needs at least one {t, v} pair");
	if (n > BRN_PW_MAX)
		return luaL_error(L, "piecewise: too many breakpoints (%I; at most %d)", n, BRN_PW_MAX);
	brn_piecewise *p = new_pw(L);      /* at index 2 */
	for (int i = 0; i < n; i++) {
		lua_rawgeti(L, 1, i + 1);
		int pair = lua_istable(L, -1);
		if (pair) {
			lua_rawgeti(L, -1, 1);
			lua_rawgeti(L, -2, 2);
			pair = lua_type(L, -2) == LUA_TNUMBER && lua_type(L, -1) == LUA_TNUMBER &&
			       isfinite(lua_tonumber(L, -2)) && isfinite(lua_tonumber(L, -1));
			p->t[i] = lua_tonumber(L, -2);
			p->v[i] = lua_tonumber(L, -1);
			lua_pop(L, 2);
		}
		lua_pop(L, 1);
		if (!pair)
			return luaL_error(L, "piecewise: breakpoint %d must be a pair {t, v} of finite numbers",
			                  i + 1);
		if (!is_step(p->t[i]))
			return helper_error(L, "piecewise: breakpoint %d has t=%.15g; t must be a whole step "
			                    "with |t| <= " STEP_MAX_TEXT, i + 1, p->t[i]);
		if (i > 0 && !(p->t[i] > p->t[i - 1]))
			return helper_error(L, "piecewise: t must be strictly increasing (breakpoint %d has t=%g after t=%g)",
			                  i + 1, p->t[i], p->t[i - 1]);
	}
	p->n = (int)n;
	return 1;
}

/* ---- fitting a plain function of t ----------------------------------------- */

typedef struct fit {
	ctx *c;
	int fn;                /* stack index of the function */
	const char *name;
	int line;
	double *t, *v;         /* samples, t increasing */
	int n;
} fit;

static void no_fit(fit *f)
{
	fail(f->c->L, f->line, "%s: function could not be fitted with at most %d breakpoints within %s",
	     f->name, BRN_PW_MAX, TOL_TEXT);
}

static double call_at(fit *f, long t)
{
	lua_State *L = f->c->L;
	lua_pushvalue(L, f->fn);
	lua_pushinteger(L, t);
	lua_call(L, 1, 1);
	if (lua_type(L, -1) != LUA_TNUMBER || !isfinite(lua_tonumber(L, -1))) {
		char g[32];
		got(L, -1, g, sizeof g);
		fail(f->c->L, f->line, "%s: function returned %s at t=%ld (expected a finite number)",
		     f->name, g, t);
	}
	double v = lua_tonumber(L, -1);
	lua_pop(L, 1);
	return v;
}

static void add(fit *f, long t, double v)
{
	if (f->n == SAMPLE_MAX)
		no_fit(f);
	f->t[f->n] = (double)t;
	f->v[f->n] = v;
	f->n++;
}

/* Samples (a, b]: keeps the three quarter points when they lie within tol/8
 * of the chord from a to b, else halves the interval. */
static void sample(fit *f, long a, double fa, long b, double fb)
{
	if (b - a <= 4) {
		for (long t = a + 1; t < b; t++)
			add(f, t, call_at(f, t));
		add(f, b, fb);
		return;
	}
	long q[3] = {a + (b - a) / 4, a + (b - a) / 2, a + 3 * (b - a) / 4};
	double fq[3];
	int straight = 1;
	for (int i = 0; i < 3; i++) {
		fq[i] = call_at(f, q[i]);
		double chord = fa + (fb - fa) * (double)(q[i] - a) / (double)(b - a);
		if (fabs(fq[i] - chord) > BRN_SCHEDULE_FIT_TOL / 8)
			straight = 0;
	}
	if (!straight) {
		sample(f, a, fa, q[1], fq[1]);
		sample(f, q[1], fq[1], b, fb);
		return;
	}
	for (int i = 0; i < 3; i++)
		add(f, q[i], fq[i]);
	add(f, b, fb);
}

/* Greedy fit through the samples: from the last breakpoint (t0, y0), a
 * segment grows while some line through (t0, y0) stays within tol of every
 * sample it covers (the window [lo, hi] of such slopes narrows with each
 * sample); it ends on the last sample that fits, with the slope in the
 * window nearest to that sample's own value. */
static int fit_samples(const fit *f, double tol, brn_piecewise *p)
{
	double t0 = f->t[0], y0 = f->v[0];
	int k = 0;
	p->t[k] = t0, p->v[k] = y0, k++;
	for (int i = 1; i < f->n;) {
		double lo = -INFINITY, hi = INFINITY;
		int j = i;
		for (; j < f->n; j++) {
			double dt = f->t[j] - t0;
			double l = fmax(lo, (f->v[j] - tol - y0) / dt);
			double h = fmin(hi, (f->v[j] + tol - y0) / dt);
			if (l > h)
				break;
			lo = l, hi = h;
		}
		int e = j - 1;
		double s = fmin(fmax((f->v[e] - y0) / (f->t[e] - t0), lo), hi);
		y0 += s * (f->t[e] - t0);
		t0 = f->t[e];
		if (k == BRN_PW_MAX)
			return -1;
		p->t[k] = t0, p->v[k] = y0, k++;
		i = e + 1;
	}
	p->n = k;
	/* flat ends say nothing the constant extension does not */
	while (p->n > 1 && p->v[p->n - 1] == p->v[p->n - 2])
		p->n--;
	while (p->n > 1 && p->v[0] == p->v[1]) {
		memmove(p->t, p->t + 1, (size_t)(p->n - 1) * sizeof p->t[0]);
		memmove(p->v, p->v + 1, (size_t)(p->n - 1) * sizeof p->v[0]);
		p->n--;
	}
	return 0;
}

/* The samples follow the function's shape, so a function that is off only
 * at a few steps between them (t % 1000 == 7) would pass unseen. The fit
 * is checked against the function at PROBES more steps spread over the
 * horizon by a fixed generator: the bound, and the tolerance. */
static void probe(fit *f, double lo, const brn_piecewise *p)
{
	enum { PROBES = 4096 };
	unsigned long long x = 0x9e3779b97f4a7c15ull;
	for (int i = 0; i < PROBES; i++) {
		x = x * 6364136223846793005ull + 1442695040888963407ull;
		long t = (long)((x >> 33) % (HORIZON + 1));
		double v = call_at(f, t), want = brn_piecewise_eval(p, (double)t);
		if (v < lo)
			fail(f->c->L, f->line, "%s must be >= %g (is %g at t=%ld)", f->name, lo, v, t);
		if (fabs(v - want) > BRN_SCHEDULE_FIT_TOL)
			fail(f->c->L, f->line, "%s: function is %g at t=%ld, but its fit from the samples is %g "
			     "(more than %s apart); write it with piecewise{}", f->name, v, t, want, TOL_TEXT);
	}
}

/* Samples the function at index fn on [0, HORIZON] and fits it. Checks the
 * lower bound on the samples, where the script's intent is, then clamps
 * the fit, which may stray below it by up to the tolerance. */
static void fit_function(ctx *c, int fn, const char *name, int line, double lo,
                         brn_piecewise *p)
{
	enum { PIECES = 64 };       /* first cut, so broad features are not missed */
	fit f = {c, fn, name, line, NULL, NULL, 0};
	f.t = lua_newuserdatauv(c->L, 2 * SAMPLE_MAX * sizeof(double), 0);
	f.v = f.t + SAMPLE_MAX;
	double fa = call_at(&f, 0);
	add(&f, 0, fa);
	for (long k = 1; k <= PIECES; k++) {
		long a = HORIZON / PIECES * (k - 1), b = HORIZON / PIECES * k;
		double fb = call_at(&f, b);
		sample(&f, a, fa, b, fb);
		fa = fb;
	}
	for (int i = 0; i < f.n; i++)
		if (f.v[i] < lo)
			fail(c->L, line, "%s must be >= %g (is %g at t=%g)", name, lo, f.v[i], f.t[i]);
	/* 7/8 of the tolerance at the samples, 1/8 between them */
	if (fit_samples(&f, BRN_SCHEDULE_FIT_TOL * 7 / 8, p) < 0)
		no_fit(&f);
	for (int i = 0; i < p->n; i++)
		p->v[i] = fmax(p->v[i], lo);
	probe(&f, lo, p);
	lua_pop(c->L, 1);
}

/* ---- reading what the script returned ---------------------------------- */

/* The generated code computes v[i-1] + (step - t[i-1]) * slope in float:
 * every value and slope must be a float literal that means what it says. */
static void check_float(ctx *c, const char *name, int line, const brn_piecewise *p)
{
	for (int i = 0; i < p->n; i++) {
		double v = p->v[i];
		if (fabs(v) > FLT_MAX)
			fail(c->L, line, "%s must be <= %g, the largest float (is %g at t=%g)", name, FLT_MAX, v,
			     p->t[i]);
		if (!brn_is_float(v))
			fail(c->L, line, "%s must be 0 or >= %g, the smallest normal float (is %g at t=%g)", name,
			     FLT_MIN, v, p->t[i]);
		double slope = i ? (v - p->v[i - 1]) / (p->t[i] - p->t[i - 1]) : 0;
		if (!brn_is_float(slope))
			fail(c->L, line, "%s: slope %g from t=%g to t=%g is not a float (0 or %g to %g in magnitude)",
			     name, slope, p->t[i - 1], p->t[i], FLT_MIN, FLT_MAX);
	}
}

/* Reads field name of the table at index 1 into p. */
static void get_schedule(ctx *c, const char *name, double lo, brn_piecewise *p)
{
	lua_State *L = c->L;
	int line = c->main_line;
	lua_getfield(L, 1, name);
	pw_ud *u = luaL_testudata(L, -1, PW_META);
	if (u) {
		*p = u->pw;
		line = u->line;
	} else if (lua_type(L, -1) == LUA_TNUMBER) {
		if (!isfinite(lua_tonumber(L, -1)))
			fail(c->L, line, "%s must be finite", name);
		brn_piecewise_constant(p, lua_tonumber(L, -1));
	} else if (lua_isfunction(L, -1)) {
		lua_Debug ar;
		lua_pushvalue(L, -1);
		lua_getinfo(L, ">S", &ar);
		line = ar.linedefined;
		fit_function(c, lua_gettop(L), name, line, lo, p);
		c->s->fitted = 1;
	} else if (lua_isnil(L, -1)) {
		fail(c->L, line, "missing %s in the returned table", name);
	} else {
		fail(c->L, line, "%s must be a number, constant(v), ramp(t0, t1, v0, v1), "
		     "piecewise{...} or a function of t (got %s)", name, luaL_typename(L, -1));
	}
	for (int i = 0; i < p->n; i++)
		if (p->v[i] < lo)
			fail(c->L, line, "%s must be >= %g (is %g at t=%g)", name, lo, p->v[i], p->t[i]);
	check_float(c, name, line, p);
	lua_pop(L, 1);
}

static void push_layer(lua_State *L, const brn_layer_desc *l)
{
	static const char *const dims[] = {"n", "c", "h", "w"};
	lua_createtable(L, 0, 9);
	lua_pushstring(L, l->name ? l->name : "");
	lua_setfield(L, -2, "name");
	lua_pushstring(L, l->op ? l->op : "");
	lua_setfield(L, -2, "op");
	for (int i = 0; i < 4; i++) {
		lua_pushinteger(L, l->in[i]);
		lua_setfield(L, -2, dims[i]);
	}
	lua_pushinteger(L, l->out[1]);
	lua_setfield(L, -2, "out_c");
	lua_pushinteger(L, l->out[2]);
	lua_setfield(L, -2, "out_h");
	lua_pushinteger(L, l->out[3]);
	lua_setfield(L, -2, "out_w");
}

/* Reads the knobs table at the top of the stack for layer l. */
static void read_knobs(ctx *c, const brn_layer_desc *l, brn_knobs *k)
{
	static const char *const names[] = {"oc_block", "tile_w", "unroll", "wg_size", "vec_width"};
	int *slots[] = {&k->oc_block, &k->tile_w, &k->unroll, &k->wg_size, &k->vec_width};
	lua_State *L = c->L;
	const char *who = l->name ? l->name : "";
	int line = c->ret_line;
	if (lua_isnil(L, -1))
		return;
	if (!lua_istable(L, -1))
		fail(c->L, line, "kernels(layer '%s') must return a table or nil (got %s)", who,
		     luaL_typename(L, -1));
	lua_pushnil(L);
	while (lua_next(L, -2)) {
		int i = 0;
		if (lua_type(L, -2) == LUA_TSTRING)
			while (i < 5 && strcmp(lua_tostring(L, -2), names[i]) != 0)
				i++;
		if (lua_type(L, -2) != LUA_TSTRING || i == 5)
			fail(c->L, line, "kernels(layer '%s'): unknown knob '%s' (known: oc_block, tile_w, "
			     "unroll, wg_size, vec_width)", who,
			     lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : luaL_typename(L, -2));
		double v = lua_tonumber(L, -1);
		char g[32];
		got(L, -1, g, sizeof g);
		if (lua_type(L, -1) != LUA_TNUMBER || v != floor(v) || v < 1 || v > 1024)
			fail(c->L, line, "kernels(layer '%s'): %s must be an integer in 1..1024 (got %s)",
			     who, names[i], g);
		if (i == 4 && v != 1 && v != 2 && v != 4 && v != 8)
			fail(c->L, line, "kernels(layer '%s'): vec_width must be 1, 2, 4 or 8 (got %s)", who, g);
		*slots[i] = (int)v;
		lua_pop(L, 1);
	}
	/* a conv work-item keeps oc_block x tile_w accumulators in private
	 * memory (grouped convs; groups-1 convs pick their own tiles): bounded
	 * so that no target's stack or private memory overflows */
	if (k->oc_block * k->tile_w > 1024)
		fail(c->L, line, "kernels(layer '%s'): oc_block x tile_w is %d accumulators per work-item; "
		     "at most 1024", who, k->oc_block * k->tile_w);
}

static void get_kernels(ctx *c)
{
	lua_State *L = c->L;
	lua_getfield(L, 1, "kernels");
	if (lua_isnil(L, -1))
		return;
	if (!lua_isfunction(L, -1))
		fail(c->L, c->main_line, "kernels must be a function of the layer (got %s)",
		     luaL_typename(L, -1));
	for (int i = 0; c->knobs && i < c->nlayers; i++) {
		lua_pushvalue(L, -1);
		push_layer(L, &c->layers[i]);
		lua_call(L, 1, 1);
		read_knobs(c, &c->layers[i], &c->knobs[i]);
		lua_pop(L, 1);
	}
	lua_pop(L, 1);
}

/* Lua runs __gc finalizers with hooks off, so one that loops would escape
 * the instruction limit; objects are marked for finalization only here. */
static int l_setmetatable(lua_State *L)
{
	if (lua_istable(L, 2)) {
		lua_pushliteral(L, "__gc");
		if (lua_rawget(L, 2) != LUA_TNIL)
			return luaL_error(L, "setmetatable: __gc is not allowed in schedules");
		lua_pop(L, 1);
	}
	lua_pushvalue(L, lua_upvalueindex(1));
	lua_insert(L, 1);
	lua_call(L, lua_gettop(L) - 1, 1);
	return 1;
}

/* xpcall's handler runs where the error was raised; an error raised by
 * the count hook leaves hooks off there, so a handler that loops would
 * never stop. Here the handler runs after the protected call returns,
 * as an ordinary (hooked) call. */
static int l_xpcall(lua_State *L)
{
	int n = lua_gettop(L);
	luaL_checktype(L, 2, LUA_TFUNCTION);
	lua_pushvalue(L, 1);
	for (int i = 3; i <= n; i++)
		lua_pushvalue(L, i);
	int base = lua_gettop(L) - (n > 2 ? n - 2 : 0);  /* the function */
	if (lua_pcall(L, n > 2 ? n - 2 : 0, LUA_MULTRET, 0) == LUA_OK) {
		lua_pushboolean(L, 1);
		lua_insert(L, base);
		return lua_gettop(L) - base + 1;
	}
	if (get_ctx(L)->spent)
		return lua_error(L);       /* the limit's error goes on up, from where it struck */
	lua_pushvalue(L, 2);
	lua_insert(L, -2);
	(void)lua_pcall(L, 1, 1, 0);   /* an error of the handler takes its place */
	lua_pushboolean(L, 0);
	lua_insert(L, -2);
	return 2;
}

/* Functions whose work in C is not bounded by the instruction count:
 * Lua patterns backtrack exponentially (("a*"):rep(30) .. "b"), plain
 * find is O(n * m), table.move loops over any range of indices. */
static int l_unavailable(lua_State *L)
{
	return luaL_error(L, "%s is not available in schedules (its work in C has no limit)",
	                  lua_tostring(L, lua_upvalueindex(1)));
}

/* string.rep of an empty string and separator loops n times in C. */
static int l_rep(lua_State *L)
{
	size_t l, lsep = 0;
	luaL_checklstring(L, 1, &l);
	luaL_checkinteger(L, 2);
	if (!lua_isnoneornil(L, 3))
		luaL_checklstring(L, 3, &lsep);
	if (l + lsep == 0) {
		lua_pushliteral(L, "");
		return 1;
	}
	lua_pushvalue(L, lua_upvalueindex(1));
	lua_insert(L, 1);
	lua_call(L, lua_gettop(L) - 1, 1);
	return 1;
}

static void unavailable(lua_State *L, const char *lib, const char *name)
{
	lua_getglobal(L, lib);
	lua_pushfstring(L, "%s.%s", lib, name);
	lua_pushcclosure(L, l_unavailable, 1);
	lua_setfield(L, -2, name);
	lua_pop(L, 1);
}

static void sandbox(lua_State *L)
{
	static const lua_CFunction libs[] = {luaopen_base, luaopen_string, luaopen_table, luaopen_math};
	static const char *const names[] = {LUA_GNAME, LUA_STRLIBNAME, LUA_TABLIBNAME, LUA_MATHLIBNAME};
	static const char *const banned[] = {"dofile", "loadfile", "load", "require", "print", "warn"};
	for (int i = 0; i < 4; i++) {
		luaL_requiref(L, names[i], libs[i], 1);
		lua_pop(L, 1);
	}
	for (size_t i = 0; i < sizeof banned / sizeof banned[0]; i++) {
		lua_pushnil(L);
		lua_setglobal(L, banned[i]);
	}
	lua_getglobal(L, "setmetatable");
	lua_pushcclosure(L, l_setmetatable, 1);
	lua_setglobal(L, "setmetatable");
	lua_getglobal(L, LUA_STRLIBNAME);
	lua_pushnil(L);
	lua_setfield(L, -2, "dump");
	lua_getfield(L, -1, "rep");
	lua_pushcclosure(L, l_rep, 1);
	lua_setfield(L, -2, "rep");
	lua_pop(L, 1);
	static const char *const strfns[] = {"find", "match", "gmatch", "gsub"};
	for (int i = 0; i < 4; i++)
		unavailable(L, LUA_STRLIBNAME, strfns[i]);
	unavailable(L, LUA_TABLIBNAME, "move");
	lua_register(L, "xpcall", l_xpcall);
	/* the same script must give the same schedule on every run */
	lua_getglobal(L, LUA_MATHLIBNAME);
	lua_getfield(L, -1, "randomseed");
	lua_pushinteger(L, 0);
	lua_call(L, 1, 0);
	lua_pop(L, 1);

	luaL_newmetatable(L, PW_META);
	lua_pushliteral(L, "piecewise");
	lua_setfield(L, -2, "__metatable");
	lua_pop(L, 1);
	lua_register(L, "constant", l_constant);
	lua_register(L, "ramp", l_ramp);
	lua_register(L, "piecewise", l_piecewise);
}

/* The protected part: everything that touches Lua runs in here. */
static int run(lua_State *L)
{
	ctx *c = lua_touserdata(L, 1);
	lua_settop(L, 0);
	sandbox(L);
	if (luaL_loadbufferx(L, c->text, c->text_len, lua_pushfstring(L, "@%s", c->path), "t") != LUA_OK)
		return lua_error(L);
	lua_remove(L, -2);               /* the chunk name */
	lua_sethook(L, hook, LUA_MASKCOUNT | LUA_MASKRET, HOOK_EVERY);
	lua_call(L, 0, 1);
	c->main_line = c->ret_line;
	if (!lua_istable(L, 1))
		fail(c->L, c->main_line, "schedule must return a table (got %s)", luaL_typename(L, 1));
	lua_pushnil(L);
	while (lua_next(L, 1)) {
		const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;
		if (!k || (strcmp(k, "r_max") && strcmp(k, "d_max") && strcmp(k, "kernels")))
			fail(c->L, c->main_line, "unknown key '%s' in the returned table (expected r_max, "
			     "d_max, kernels)", k ? k : luaL_typename(L, -2));
		lua_pop(L, 1);
	}
	get_schedule(c, "r_max", 1, &c->s->r_max);
	get_schedule(c, "d_max", 0, &c->s->d_max);
	get_kernels(c);
	return 0;
}

static int on_error(lua_State *L)
{
	if (!lua_isstring(L, 1))
		lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
	return 1;
}

/* Splits "where:line: rest", where is path or Lua's "..." + a tail of it. */
static const char *split_where(const char *m, const char *path, int *line)
{
	size_t plen = strlen(path);
	*line = 0;
	for (const char *p = strchr(m, ':'); p; p = strchr(p + 1, ':')) {
		size_t n = (size_t)(p - m);
		int same = n == plen && strncmp(m, path, n) == 0;
		int tail = n > 3 && strncmp(m, "...", 3) == 0 && n - 3 <= plen &&
		           strncmp(m + 3, path + plen - (n - 3), n - 3) == 0;
		char *end;
		long l = strtol(p + 1, &end, 10);
		if ((same || tail) && end > p + 1 && p[1] >= '0' && p[1] <= '9' && end[0] == ':' &&
		    end[1] == ' ' && l > 0 && l < 1L << 30) {
			*line = (int)l;
			return end + 2;
		}
	}
	return m;
}

static int read_text(const char *path, char **text, size_t *len, brn_diag *d)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return brn_diag_error(d, "", 0, 0, "cannot read schedule file '%s': %s", path,
		                      strerror(errno));
	char *buf = malloc(TEXT_MAX + 1);
	if (!buf) {
		fclose(f);
		return brn_diag_error(d, "", 0, 0, "out of memory reading '%s'", path);
	}
	size_t n = fread(buf, 1, TEXT_MAX + 1, f);
	int err = ferror(f) ? errno : 0;
	fclose(f);
	if (err || n > TEXT_MAX) {
		free(buf);
		if (err)
			return brn_diag_error(d, "", 0, 0, "cannot read schedule file '%s': %s", path,
			                      strerror(err));
		return brn_diag_error(d, path, 0, 0, "schedule file larger than %d bytes", TEXT_MAX);
	}
	*text = buf;
	*len = n;
	return 0;
}

/* A spec with '/' or ending in ".lua" is a path; anything else a name. */
static int resolve(const char *spec, const char *dir, char *path, size_t n, brn_diag *d)
{
	size_t len = strlen(spec);
	int is_path = strchr(spec, '/') || (len >= 4 && strcmp(spec + len - 4, ".lua") == 0);
	int k = is_path ? snprintf(path, n, "%s", spec)
	                : snprintf(path, n, "%s/%s.lua", dir && dir[0] ? dir : ".", spec);
	if (k < 0 || (size_t)k >= n)
		return brn_diag_error(d, "", 0, 0, "schedule path too long: '%s'", spec);
	if (!is_path) {
		FILE *f = fopen(path, "rb");
		if (!f && errno == ENOENT)
			return brn_diag_error(d, "", 0, 0, "schedule '%s' not found (looked for %s)",
			                      spec, path);
		if (f)
			fclose(f);     /* other failures are read_text's to report */
	}
	return 0;
}

int brn_schedule_load(const char *spec, const char *dir, brn_schedule *s,
                      const brn_layer_desc *layers, int nlayers,
                      brn_knobs *knobs, brn_diag *d)
{
	memset(s, 0, sizeof *s);
	if (knobs && nlayers > 0)
		memset(knobs, 0, (size_t)nlayers * sizeof *knobs);
	char *text = NULL;
	size_t len = 0;
	if (resolve(spec, dir, s->path, sizeof s->path, d) < 0 ||
	    read_text(s->path, &text, &len, d) < 0)
		return -1;
	ctx c = {0};
	c.path = s->path;
	c.text = text;
	c.text_len = len;
	c.left = INSN_BUDGET;
	c.deadline = now() + WALL_MS / 1000.0;
	c.s = s;
	c.layers = layers;
	c.nlayers = nlayers;
	c.knobs = knobs;
	lua_State *L = lua_newstate(l_alloc, &c);
	if (!L) {
		free(text);
		return brn_diag_error(d, s->path, 0, 0, "cannot create a Lua state");
	}
	c.L = L;
	lua_pushcfunction(L, on_error);
	lua_pushcfunction(L, run);
	lua_pushlightuserdata(L, &c);
	int status = lua_pcall(L, 1, 0, 1), rc = 0;
	if (status != LUA_OK) {
		const char *m = lua_tostring(L, -1);
		if (c.mem_refused && (status == LUA_ERRMEM || (m && strcmp(m, "not enough memory") == 0))) {
			rc = brn_diag_error(d, s->path, c.mem_line, 0, "memory limit exceeded");
		} else {
			int line;
			const char *rest = split_where(m ? m : "error", s->path, &line);
			rc = brn_diag_error(d, s->path, line, 0, "%s", rest);
		}
	}
	lua_close(L);
	free(text);
	return rc;
}
