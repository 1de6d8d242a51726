#!/bin/sh
# manpage.sh PROGRAM NAME SUMMARY: a man page (section 1) made from
# `PROGRAM --help` and `PROGRAM --version`, written to stdout at build time
# (make writes build/man/NAME.1; it is not kept in the repository).
prog=$1 name=$2 summary=$3
version=$("$prog" --version | sed 's/^[^ ]* //')
help=$("$prog" --help) || exit 1
upper=$(echo "$name" | tr 'a-z' 'A-Z')
printf '.TH %s 1 "" "%s %s" "User Commands"\n' "$upper" "$name" "$version"
printf '.SH NAME\n%s \\- %s\n' "$name" "$summary"
printf '.SH DESCRIPTION\n.nf\n'
# the help text as it is: backslashes escaped, no line read as a request
echo "$help" | sed -e 's/\\/\\e/g' -e "s/^\\([.']\\)/\\\\\\&\\1/"
printf '.fi\n.SH SEE ALSO\nbrnc(1), brnrun(1); the model language, the generated API and the\nruntime are described in the README.md and docs/ of brnc.\n'
