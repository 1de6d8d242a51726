/* Schedules: the shipped scripts, the helpers, fitting plain functions, the
 * knobs hook, and the sandbox refusing bad scripts with exact diagnostics.
 * Run from the repository root (prove does), where schedules/ lives. */
#include "schedule.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tap.h"

#define STR_(x) #x
#define STR(x) STR_(x)

static char dir[64];
static char path[256];

/* Writes text to dir/name; path holds the file's path. */
static const char *script(const char *name, const char *text)
{
	snprintf(path, sizeof path, "%s/%s", dir, name);
	FILE *f = fopen(path, "w");
	if (!f || fputs(text, f) < 0 || fclose(f) != 0) {
		diag("cannot write %s", path);
		exit(1);
	}
	return path;
}

static int load(const char *spec, const char *sdir, brn_schedule *s, brn_diag *d)
{
	memset(d, 0, sizeof *d);
	return brn_schedule_load(spec, sdir, s, NULL, 0, NULL, d);
}

/* Loads text as a script and checks the exact diagnostic. */
static void bad(const char *what, const char *text, int line, const char *msg)
{
	brn_schedule s;
	brn_diag d;
	script("bad.lua", text);
	is_int(load(path, NULL, &s, &d), -1, "%s: refused", what);
	is_str(d.file, path, "%s: file", what);
	is_int(d.line, line, "%s: line", what);
	is_str(d.msg, msg, "%s: message", what);
}

static void good(const char *what, const char *text, brn_schedule *s)
{
	brn_diag d;
	script("good.lua", text);
	int rc = load(path, NULL, s, &d);
	if (!ok(rc == 0, "%s: loads", what))
		diag("%s:%d: %s", d.file, d.line, d.msg);
}

/* Largest |fit - want| over steps 0, step, 2 step, ... up to 1e6. */
static double max_err(const brn_piecewise *p, double (*want)(double), int step)
{
	double worst = 0;
	for (int t = 0; t <= 1000000; t += step)
		worst = fmax(worst, fabs(brn_piecewise_eval(p, t) - want(t)));
	return worst;
}

static double lin(double t) { return 1 + 2 * fmin(t / 10000, 1); }
static double smooth(double t) { return 1 + 0.5 * (1 - exp(-t / 20000)); }
static double step5k(double t) { return t < 5000 ? 1 : 2; }
static double zero(double t) { (void)t; return 0; }

static void test_piecewise(void)
{
	brn_piecewise p;
	brn_piecewise_constant(&p, 2.5);
	is_int(p.n, 1, "constant: one breakpoint");
	is_double_within(brn_piecewise_eval(&p, -5), 2.5, 0, "constant before");
	is_double_within(brn_piecewise_eval(&p, 1e9), 2.5, 0, "constant after");
	p.n = 3;
	p.t[0] = 10, p.v[0] = 1;
	p.t[1] = 20, p.v[1] = 3;
	p.t[2] = 40, p.v[2] = 2;
	is_double_within(brn_piecewise_eval(&p, 0), 1, 0, "eval before first breakpoint");
	is_double_within(brn_piecewise_eval(&p, 15), 2, 1e-12, "eval between breakpoints");
	is_double_within(brn_piecewise_eval(&p, 20), 3, 0, "eval at a breakpoint");
	is_double_within(brn_piecewise_eval(&p, 30), 2.5, 1e-12, "eval on the second segment");
	is_double_within(brn_piecewise_eval(&p, 99), 2, 0, "eval after last breakpoint");
}

static void test_shipped(void)
{
	brn_schedule s;
	brn_diag d;
	is_int(load("paper", "schedules", &s, &d), 0, "paper.lua loads");
	is_str(s.path, "schedules/paper.lua", "paper resolves to schedules/paper.lua");
	is_int(s.fitted, 0, "paper.lua needs no fitting");
	static const double t[] = {0, 5000, 22500, 40000, 1e6};
	static const double r[] = {1, 1, 2, 3, 3}, dm[] = {0, 0, 4.375, 5, 5};
	for (int i = 0; i < 5; i++) {
		is_double_within(brn_piecewise_eval(&s.r_max, t[i]), r[i], 1e-12, "paper r_max(%g)", t[i]);
		is_double_within(brn_piecewise_eval(&s.d_max, t[i]), dm[i], 1e-12, "paper d_max(%g)", t[i]);
	}
	is_int(load("schedules/bn.lua", NULL, &s, &d), 0, "bn.lua loads by path");
	is_int(s.r_max.n, 1, "bn r_max is a constant");
	is_int(s.d_max.n, 1, "bn d_max is a constant");
	is_double_within(brn_piecewise_eval(&s.r_max, 123456), 1, 0, "bn r_max = 1");
	is_double_within(brn_piecewise_eval(&s.d_max, 123456), 0, 0, "bn d_max = 0");
}

static void test_helpers(void)
{
	brn_schedule s;
	good("piecewise", "return {\n"
	     "  r_max = piecewise{{0, 1}, {1000, 2}, {3000, 2.5}},\n"
	     "  d_max = 0.25,\n}\n", &s);
	is_int(s.r_max.n, 3, "piecewise: three breakpoints");
	is_double_within(brn_piecewise_eval(&s.r_max, 500), 1.5, 1e-12, "piecewise at 500");
	is_double_within(brn_piecewise_eval(&s.r_max, 2000), 2.25, 1e-12, "piecewise at 2000");
	is_double_within(brn_piecewise_eval(&s.r_max, 9000), 2.5, 0, "piecewise after the last");
	is_double_within(brn_piecewise_eval(&s.d_max, 9000), 0.25, 0, "a number is a constant");
	is_int(s.fitted, 0, "helpers are not fitted");
}

static void test_functions(void)
{
	brn_schedule s;
	good("linear function", "return {\n"
	     "  r_max = function(t) return 1 + 2*math.min(t/10000, 1) end,\n"
	     "  d_max = function(t) return 0 end,\n}\n", &s);
	is_int(s.fitted, 1, "linear function: fitted");
	ok(s.r_max.n >= 2 && s.r_max.n <= 3, "linear function: %d breakpoints", s.r_max.n);
	is_int(s.d_max.n, 1, "zero function: one breakpoint");
	is_double_within(max_err(&s.r_max, lin, 7), 0, BRN_SCHEDULE_FIT_TOL, "linear function: within tolerance");
	is_double_within(max_err(&s.d_max, zero, 1000), 0, 0, "zero function: exact");

	good("smooth function", "return {\n"
	     "  r_max = function(t) return 1 + 0.5*(1 - math.exp(-t/20000)) end,\n"
	     "  d_max = 0,\n}\n", &s);
	ok(s.r_max.n <= BRN_PW_MAX, "smooth function: %d breakpoints", s.r_max.n);
	is_double_within(max_err(&s.r_max, smooth, 3), 0, BRN_SCHEDULE_FIT_TOL, "smooth function: within tolerance");

	good("step function", "return {\n"
	     "  r_max = function(t) if t < 5000 then return 1 else return 2 end end,\n"
	     "  d_max = 0,\n}\n", &s);
	is_double_within(max_err(&s.r_max, step5k, 1), 0, BRN_SCHEDULE_FIT_TOL, "step function: within tolerance");
	is_double_within(brn_piecewise_eval(&s.r_max, 4999), 1, 0, "step function: 1 at 4999");
	is_double_within(brn_piecewise_eval(&s.r_max, 5000), 2, 0, "step function: 2 at 5000");

	bad("no fit", "return {\n"
	    "  r_max = function(t) return 1 + 2*(1 - math.exp(-t/20000)) end,\n"
	    "  d_max = 0,\n}\n",
	    2, "r_max: function could not be fitted with at most 64 breakpoints within " STR(BRN_SCHEDULE_FIT_TOL));
	bad("function returns a string", "return {\n  r_max = 1,\n  d_max = function(t)\n"
	    "    return 'x'\n  end,\n}\n",
	    3, "d_max: function returned string at t=0 (expected a finite number)");
	bad("function returns nan", "return {\n  r_max = function(t) return 0/0 end,\n"
	    "  d_max = 0,\n}\n",
	    2, "r_max: function returned nan at t=0 (expected a finite number)");
	/* off only at steps the sampling skips: found by the probes */
	bad("below the bound between samples", "return {\n"
	    "  r_max = function(t) if t % 1000 == 7 then return 0 end return 1 end,\n  d_max = 0,\n}\n",
	    2, "r_max must be >= 1 (is 0 at t=187007)");
	bad("spike between samples", "return {\n  r_max = 1,\n"
	    "  d_max = function(t) if t % 1000 == 7 then return 5 end return 0 end,\n}\n",
	    3, "d_max: function is 5 at t=187007, but its fit from the samples is 0 (more than "
	    STR(BRN_SCHEDULE_FIT_TOL) " apart); write it with piecewise{}");
	bad("function below the bound", "return {\n  r_max = 1,\n"
	    "  d_max = function(t) return t - 1 end,\n}\n",
	    3, "d_max must be >= 0 (is -1 at t=0)");
}

static void test_knobs(void)
{
	static const brn_layer_desc layers[] = {
		{"c1", "conv", {8, 1, 28, 28}, {8, 16, 28, 28}},
		{"d1", "dense", {8, 16, 1, 1}, {8, 10, 1, 1}},
	};
	brn_knobs k[2];
	brn_schedule s;
	brn_diag d;
	memset(&d, 0, sizeof d);
	script("knobs.lua", "return {\n  r_max = 1, d_max = 0,\n"
	       "  kernels = function(l)\n"
	       "    if l.op == 'conv' then\n"
	       "      return {oc_block = l.out_c // 4, tile_w = l.out_w // 2, unroll = l.c + l.n,\n"
	       "              wg_size = l.h * 2 + l.w, vec_width = 8}\n"
	       "    end\n"
	       "    assert(l.name == 'd1' and l.out_h == 1)\n"
	       "  end,\n}\n");
	is_int(brn_schedule_load(path, NULL, &s, layers, 2, k, &d), 0, "knobs: loads");
	is_int(k[0].oc_block, 4, "knobs: c1 oc_block");
	is_int(k[0].tile_w, 14, "knobs: c1 tile_w");
	is_int(k[0].unroll, 9, "knobs: c1 unroll");
	is_int(k[0].wg_size, 84, "knobs: c1 wg_size");
	is_int(k[0].vec_width, 8, "knobs: c1 vec_width");
	ok(!k[1].oc_block && !k[1].tile_w && !k[1].unroll && !k[1].wg_size && !k[1].vec_width,
	   "knobs: nil gives d1 the defaults");

	memset(&d, 0, sizeof d);
	k[0].unroll = 7;
	is_int(brn_schedule_load("paper", "schedules", &s, layers, 1, k, &d), 0, "no kernels: loads");
	is_int(k[0].unroll, 0, "no kernels: defaults");

	static const struct { const char *ret, *msg; } cases[] = {
		{"{tile = 4}", "kernels(layer 'c1'): unknown knob 'tile' (known: oc_block, tile_w, unroll, wg_size, vec_width)"},
		{"{vec_width = 3}", "kernels(layer 'c1'): vec_width must be 1, 2, 4 or 8 (got 3)"},
		{"{unroll = 0}", "kernels(layer 'c1'): unroll must be an integer in 1..1024 (got 0)"},
		{"{oc_block = 1024, tile_w = 1024}",
		 "kernels(layer 'c1'): oc_block x tile_w is 1048576 accumulators per work-item; at most 1024"},
		{"{wg_size = 1.5}", "kernels(layer 'c1'): wg_size must be an integer in 1..1024 (got 1.5)"},
		{"{oc_block = '4'}", "kernels(layer 'c1'): oc_block must be an integer in 1..1024 (got string)"},
		{"4", "kernels(layer 'c1') must return a table or nil (got number)"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char text[256];
		snprintf(text, sizeof text, "return {\n  r_max = 1, d_max = 0,\n"
		         "  kernels = function(l)\n    return %s\n  end,\n}\n", cases[i].ret);
		script("bad.lua", text);
		memset(&d, 0, sizeof d);
		is_int(brn_schedule_load(path, NULL, &s, layers, 2, k, &d), -1, "bad knob %s: refused", cases[i].ret);
		is_int(d.line, 4, "bad knob %s: line of the return", cases[i].ret);
		is_str(d.msg, cases[i].msg, "bad knob %s: message", cases[i].ret);
	}
}

static void test_sandbox(void)
{
	bad("syntax error", "return {\n  r_max = 1 +,\n}\n", 2, "unexpected symbol near ','");
	bad("runtime error", "local x\nreturn x.y\n", 2, "attempt to index a nil value (local 'x')");
	bad("error()", "\nerror('boom')\n", 2, "boom");
	bad("error() with a table", "error({})\n", 0, "(error object is a table value)");
	bad("io", "return io.open('/etc/passwd')\n", 1, "attempt to index a nil value (global 'io')");
	bad("os", "\nos.exit(1)\n", 2, "attempt to index a nil value (global 'os')");
	bad("require", "require('os')\n", 1, "attempt to call a nil value (global 'require')");
	bad("dofile", "dofile('/etc/passwd')\n", 1, "attempt to call a nil value (global 'dofile')");
	bad("loadfile", "loadfile('/etc/passwd')\n", 1, "attempt to call a nil value (global 'loadfile')");
	bad("load", "load('return 1')\n", 1, "attempt to call a nil value (global 'load')");
	bad("print", "print('hi')\n", 1, "attempt to call a nil value (global 'print')");
	bad("string.dump", "string.dump(ramp)\n", 1, "attempt to call a nil value (field 'dump')");
	bad("binary chunk", "\x1bLua", 0, "attempt to load a binary chunk (mode is 't')");
	bad("infinite loop", "local n = 0\nwhile true do n = n + 1 end\n", 2,
	    "instruction limit exceeded (runaway script?)");
	bad("infinite loop in pcall", "\nwhile true do pcall(function() while true do end end) end\n", 2,
	    "instruction limit exceeded (runaway script?)");
	bad("unbounded memory", "local t = {}\nfor i = 1, 1e9 do t[i] = i end\n", 2, "memory limit exceeded");
	bad("string.rep bomb", "\n\nlocal s = string.rep('x', 1e9)\n", 3, "memory limit exceeded");
	brn_schedule s;
	bad("finalizer", "\nsetmetatable({}, {__gc = function() while true do end end})\n", 2,
	    "setmetatable: __gc is not allowed in schedules");
	good("setmetatable still works", "local mt = {__index = function(t, k) return 1 end}\n"
	     "local t = setmetatable({}, mt)\nreturn {r_max = t.x, d_max = 0}\n", &s);
	good("sandbox keeps collectgarbage", "collectgarbage('stop')\nreturn {r_max = 1, d_max = 0}\n", &s);
	/* C functions and handlers the instruction count does not reach */
	bad("xpcall handler loops", "\nxpcall(function() while true do end end, function() while true do end end)\n"
	    "return {r_max = 1, d_max = 0}\n", 2, "instruction limit exceeded (runaway script?)");
	good("xpcall still works", "local ok, e = xpcall(function(a, b) error(a .. b, 0) end, function(m) return 'h: ' .. m end, 'x', 'y')\n"
	     "assert(ok == false and e == 'h: xy')\n"
	     "local ok2, r1, r2 = xpcall(function(a) return a, 2 end, error, 7)\n"
	     "assert(ok2 == true and r1 == 7 and r2 == 2)\n"
	     "local ok3, e3 = xpcall(error, function() error('again', 0) end, 'first')\n"
	     "assert(ok3 == false and e3 == 'again')\n"
	     "return {r_max = 1, d_max = 0}\n", &s);
	bad("pattern backtracking", "local s = string.rep('a', 5000)\nlocal r = s:find(string.rep('a*', 30) .. 'b')\n", 2,
	    "string.find is not available in schedules (its work in C has no limit)");
	bad("lazy pattern", "local s = string.rep('a', 100000)\n\nlocal r = s:match('.-.-.-.-.-.-.-.-b')\n", 3,
	    "string.match is not available in schedules (its work in C has no limit)");
	bad("gsub", "('x'):gsub('.', 'y')\n", 1, "string.gsub is not available in schedules (its work in C has no limit)");
	bad("gmatch", "string.gmatch('x', '.')\n", 1, "string.gmatch is not available in schedules (its work in C has no limit)");
	bad("table.move", "table.move({}, 1, 1e15, 2)\n", 1, "table.move is not available in schedules (its work in C has no limit)");
	good("string.rep of nothing", "assert(string.rep('', 1e15) == '' and ('x'):rep(0) == '' and ('ab'):rep(2, ',') == 'ab,ab')\n"
	     "assert(string.rep('', 1e15, '') == '')\nreturn {r_max = 1, d_max = 0}\n", &s);
	bad("slow C calls", "local s = string.rep('x', 1e7)\nwhile true do local t = s:upper() end\n", 2,
	    "time limit exceeded (runaway script?)");
	bad("string doubling", "local s = 'x'\nwhile true do\n  s = s .. s\nend\n", 3, "memory limit exceeded");
}

static void test_results(void)
{
	bad("returns a number", "return 42\n", 1, "schedule must return a table (got number)");
	bad("returns nothing", "local x = 1\n", 1, "schedule must return a table (got nil)");
	bad("missing r_max", "local d = 0\nreturn {d_max = d}\n", 2, "missing r_max in the returned table");
	/* a return's line is that of its last token */
	bad("missing d_max", "return {\n  r_max = 2,\n}\n", 3, "missing d_max in the returned table");
	bad("missing d_max after a function", "return {\n  r_max = function(t)\n    return 1\n  end,\n}\n", 5,
	    "missing d_max in the returned table");
	bad("unknown key", "return {r_max = 1, d_max = 0, rmax = 2}\n", 1,
	    "unknown key 'rmax' in the returned table (expected r_max, d_max, kernels)");
	bad("r_max < 1", "return {\n  r_max = ramp(0, 100, 0.5, 2),\n  d_max = 0,\n}\n", 2,
	    "r_max must be >= 1 (is 0.5 at t=0)");
	bad("r_max number < 1", "return {r_max = 0.5, d_max = 0}\n", 1, "r_max must be >= 1 (is 0.5 at t=0)");
	bad("d_max < 0", "return {\n  r_max = 1,\n  d_max = constant(-1),\n}\n", 3,
	    "d_max must be >= 0 (is -1 at t=0)");
	bad("r_max a string", "return {r_max = 'x', d_max = 0}\n", 1,
	    "r_max must be a number, constant(v), ramp(t0, t1, v0, v1), piecewise{...} or a function of t (got string)");
	bad("ramp backwards", "local a = 1\nlocal r = ramp(10, 5, 1, 2)\n", 2,
	    "ramp: t1 (5) must be greater than t0 (10)");
	bad("ramp nan", "ramp(0, 0/0, 1, 2)\n", 1, "ramp: t1 must be a finite number (got nan)");
	bad("ramp string", "ramp(0, 10, 'a', 2)\n", 1, "ramp: v0 must be a finite number (got string)");
	bad("constant inf", "constant(math.huge)\n", 1, "constant: v must be a finite number (got inf)");
	bad("piecewise not increasing", "\npiecewise{{0, 1}, {200, 2}, {100, 3}}\n", 2,
	    "piecewise: t must be strictly increasing (breakpoint 3 has t=100 after t=200)");
	bad("piecewise bad pair", "piecewise{{0, 1}, {200}}\n", 1,
	    "piecewise: breakpoint 2 must be a pair {t, v} of finite numbers");
	bad("piecewise empty", "piecewise{}\n", 1, "piecewise: needs at least one {t, v} pair");
	bad("piecewise too long", "local p = {}\nfor i = 1, 65 do p[i] = {i, 1} end\npiecewise(p)\n", 3,
	    "piecewise: too many breakpoints (65; at most 64)");
}

/* What the generated code holds as float literals: values and slopes in
 * float range and normal; breakpoints whole steps it can compare exactly. */
static void test_floats(void)
{
	brn_schedule s;
	bad("value beyond float", "return {r_max = piecewise{{0, 1e308}, {1, 1}}, d_max = 0}\n", 1,
	    "r_max must be <= 3.40282e+38, the largest float (is 1e+308 at t=0)");
	bad("ramp beyond float", "return {\n  r_max = 1,\n  d_max = ramp(0, 10, 1e308, 0),\n}\n", 3,
	    "d_max must be <= 3.40282e+38, the largest float (is 1e+308 at t=0)");
	bad("number beyond float", "return {r_max = 1e39, d_max = 0}\n", 1,
	    "r_max must be <= 3.40282e+38, the largest float (is 1e+39 at t=0)");
	bad("function beyond float", "return {\n  r_max = function(t) return 1e300 end,\n  d_max = 0,\n}\n", 2,
	    "r_max must be <= 3.40282e+38, the largest float (is 1e+300 at t=0)");
	bad("subnormal value", "return {r_max = 1, d_max = 1e-40}\n", 1,
	    "d_max must be 0 or >= 1.17549e-38, the smallest normal float (is 1e-40 at t=0)");
	bad("subnormal slope", "return {r_max = 1, d_max = ramp(0, 1000000, 0, 1e-35)}\n", 1,
	    "d_max: slope 1e-41 from t=0 to t=1e+06 is not a float (0 or 1.17549e-38 to 3.40282e+38 in magnitude)");
	bad("infinite slope", "return {r_max = piecewise{{0, 1}, {1e-300, 1e308}}, d_max = 0}\n", 1,
	    "piecewise: breakpoint 2 has t=1e-300; t must be a whole step with |t| <= 2^53");
	bad("fractional breakpoint", "return {r_max = piecewise{{0.2, 1}, {0.7, 3}, {5, 5}}, d_max = 0}\n", 1,
	    "piecewise: breakpoint 1 has t=0.2; t must be a whole step with |t| <= 2^53");
	bad("huge breakpoint", "return {r_max = piecewise{{-1e300, 1}, {1e300, 3}}, d_max = 0}\n", 1,
	    "piecewise: breakpoint 1 has t=-1e+300; t must be a whole step with |t| <= 2^53");
	bad("breakpoint past 2^53", "return {r_max = piecewise{{0, 1}, {2^53 * 2, 3}}, d_max = 0}\n", 1,
	    "piecewise: breakpoint 2 has t=1.8014398509482e+16; t must be a whole step with |t| <= 2^53");
	bad("fractional ramp", "\nramp(0, 10.5, 1, 2)\n", 2, "ramp: t1 must be a whole step with |t1| <= 2^53 (got 10.5)");
	good("breakpoint at 2^53", "return {r_max = piecewise{{-2^53, 1}, {0, 2}, {2^53, 3}}, d_max = 0}\n", &s);
	is_double_within(s.r_max.t[2], 9007199254740992.0, 0, "breakpoint at 2^53: exact");
	good("largest float", "return {r_max = ramp(0, 1, 1, 3.4028234663852886e38), d_max = 1.1754943508222875e-38}\n", &s);
}

static void test_resolve(void)
{
	brn_schedule s;
	brn_diag d;
	char want[512];
	is_int(load("nosuch", dir, &s, &d), -1, "unknown name: refused");
	snprintf(want, sizeof want, "schedule 'nosuch' not found (looked for %s/nosuch.lua)", dir);
	is_str(d.msg, want, "unknown name: message");
	is_str(d.file, "", "unknown name: no file (the caller has the location)");
	snprintf(path, sizeof path, "%s/missing.lua", dir);
	is_int(load(path, NULL, &s, &d), -1, "missing file: refused");
	snprintf(want, sizeof want, "cannot read schedule file '%s': No such file or directory", path);
	is_str(d.msg, want, "missing file: message");
	script("mine.lua", "return {r_max = 2, d_max = 1}\n");
	is_int(load("mine", dir, &s, &d), 0, "a name resolves in dir");
	is_double_within(brn_piecewise_eval(&s.r_max, 0), 2, 0, "and runs that script");
}

int main(void)
{
	snprintf(dir, sizeof dir, "/tmp/t_schedule.XXXXXX");
	if (!mkdtemp(dir)) {
		diag("mkdtemp failed");
		return 1;
	}
	test_piecewise();
	test_shipped();
	test_helpers();
	test_functions();
	test_knobs();
	test_sandbox();
	test_results();
	test_floats();
	test_resolve();
	static const char *const files[] = {"bad.lua", "good.lua", "knobs.lua", "mine.lua"};
	for (int i = 0; i < 4; i++) {
		snprintf(path, sizeof path, "%s/%s", dir, files[i]);
		unlink(path);
	}
	rmdir(dir);
	return done_testing();
}
