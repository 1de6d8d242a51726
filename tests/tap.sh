# tap.sh: TAP for brnc's shell tests, as tests/tap.h is for the C ones.
# Sourced; it makes a scratch directory $tmp (removed at exit) and defines
#   check STATUS DESCRIPTION [DETAIL...]  "ok N" when STATUS is 0, else
#                                         "not ok N" and the details on stderr
#   done_testing                          the plan; exits 1 if a check failed
tmp="$(mktemp -d)" || exit 1
trap 'rm -rf "$tmp"' EXIT
n=0
failed=0
check() {
	n=$((n + 1))
	if [ "$1" = 0 ]; then
		echo "ok $n - $2"
	else
		failed=$((failed + 1))
		echo "not ok $n - $2"
		shift 2
		for line in "$@"; do echo "#   $line" >&2; done
	fi
}
done_testing() {
	echo "1..$n"
	[ "$n" -gt 0 ] && [ "$failed" = 0 ]
	exit
}
