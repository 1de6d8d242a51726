"""TAP for brnc's Python tests, as tests/tap.h is for the C ones: ok() prints
"ok N - what" on stdout and, on failure, the detail on stderr, where plain
prove shows it; done() prints the plan and says whether all passed (a test
that checks nothing fails)."""
import sys

n_test = 0
failed = 0


def ok(cond, what, detail=""):
    global n_test, failed
    n_test += 1
    print(("ok" if cond else "not ok") + " %d - %s" % (n_test, what))
    if not cond:
        failed += 1
        sys.stderr.write("#   Failed test %d: %s\n#   %s\n" % (n_test, what, detail))
    sys.stdout.flush()


def done():
    """The plan line; 0 when every check passed and there was one."""
    print("1..%d" % n_test)
    return 1 if failed or n_test == 0 else 0
