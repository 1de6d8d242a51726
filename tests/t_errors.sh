#!/bin/bash
# t_errors.sh: brnc on bad input. Each case is a small model written here;
# the check is the exact first line brnc prints (brnc: file:line:col: error: ...),
# the caret line for some, and the exit status (1 input, 2 usage). TAP.
export LC_ALL=C
BRNC="$(realpath "${BRN_BUILD:-build}/brnc")"
. tests/tap.sh # check STATUS (0 passes), done_testing, $tmp
mkdir -p "$tmp/schedules"
cp schedules/*.lua "$tmp/schedules/"
export BRN_SCHEDULES="$tmp/schedules"
cd "$tmp" || exit 1

# run NAME [options]: compiles NAME.brn; sets rc, first (stderr line 1), caret (line 3).
run() {
	local name=$1
	shift
	"$BRNC" --emit graph "$@" "$name.brn" >out.txt 2>err.txt
	rc=$?
	first=$(sed -n 1p err.txt)
	caret=$(sed -n 3p err.txt)
}

# bad NAME 'first line' [caret] < model: an input error (exit 1). With
# "caret", also the source line and a caret under the column of the message.
bad() {
	local name=$1 want=$2 want_caret=''
	cat >"$name.brn"
	run "$name"
	if [ "$3" = caret ]; then
		local line col
		line=$(echo "$want" | cut -d: -f2)
		col=$(echo "$want" | cut -d: -f3)
		want_caret="$(printf '  %*s^' $((col - 1)) '')"
		[ "$(sed -n 2p err.txt)" = "  $(sed -n "${line}p" "$name.brn")" ] || want_caret="(source line differs)"
	fi
	local pass=1
	# besides the source line and the caret (indented), every line names the program
	if [ "$rc" = 1 ] && [ "$first" = "brnc: $want" ] && { [ -z "$want_caret" ] || [ "$caret" = "$want_caret" ]; } &&
		! grep -qv '^brnc: \|^  ' err.txt; then
		pass=0
	fi
	check $pass "$name: $want" "exit status $rc (expected 1)" "got:      $first" "expected: brnc: $want" \
		"caret:    '$caret'" "expected: '$want_caret'"
}

# good NAME < model: compiles (exit 0, nothing on stderr).
good() {
	cat >"$1.brn"
	run "$1"
	check $([ "$rc" = 0 ] && [ ! -s err.txt ] && echo 0) "$1 compiles" "exit $rc: $first"
}

# bytes NAME 'first line' PRINTF-FORMAT: a model with bytes a heredoc cannot hold.
bytes() {
	local name=$1 want=$2
	# shellcheck disable=SC2059
	bad "$name" "$want" < <(printf "$3")
}

# usage 'first line' ARGS...: a usage error (exit 2).
usage() {
	local want=$1
	shift
	"$BRNC" "$@" >out.txt 2>err.txt
	local rc=$? got
	got=$(sed -n 1p err.txt)
	check $([ "$rc" = 2 ] && [ "$got" = "$want" ] && ! grep -qv '^brnc: ' err.txt && echo 0) "usage: brnc $*" \
		"exit status $rc (expected 2)" "got:      $got" "expected: $want"
}

# --- lexical -------------------------------------------------------------------
bad empty 'empty.brn:1:1: error: empty model; expected '\''model NAME;'\'' first' </dev/null
bad comments 'comments.brn:1:1: error: empty model; expected '\''model NAME;'\'' first' <<'EOF'
# a comment
   # and another
EOF
bytes binary 'binary.brn:1:1: error: unexpected byte 0x7f (model files are ASCII text)' '\177ELF\002\001\001\000\000'
bytes nul 'nul.brn:3:13: error: NUL byte in model text' 'model m;\ninput x[1, 8, 8];\nc = relu(x);\000\n'
bytes nonascii 'nonascii.brn:3:2: error: unexpected byte 0xc3 (model files are ASCII text)' \
	'model m;\ninput x[1, 8, 8];\nc\303\251 = relu(x);\n'
bad character 'character.brn:3:2: error: unexpected character '\''.'\''' caret <<'EOF'
model m;
input x[1, 8, 8];
c.d = relu(x);
EOF
bad unterminated 'unterminated.brn:2:10: error: unterminated string; expected a closing '\''"'\'' on the same line' caret <<'EOF'
model m;
schedule "paper;
input x[1, 8, 8];
EOF
bad int_overflow 'int_overflow.brn:2:7: error: integer 99999999999 is too large (at most 2147483647)' <<'EOF'
model m;
batch 99999999999;
EOF
bad float_range 'float_range.brn:3:23: error: number 1e999 is out of range' <<'EOF'
model m;
input x[1, 8, 8];
b = batch_norm(x, eps=1e999);
EOF
bad exponent 'exponent.brn:3:24: error: malformed number: exponent has no digits' <<'EOF'
model m;
input x[1, 8, 8];
b = batch_norm(x, eps=1e);
EOF
bad digits_letter 'digits_letter.brn:3:14: error: malformed number: unexpected '\''x'\'' after digits' caret <<'EOF'
model m;
input x[1, 8, 8];
c = conv(x, 3x);
EOF
bad two_dots 'two_dots.brn:3:26: error: malformed number: unexpected '\''.'\'' after digits' <<'EOF'
model m;
input x[1, 8, 8];
b = batch_norm(x, eps=1.2.3);
EOF
bad long_name 'long_name.brn:3:1: error: name is too long (at most 128 characters)' <<EOF
model m;
input x[1, 8, 8];
$(printf 'a%.0s' {1..129}) = relu(x);
EOF

# --- syntax --------------------------------------------------------------------
bad missing_semi 'missing_semi.brn:4:1: error: unexpected name '\''d'\''; expected '\'';'\''' caret <<'EOF'
model m;
input x[1, 8, 8];
c = relu(x)
d = relu(c);
EOF
bad missing_rparen 'missing_rparen.brn:3:11: error: unexpected '\'';'\''; expected '\'','\'' or '\'')'\''' caret <<'EOF'
model m;
input x[1, 8, 8];
c = relu(x;
EOF
bad missing_rbracket 'missing_rbracket.brn:3:28: error: unexpected '\'')'\''; expected '\'','\'' or '\'']'\''' <<'EOF'
model m;
input x[1, 8, 8];
c = conv(x, 8, kernel=[3, 3);
EOF
bad stray_rparen 'stray_rparen.brn:3:12: error: unexpected '\'')'\''; expected '\'';'\''' <<'EOF'
model m;
input x[1, 8, 8];
c = relu(x));
EOF
bad missing_assign 'missing_assign.brn:3:3: error: unexpected name '\''relu'\''; expected '\''='\''' <<'EOF'
model m;
input x[1, 8, 8];
c relu(x);
EOF
bad missing_paren 'missing_paren.brn:3:10: error: unexpected name '\''x'\''; expected '\''('\'' or '\'';'\''' <<'EOF'
model m;
input x[1, 8, 8];
c = relu x;
EOF
bad eof 'eof.brn:3:11: error: unexpected end of file; expected '\'','\'' or '\'')'\''' caret < <(printf 'model m;\ninput x[1, 8, 8];\nc = relu(x')
bad eof_expr 'eof_expr.brn:3:4: error: unexpected end of file; expected an expression' caret <<'EOF'
model m;
input x[1, 8, 8];
c =
EOF
bad keyword_name 'keyword_name.brn:1:7: error: unexpected keyword '\''input'\''; expected a name' <<'EOF'
model input;
EOF
bad number_name 'number_name.brn:1:7: error: unexpected number 3; expected a name' <<'EOF'
model 3;
EOF
# model names the generated C cannot take (its API is named after the model; t_names.sh)
bad name_int 'name_int.brn:1:7: error: model name '\''int'\'' is a C keyword; expected a name free in C (the generated API takes it)' caret <<'EOF'
model int;
EOF
bad name_float 'name_float.brn:1:7: error: model name '\''float'\'' is a C keyword; expected a name free in C (the generated API takes it)' caret <<'EOF'
model float;
EOF
bad name_auto 'name_auto.brn:1:7: error: model name '\''auto'\'' is a C keyword; expected a name free in C (the generated API takes it)' caret <<'EOF'
model auto;
EOF
bad name_restrict 'name_restrict.brn:1:7: error: model name '\''restrict'\'' is a C keyword; expected a name free in C (the generated API takes it)' caret <<'EOF'
model restrict;
EOF
bad name_bool 'name_bool.brn:1:7: error: model name '\''bool'\'' is a C keyword; expected a name free in C (the generated API takes it)' caret <<'EOF'
model bool;
EOF
bad name_exp 'name_exp.brn:1:7: error: model name '\''exp'\'' is a name of the C library; expected a name free in C (the generated API takes it)' caret <<'EOF'
model exp;
EOF
bad name_log 'name_log.brn:1:7: error: model name '\''log'\'' is a name of the C library; expected a name free in C (the generated API takes it)' caret <<'EOF'
model log;
EOF
bad name_free 'name_free.brn:1:7: error: model name '\''free'\'' is a name of the C library; expected a name free in C (the generated API takes it)' caret <<'EOF'
model free;
EOF
bad name_sqrtf 'name_sqrtf.brn:1:7: error: model name '\''sqrtf'\'' is a name of the C library; expected a name free in C (the generated API takes it)' caret <<'EOF'
model sqrtf;
EOF
bad name_memcpy 'name_memcpy.brn:1:7: error: model name '\''memcpy'\'' is a name of the C library; expected a name free in C (the generated API takes it)' caret <<'EOF'
model memcpy;
EOF
bad name_size_t 'name_size_t.brn:1:7: error: model name '\''size_t'\'' is a name of the C library; expected a name free in C (the generated API takes it)' caret <<'EOF'
model size_t;
EOF
bad name_stdin 'name_stdin.brn:1:7: error: model name '\''stdin'\'' is a name of the C library; expected a name free in C (the generated API takes it)' caret <<'EOF'
model stdin;
EOF
bad name_NAN 'name_NAN.brn:1:7: error: model name '\''NAN'\'' is a name of the C library; expected a name free in C (the generated API takes it)' caret <<'EOF'
model NAN;
EOF
bad name_timespec 'name_timespec.brn:1:7: error: model name '\''timespec'\'' is a name of the C library; expected a name free in C (the generated API takes it)' caret <<'EOF'
model timespec;
EOF
bad name_brnrt 'name_brnrt.brn:1:7: error: model name '\''brnrt'\'' is reserved for brnc and libbrnrt (brn..., BRN...); expected a name free in C (the generated API takes it)' caret <<'EOF'
model brnrt;
EOF
bad name_brnrt_st 'name_brnrt_st.brn:1:7: error: model name '\''brnrt_st'\'' is reserved for brnc and libbrnrt (brn..., BRN...); expected a name free in C (the generated API takes it)' caret <<'EOF'
model brnrt_st;
EOF
bad name_brnrt_pool 'name_brnrt_pool.brn:1:7: error: model name '\''brnrt_pool'\'' is reserved for brnc and libbrnrt (brn..., BRN...); expected a name free in C (the generated API takes it)' caret <<'EOF'
model brnrt_pool;
EOF
bad name_brnrt_error 'name_brnrt_error.brn:1:7: error: model name '\''brnrt_error'\'' is reserved for brnc and libbrnrt (brn..., BRN...); expected a name free in C (the generated API takes it)' caret <<'EOF'
model brnrt_error;
EOF
bad name_brn_model 'name_brn_model.brn:1:7: error: model name '\''brn_model'\'' is reserved for brnc and libbrnrt (brn..., BRN...); expected a name free in C (the generated API takes it)' caret <<'EOF'
model brn_model;
EOF
bad name_BRN_EARG 'name_BRN_EARG.brn:1:7: error: model name '\''BRN_EARG'\'' is reserved for brnc and libbrnrt (brn..., BRN...); expected a name free in C (the generated API takes it)' caret <<'EOF'
model BRN_EARG;
EOF
bad name__model 'name__model.brn:1:7: error: model name '\''_model'\'' is reserved in C (a leading underscore); expected a name free in C (the generated API takes it)' caret <<'EOF'
model _model;
EOF
bad name_main 'name_main.brn:1:7: error: model name '\''main'\'' is the entry point of C programs; expected a name free in C (the generated API takes it)' caret <<'EOF'
model main;
EOF
bad name_cl_int 'name_cl_int.brn:1:7: error: model name '\''cl_int'\'' is reserved for OpenCL (cl_..., CL_..., clX...); expected a name free in C (the generated API takes it)' caret <<'EOF'
model cl_int;
EOF
bad name_clCreateBuffer 'name_clCreateBuffer.brn:1:7: error: model name '\''clCreateBuffer'\'' is reserved for OpenCL (cl_..., CL_..., clX...); expected a name free in C (the generated API takes it)' caret <<'EOF'
model clCreateBuffer;
EOF
bad negative_batch 'negative_batch.brn:2:7: error: unexpected '\''-'\''; expected an integer' <<'EOF'
model m;
batch -1;
EOF
bad input_no_shape 'input_no_shape.brn:2:9: error: unexpected number 3; expected a shape such as [1, 28, 28]' <<'EOF'
model m;
input x 3;
EOF
bad trailing_comma 'trailing_comma.brn:3:15: error: unexpected '\'')'\''; expected an expression' <<'EOF'
model m;
input x[1, 8, 8];
c = conv(x, 8,);
EOF
bad empty_list 'empty_list.brn:3:24: error: unexpected '\'']'\''; expected an expression' <<'EOF'
model m;
input x[1, 8, 8];
c = conv(x, 8, kernel=[]);
EOF
bad loss_assign 'loss_assign.brn:3:6: error: unexpected '\''='\''; expected a call, e.g. softmax_cross_entropy(logits, y)' <<'EOF'
model m;
input x[1, 8, 8];
loss = relu(x);
EOF
deep() { local s=x i; for ((i = 0; i < $1; i++)); do s="relu($s)"; done; printf 'model m;\ninput x[1, 8, 8];\nc = %s;\n' "$s"; }
bad deep_nesting "deep_nesting.brn:3:509: error: expression nested too deeply; at most 100 levels of '(' and '[' are allowed" \
	< <(deep 2000)
good deep_100 < <(deep 100)
bad deep_list "deep_list.brn:3:122: error: expression nested too deeply; at most 100 levels of '(' and '[' are allowed" \
	< <(printf 'model m;\ninput x[1, 8, 8];\nc = conv(x, 8, kernel='; printf '[%.0s' {1..5000}; printf ';\n')

# --- statements ----------------------------------------------------------------
bad no_model 'no_model.brn:1:1: error: expected '\''model NAME;'\'' as the first statement' <<'EOF'
input x[1, 8, 8];
c = relu(x);
EOF
bad duplicate_model 'duplicate_model.brn:2:1: error: duplicate '\''model'\'' statement (the first is on line 1)' <<'EOF'
model m;
model n;
input x[1, 8, 8];
EOF
bad duplicate_batch 'duplicate_batch.brn:3:1: error: duplicate '\''batch'\'' statement (the first is on line 2)' <<'EOF'
model m;
batch 2;
batch 3;
input x[1, 8, 8];
EOF
bad duplicate_input 'duplicate_input.brn:3:1: error: duplicate '\''input'\'' statement (the first is on line 2)' <<'EOF'
model m;
input x[1, 8, 8];
input z[1, 8, 8];
EOF
bad duplicate_loss 'duplicate_loss.brn:6:1: error: duplicate '\''loss'\'' statement; a model has one loss' <<'EOF'
model m;
input x[1, 8, 8];
labels y[10];
f = dense(flatten(x), 10);
loss softmax_cross_entropy(f, y);
loss softmax_cross_entropy(f, y);
EOF
bad batch_zero 'batch_zero.brn:2:7: error: batch must be from 1 to 65536, got 0' <<'EOF'
model m;
batch 0;
input x[1, 8, 8];
EOF
bad input_2d 'input_2d.brn:2:8: error: input: expected a shape [C, H, W] or [F], got 2 dimensions' <<'EOF'
model m;
input x[1, 8];
EOF
bad input_4d 'input_4d.brn:2:8: error: input: expected a shape [C, H, W] or [F], got 4 dimensions' <<'EOF'
model m;
input x[1, 8, 8, 8];
EOF
bad input_zero 'input_zero.brn:2:9: error: input: dimensions must be integers from 1 to 65536, got 0' <<'EOF'
model m;
input x[0, 8, 8];
EOF
bad input_huge 'input_huge.brn:2:8: error: input: 1000 x 1000 x 1000 x batch 1 values is too large' <<'EOF'
model m;
input x[1000, 1000, 1000];
EOF
bad labels_one 'labels_one.brn:3:9: error: labels: at least 2 classes are needed, got 1' <<'EOF'
model m;
input x[1, 8, 8];
labels y[1];
EOF
bad no_input 'no_input.brn:2: error: no '\''input'\'' statement; expected e.g. '\''input x[1, 28, 28];'\''' <<'EOF'
model m;
batch 2;
EOF
bad no_layers 'no_layers.brn:2: error: the model computes nothing; expected layers such as '\''c1 = conv(x, 32);'\''' <<'EOF'
model m;
input x[1, 8, 8];
EOF
bad not_a_call 'not_a_call.brn:3:5: error: expected a call such as conv(x, 32) after '\''c ='\''' <<'EOF'
model m;
input x[1, 8, 8];
c = x;
EOF
bad two_outputs 'two_outputs.brn:4:11: error: only one output is supported' <<'EOF'
model m;
input x[1, 8, 8];
c = relu(x);
output c, x;
EOF
bad output_labels 'output_labels.brn:4:8: error: output '\''y'\'' must be a tensor computed from the input' <<'EOF'
model m;
input x[1, 8, 8];
labels y[10];
output y;
EOF
bad undefined 'undefined.brn:3:10: error: undefined name '\''z'\''' caret <<'EOF'
model m;
input x[1, 8, 8];
c = relu(z);
EOF
bad undefined_output 'undefined_output.brn:3:8: error: undefined name '\''q'\''' <<'EOF'
model m;
input x[1, 8, 8];
output q;
EOF
bad redefined 'redefined.brn:4:1: error: name '\''c'\'' is already defined' <<'EOF'
model m;
input x[1, 8, 8];
c = relu(x);
c = relu(c);
EOF
bad redefined_input 'redefined_input.brn:3:1: error: name '\''x'\'' is already defined' <<'EOF'
model m;
input x[1, 8, 8];
x = relu(x);
EOF
bad schedule_missing "schedule_missing.brn:3:10: error: schedule 'nosuch' not found (looked for $tmp/schedules/nosuch.lua)" caret <<'EOF'
model m;
input x[1, 8, 8];
schedule "nosuch";
c = batch_renorm(x);
EOF
bad schedule_unused "schedule_unused.brn:3:10: error: schedule 'nosuch' not found (looked for $tmp/schedules/nosuch.lua)" <<'EOF'
model m;
input x[1, 8, 8];
schedule "nosuch";
c = batch_norm(x);
EOF
bad schedule_keyword "schedule_keyword.brn:3:5: error: schedule 'nosuch' not found (looked for $tmp/schedules/nosuch.lua)" <<'EOF'
model m;
input x[1, 8, 8];
c = batch_renorm(x, r_max="nosuch", d_max=5);
EOF

# --- ops and their arguments ---------------------------------------------------
bad unknown_op 'unknown_op.brn:3:5: error: unknown op '\''convolution'\''' <<'EOF'
model m;
input x[1, 8, 8];
c = convolution(x, 8);
EOF
bad unknown_loss 'unknown_loss.brn:4:6: error: unknown loss '\''relu'\''; expected softmax_cross_entropy' <<'EOF'
model m;
input x[1, 8, 8];
labels y[10];
loss relu(x);
EOF
bad loss_as_layer 'loss_as_layer.brn:3:5: error: softmax_cross_entropy is a loss; write '\''loss softmax_cross_entropy(logits, labels);'\''' <<'EOF'
model m;
input x[1, 8, 8];
c = softmax_cross_entropy(x, x);
EOF
bad unknown_keyword 'unknown_keyword.brn:3:16: error: conv: unknown keyword '\''kernal'\'' (it takes out, kernel, stride, pad, groups, bias)' caret <<'EOF'
model m;
input x[1, 8, 8];
c = conv(x, 8, kernal=3);
EOF
bad duplicate_keyword 'duplicate_keyword.brn:3:26: error: conv: '\''kernel'\'' given twice' <<'EOF'
model m;
input x[1, 8, 8];
c = conv(x, 8, kernel=3, kernel=5);
EOF
bad tensor_keyword 'tensor_keyword.brn:3:10: error: relu: '\''x'\'' is positional; write it without '\''x='\''' <<'EOF'
model m;
input x[1, 8, 8];
c = relu(x=x);
EOF
bad positional_after_keyword 'positional_after_keyword.brn:3:23: error: conv: positional argument after keyword arguments; expected positional arguments first' <<'EOF'
model m;
input x[1, 8, 8];
c = conv(x, kernel=3, 8);
EOF
bad kernel_string 'kernel_string.brn:3:23: error: conv: '\''kernel'\'' takes n or [h, w], got a string' <<'EOF'
model m;
input x[1, 8, 8];
c = conv(x, 8, kernel="3");
EOF
bad kernel_list3 'kernel_list3.brn:3:20: error: conv: '\''pad'\'' takes n or [h, w], got a list of 3' <<'EOF'
model m;
input x[1, 8, 8];
c = conv(x, 8, pad=[1, 2, 3]);
EOF
bad bias_int 'bias_int.brn:3:21: error: conv: '\''bias'\'' must be true or false, got an integer' <<'EOF'
model m;
input x[1, 8, 8];
c = conv(x, 8, bias=3);
EOF
bad eps_bool 'eps_bool.brn:3:23: error: batch_norm: '\''eps'\'' must be a number, got a boolean' <<'EOF'
model m;
input x[1, 8, 8];
c = batch_norm(x, eps=true);
EOF
bad out_float 'out_float.brn:3:13: error: conv: '\''out'\'' must be an integer, got a number' <<'EOF'
model m;
input x[1, 8, 8];
c = conv(x, 8.0);
EOF
bad tensor_number 'tensor_number.brn:3:10: error: relu: '\''x'\'' must be a tensor (a name or a call), got an integer' <<'EOF'
model m;
input x[1, 8, 8];
c = relu(3);
EOF
bad too_many 'too_many.brn:3:13: error: relu: too many positional arguments (it takes 1)' <<'EOF'
model m;
input x[1, 8, 8];
c = relu(x, x);
EOF
bad relu6_many 'relu6_many.brn:3:14: error: relu6: too many positional arguments (it takes 1)' <<'EOF'
model m;
input x[1, 8, 8];
c = relu6(x, x);
EOF
bad count_pad_int 'count_pad_int.brn:3:44: error: avgpool: '\''count_include_pad'\'' must be true or false, got an integer' <<'EOF'
model m;
input x[1, 8, 8];
p = avgpool(x, 3, pad=1, count_include_pad=3);
EOF
bad missing_out 'missing_out.brn:3:5: error: conv: missing argument '\''out'\''' <<'EOF'
model m;
input x[1, 8, 8];
c = conv(x);
EOF
bad missing_kernel 'missing_kernel.brn:3:5: error: maxpool: missing argument '\''kernel'\''' <<'EOF'
model m;
input x[1, 8, 8];
c = maxpool(x);
EOF
bad out_zero 'out_zero.brn:3:13: error: conv: '\''out'\'' must be greater than 0, got 0' <<'EOF'
model m;
input x[1, 8, 8];
c = conv(x, 0);
EOF
bad dense_out_negative 'dense_out_negative.brn:3:23: error: dense: '\''out'\'' must be greater than 0, got -4' <<'EOF'
model m;
input x[1, 8, 8];
c = dense(flatten(x), -4);
EOF
bad stride_zero 'stride_zero.brn:3:27: error: conv: '\''stride'\'' must be greater than 0, got 0' <<'EOF'
model m;
input x[1, 8, 8];
c = conv(x, 8, stride=[2, 0]);
EOF
bad kernel_zero 'kernel_zero.brn:3:23: error: conv: '\''kernel'\'' must be greater than 0, got 0' <<'EOF'
model m;
input x[1, 8, 8];
c = conv(x, 8, kernel=0);
EOF
bad pad_negative 'pad_negative.brn:3:20: error: conv: '\''pad'\'' must be at least 0, got -1' <<'EOF'
model m;
input x[1, 8, 8];
c = conv(x, 8, pad=-1);
EOF
bad groups_zero 'groups_zero.brn:3:23: error: conv: '\''groups'\'' must be greater than 0, got 0' <<'EOF'
model m;
input x[1, 8, 8];
c = conv(x, 8, groups=0);
EOF
bad eps_zero 'eps_zero.brn:3:23: error: batch_norm: '\''eps'\'' must be greater than 0, got 0' <<'EOF'
model m;
input x[1, 8, 8];
c = batch_norm(x, eps=0);
EOF
# numbers the generated code holds as float literals: 0 or normal floats
bad eps_tiny 'eps_tiny.brn:3:23: error: batch_norm: '\''eps'\'' must be at least 1.17549e-38 (the smallest normal float), got 1e-300' caret <<'EOF'
model m;
input x[1, 8, 8];
c = batch_norm(x, eps=1e-300);
EOF
bad alpha_tiny 'alpha_tiny.brn:3:27: error: batch_renorm: '\''alpha'\'' must be at least 1.17549e-38 (the smallest normal float), got 1e-50' <<'EOF'
model m;
input x[1, 8, 8];
c = batch_renorm(x, alpha=1e-50, r_max=3, d_max=5);
EOF
bad r_max_huge 'r_max_huge.brn:3:27: error: batch_renorm: '\''r_max'\'' must be at most 3.40282e+38 (the largest float), got 1e+39' <<'EOF'
model m;
input x[1, 8, 8];
c = batch_renorm(x, r_max=1e39);
EOF
bad d_max_tiny 'd_max_tiny.brn:3:27: error: batch_renorm: '\''d_max'\'' must be 0 or at least 1.17549e-38 (the smallest normal float), got 1e-40' <<'EOF'
model m;
input x[1, 8, 8];
c = batch_renorm(x, d_max=1e-40);
EOF
good eps_smallest <<'EOF'
model m;
input x[1, 8, 8];
c = batch_renorm(x, eps=1.1754943508222875e-38, d_max=0, r_max=3.4028234663852886e38);
EOF
bad alpha_big 'alpha_big.brn:3:27: error: batch_renorm: '\''alpha'\'' must be at most 1, got 1.5' <<'EOF'
model m;
input x[1, 8, 8];
c = batch_renorm(x, alpha=1.5, r_max=3, d_max=5);
EOF
bad r_max_small 'r_max_small.brn:3:27: error: batch_renorm: '\''r_max'\'' must be at least 1, got 0.5' <<'EOF'
model m;
input x[1, 8, 8];
c = batch_renorm(x, r_max=0.5);
EOF
bad d_max_negative 'd_max_negative.brn:3:27: error: batch_renorm: '\''d_max'\'' must be at least 0, got -1' <<'EOF'
model m;
input x[1, 8, 8];
c = batch_renorm(x, d_max=-1);
EOF
bad r_max_bool 'r_max_bool.brn:3:27: error: batch_renorm: '\''r_max'\'' must be a number or a schedule name, got a boolean' <<'EOF'
model m;
input x[1, 8, 8];
c = batch_renorm(x, r_max=true);
EOF

# --- shapes --------------------------------------------------------------------
bad kernel_too_big 'kernel_too_big.brn:3:5: error: conv: kernel 9x9 is larger than the padded input 8x8' <<'EOF'
model m;
input x[1, 8, 8];
c = conv(x, 8, kernel=9);
EOF
bad kernel_too_big_padded 'kernel_too_big_padded.brn:3:5: error: conv: kernel 3x11 is larger than the padded input 10x8' <<'EOF'
model m;
input x[1, 8, 8];
c = conv(x, 8, kernel=[3, 11], pad=[1, 0]);
EOF
bad pool_too_big 'pool_too_big.brn:3:5: error: avgpool: kernel 9x9 is larger than the padded input 8x8' <<'EOF'
model m;
input x[1, 8, 8];
c = avgpool(x, 9);
EOF
bad pool_pad 'pool_pad.brn:3:5: error: maxpool: pad 2x2 must be smaller than the kernel 2x2' <<'EOF'
model m;
input x[1, 8, 8];
c = maxpool(x, 2, pad=2);
EOF
bad huge_pad 'huge_pad.brn:3:5: error: conv: output of 24576x24576 per channel is too large' <<'EOF'
model m;
input x[1, 8192, 8192];
c = conv(x, 1, kernel=1, pad=8192);
EOF
bad huge_weight 'huge_weight.brn:3:5: error: conv: a weight of 1073741824 values is too large' <<'EOF'
model m;
input x[1, 8, 65536];
c = conv(x, 2048, kernel=[8, 65536]);
EOF
# kernel, pad and stride bounded by the input: no int overflow in the
# generated code's positions, no window over billions of padding positions
bad pad_int_overflow 'pad_int_overflow.brn:3:5: error: conv: pad 2000000000x2000000000 is larger than the input 8x8' caret <<'EOF'
model m;
input x[1, 8, 8];
c = conv(x, 1, kernel=1, pad=2000000000, stride=1000000000);
EOF
bad pad_larger 'pad_larger.brn:3:5: error: conv: pad 1x9 is larger than the input 8x8' <<'EOF'
model m;
input x[1, 8, 8];
c = conv(x, 1, kernel=1, pad=[1, 9]);
EOF
bad pool_huge 'pool_huge.brn:3:5: error: maxpool: pad 1999999999x1999999999 is larger than the input 8x8' <<'EOF'
model m;
input x[1, 8, 8];
p = maxpool(x, 2000000000, pad=1999999999, stride=1000000000);
EOF
bad stride_larger 'stride_larger.brn:3:5: error: avgpool: stride 1000000000x1 is larger than the padded input 10x10' <<'EOF'
model m;
input x[1, 8, 8];
p = avgpool(x, 3, pad=1, stride=[1000000000, 1]);
EOF
good window_bounds <<'EOF'
model m;
input x[1, 8, 8];
c = conv(x, 2, kernel=1, pad=8, stride=24);
p = maxpool(c, 1, stride=1);
EOF
bad add_shapes 'add_shapes.brn:4:5: error: add: shapes differ: '\''x'\'' is [1, 8, 8], '\''c'\'' is [4, 6, 6]' <<'EOF'
model m;
input x[1, 8, 8];
c = conv(x, 4);
d = add(x, c);
EOF
bad groups_in 'groups_in.brn:3:5: error: conv: 3 input channels are not divisible by groups=2' <<'EOF'
model m;
input x[3, 8, 8];
c = conv(x, 4, groups=2);
EOF
bad groups_out 'groups_out.brn:3:5: error: conv: 3 output channels are not divisible by groups=2' <<'EOF'
model m;
input x[4, 8, 8];
c = conv(x, 3, groups=2);
EOF
bad dense_not_flat 'dense_not_flat.brn:3:5: error: dense: input '\''x'\'' has shape [1, 8, 8]; flatten it first: dense(flatten(x), 10)' <<'EOF'
model m;
input x[1, 8, 8];
f = dense(x, 10);
EOF
bad softmax_not_flat 'softmax_not_flat.brn:3:5: error: softmax: input '\''x'\'' has shape [1, 8, 8]; expected a flat tensor' <<'EOF'
model m;
input x[1, 8, 8];
f = softmax(x);
EOF
bad labels_as_tensor 'labels_as_tensor.brn:4:10: error: relu: '\''y'\'' holds labels; expected a tensor' caret <<'EOF'
model m;
input x[1, 8, 8];
labels y[10];
f = relu(y);
EOF
bad labels_in_add 'labels_in_add.brn:4:12: error: add: '\''y'\'' holds labels; expected a tensor' <<'EOF'
model m;
input x[10];
labels y[10];
f = add(x, y);
EOF
bad loss_not_labels 'loss_not_labels.brn:5:31: error: softmax_cross_entropy: second argument '\''f'\'' is not the labels; expected '\''y'\''' caret <<'EOF'
model m;
input x[1, 8, 8];
labels y[10];
f = dense(flatten(x), 10);
loss softmax_cross_entropy(f, f);
EOF
bad loss_no_labels 'loss_no_labels.brn:4:31: error: softmax_cross_entropy: second argument '\''x'\'' is not the labels; declare them with '\''labels y[10];'\''' <<'EOF'
model m;
input x[1, 8, 8];
f = dense(flatten(x), 10);
loss softmax_cross_entropy(f, x);
EOF
bad loss_swapped 'loss_swapped.brn:5:28: error: softmax_cross_entropy: '\''y'\'' holds labels; expected the logits' <<'EOF'
model m;
input x[1, 8, 8];
labels y[10];
f = dense(flatten(x), 10);
loss softmax_cross_entropy(y, f);
EOF
bad loss_classes 'loss_classes.brn:5:6: error: softmax_cross_entropy: logits '\''f'\'' have shape [5] but the labels have 10 classes' <<'EOF'
model m;
input x[1, 8, 8];
labels y[10];
f = dense(flatten(x), 5);
loss softmax_cross_entropy(f, y);
EOF
bad loss_nested 'loss_nested.brn:4:10: error: softmax_cross_entropy is only allowed as '\''loss softmax_cross_entropy(logits, labels);'\''' <<'EOF'
model m;
input x[10];
labels y[10];
c = relu(softmax_cross_entropy(x, y));
EOF

# --- files ---------------------------------------------------------------------
run nosuch
check $([ "$rc" = 1 ] && [ "$first" = "brnc: nosuch.brn: error: cannot open: No such file or directory" ] && echo 0) \
	"a file that does not exist" "exit $rc: $first"
mkdir -p adir.brn
run adir
check $([ "$rc" = 1 ] && [ "$first" = "brnc: adir.brn: error: is a directory, not a model file" ] && echo 0) \
	"a directory" "exit $rc: $first"

# --- defaults: the norms' eps and alpha, model-wide --------------------------------
cat >defaults.brn <<'EOF'
model m;
defaults eps=1e-5, alpha=0.1;
input x[2, 4, 4];
a = batch_norm(x);
b = batch_renorm(a, eps=0.01);
c = batch_norm(b, alpha=0.5);
EOF
run defaults
check $([ "$rc" = 0 ] && grep -q '^%1 a = batch_norm(x) eps=1e-05 alpha=0.1 ' out.txt &&
	grep -q '^%2 b = batch_renorm(a) eps=0.01 alpha=0.1 ' out.txt &&
	grep -q '^%3 c = batch_norm(b) eps=1e-05 alpha=0.5 ' out.txt && echo 0) \
	"defaults: a norm takes the model's eps and alpha unless it gives its own" "exit $rc: $first"
bad defaults_positional 'defaults_positional.brn:2:20: error: defaults: expected keyword arguments such as eps=1e-5, alpha=0.1' caret <<'EOF'
model m;
defaults eps=1e-5, 3;
input x[2, 4, 4];
EOF
bad defaults_unknown "defaults_unknown.brn:2:20: error: defaults: unknown keyword 'momentum' (it takes eps, alpha)" caret <<'EOF'
model m;
defaults eps=1e-5, momentum=0.9;
input x[2, 4, 4];
EOF
bad defaults_twice "defaults_twice.brn:2:20: error: defaults: 'eps' given twice" <<'EOF'
model m;
defaults eps=1e-5, eps=1e-3;
input x[2, 4, 4];
EOF
bad defaults_alpha "defaults_alpha.brn:2:16: error: defaults: 'alpha' must be at most 1, got 2" <<'EOF'
model m;
defaults alpha=2;
input x[2, 4, 4];
EOF
bad defaults_eps_underflow "defaults_eps_underflow.brn:2:14: error: defaults: 'eps' must be at least 1.17549e-38 (the smallest normal float), got 1e-300" <<'EOF'
model m;
defaults eps=1e-300;
input x[2, 4, 4];
EOF
bad defaults_empty "defaults_empty.brn:2:9: error: unexpected ';'; expected keyword arguments, e.g. eps=1e-5, alpha=0.1" <<'EOF'
model m;
defaults;
input x[2, 4, 4];
EOF
bad defaults_second "defaults_second.brn:4:1: error: duplicate 'defaults' statement (the first is on line 2)" <<'EOF'
model m;
defaults eps=1e-5;
input x[2, 4, 4];
defaults alpha=0.1;
EOF
bad defaults_keyword "defaults_keyword.brn:3:10: error: unexpected '='; expected keyword arguments, e.g. eps=1e-5, alpha=0.1" <<'EOF'
model m;
input x[2, 4, 4];
defaults = relu(x);
EOF

# --- weights folded in (--weights) ------------------------------------------------
cat >w.brn <<'EOF'
model w;
input x[2];
d = dense(x, 1, bias=false);
n = batch_norm(d);
EOF
# st FILE W0 W1 GAMMA BETA MEAN SIGMA: a safetensors file for w.brn
st() {
	"${PYTHON:-python3}" - "$@" <<'EOF'
import json, struct, sys
path, v = sys.argv[1], [float(x) for x in sys.argv[2:]]
names = [("d.weight", [1, 2], v[0:2]), ("n.gamma", [1], v[2:3]), ("n.beta", [1], v[3:4]),
         ("n.mean", [1], v[4:5]), ("n.sigma", [1], v[5:6])]
h, data = {}, b""
for name, shape, vals in names:
    h[name] = {"dtype": "F32", "shape": shape, "data_offsets": [len(data), len(data) + 4 * len(vals)]}
    data += struct.pack("<%df" % len(vals), *vals)
hb = json.dumps(h).encode()
hb += b" " * (-len(hb) % 8)
open(path, "wb").write(struct.pack("<Q", len(hb)) + hb + data)
EOF
}
# weights NAME 'first line' VALUES...: brnc w.brn --weights NAME.st refuses (exit 1)
weights() {
	local name=$1 want=$2
	shift 2
	st "$name.st" "$@"
	"$BRNC" w.brn --weights "$name.st" -o "out_$name" >out.txt 2>err.txt
	rc=$?
	first=$(sed -n 1p err.txt)
	check $([ "$rc" = 1 ] && [ "$first" = "$want" ] && [ ! -e "out_$name.c" ] && echo 0) "weights $name: $want" \
		"exit status $rc (expected 1)" "got:      $first" "expected: $want"
}
# nan and inf: brnrt_st_load refuses them first, in the form of its other errors
weights w_nan "brnc: error: w_nan.st: tensor 'd.weight' is nan at index 1; expected finite values" 1 nan 1 0 0 1
weights w_inf "brnc: error: w_inf.st: tensor 'n.beta' is -inf at index 0; expected finite values" 1 1 1 -inf 0 1
weights w_sigma0 "brnc: w_sigma0.st: error: tensor 'n.sigma' is 0 at index 0; a standard deviation must be > 0" 1 1 1 0 0 0
weights w_sigmaneg "brnc: w_sigmaneg.st: error: tensor 'n.sigma' is -2 at index 0; a standard deviation must be > 0" 1 1 1 0 0 -2
weights w_overflow "brnc: w_overflow.st: error: tensor 'd.weight' is 1e+68 at index 0 after folding the norm into it; beyond the float range" \
	1 1 1e38 0 0 1e-30
st w_good.st 1 2 3 4 5 6
"$BRNC" w.brn --weights w_good.st -o out_good >out.txt 2>err.txt
rc=$?
check $([ "$rc" = 0 ] && [ ! -s err.txt ] && grep -q '0.5, 1,' out_good.c && echo 0) "good weights fold" "exit $rc: $(sed -n 1p err.txt)"

# --- the command line ------------------------------------------------------------
cat >ok.brn <<'EOF'
model m;
input x[1, 8, 8];
c = relu(x);
EOF
usage 'brnc: no model file given'
usage 'brnc: no model file given' --emit graph
usage "brnc: unknown option '--frob'" --frob ok.brn
usage "brnc: --target must be c or opencl, not 'bogus'" --target bogus ok.brn
usage "brnc: --batch must be an integer from 1 to 65536, not '0'" --batch 0 ok.brn
usage "brnc: --batch must be an integer from 1 to 65536, not '2x'" --batch 2x ok.brn
usage "brnc: --mode must be infer or train, not 'x'" --mode x ok.brn
usage "brnc: --emit must be graph, dot, weights, brn, onnx or torch-names, not 'svg'" --emit svg ok.brn
usage "brnc: option --batch needs a value" ok.brn --batch
usage "brnc: more than one model file ('ok.brn')" ok.brn ok.brn
# outputs: never an input, never a cut or empty name, never through a shell
usage "brnc: --shared needs -o BASE" --shared ok.brn
check $([ ! -e m.h ] && [ ! -e m.c ] && echo 0) "--shared without -o writes nothing"
usage "brnc: -o 'adir/' names a directory; expected a file base such as 'dir/model' (brnc writes BASE.h and BASE.c)" -o adir/ ok.brn
usage "brnc: -o '' names a directory; expected a file base such as 'dir/model' (brnc writes BASE.h and BASE.c)" -o '' ok.brn
usage "brnc: -o 'x/..' names a directory; expected a file base such as 'dir/model' (brnc writes BASE.h and BASE.c)" -o x/.. ok.brn
usage "brnc: -o 'a\"b': the file name cannot be #included (no '\"', '\\' or control characters)" -o 'a"b' ok.brn
usage "brnc: -o 'out/brnrt': BASE.h would shadow libbrnrt's headers (brnrt*.h); expected another file base" -o out/brnrt ok.brn
usage "brnc: -o 'brnrt_st': BASE.h would shadow libbrnrt's headers (brnrt*.h); expected another file base" -o brnrt_st ok.brn
check $([ ! -e adir/.h ] && [ ! -e .h ] && [ ! -e 'a"b.h' ] && [ ! -e brnrt_st.h ] && echo 0) "bad -o bases write nothing"
# overwrite NAME FILE 'first line' ARGS...: refused (exit 1), FILE unchanged
overwrite() {
	local name=$1 file=$2 want=$3
	shift 3
	cp ok.brn keep.brn
	"$BRNC" "$@" >out.txt 2>err.txt
	rc=$?
	first=$(sed -n 1p err.txt)
	check $([ "$rc" = 1 ] && [ "$first" = "$want" ] && cmp -s "$file" keep.brn && echo 0) "$name: $want" \
		"exit status $rc (expected 1)" "got:      $first" "expected: $want"
}
cp ok.brn m.h
overwrite "model named like its header" m.h "brnc: error: output 'm.h' is the model file 'm.h'; choose another -o BASE" m.h
rm -f m.h
cp ok.brn model.c
overwrite "-o over the model" model.c "brnc: error: output 'model.c' is the model file 'model.c'; choose another -o BASE" model.c -o model
ln -s ok.brn linked.h
overwrite "-o over a link to the model" ok.brn "brnc: error: output 'linked.h' is the model file 'ok.brn'; choose another -o BASE" ok.brn -o linked
cp ok.brn st.c
overwrite "-o over the weights" st.c "brnc: error: output 'st.c' is the weights file 'st.c'; choose another -o BASE" ok.brn --weights st.c -o st
# a base of 4094 characters: BASE.h is past PATH_MAX; it was cut to "BASE." and BASE.c overwrote it
long=$(for i in $(seq 20); do printf 'd%.0s' $(seq 200); printf /; done)
mkdir -p "$long"
base="$long$(printf 'b%.0s' $(seq 74))"
"$BRNC" ok.brn -o "$base" >out.txt 2>err.txt
rc=$?
check $([ "$rc" = 1 ] && [ "${#base}" = 4094 ] && grep -q '^brnc: .*: error: cannot write: File name too long$' err.txt &&
	[ -z "$(ls "$long")" ] && echo 0) "a 4094-character base is refused, not cut" "exit $rc: $(cut -c1-60 err.txt)..."
rm -rf d*
# --shared runs the C compiler without a shell
"$BRNC" ok.brn --shared -o "q';touch INJECTED;echo '" >out.txt 2>err.txt
rc=$?
check $([ "$rc" = 0 ] && [ ! -e INJECTED ] && [ -e "q';touch INJECTED;echo '.so" ] && echo 0) \
	"--shared passes names to cc as they are" "exit $rc: $(sed -n 1p err.txt)"
"$BRNC" ok.brn --shared -o "-dash" >out.txt 2>err.txt
check $([ "$?" = 0 ] && [ -e ./-dash.so ] && echo 0) "--shared with a base that starts with '-'" "$(sed -n 1p err.txt)"
# names in comments and strings: a path with a star-slash, and with a trigraph "??/"
mkdir -p 'x*' 'q??'
printf 'model m;\ninput x[1, 8, 8];\nc = conv(x, 2);\n' >'x*/m.brn'
cp 'x*/m.brn' 'q??/m.brn'
"$BRNC" 'x*/m.brn' -o star 2>err.txt &&
	"$BRNC" 'q??/m.brn' --target opencl -o tri 2>>err.txt &&
	"${BRN_CC:-cc}" -std=c11 -Wall -Wextra -Werror -I"$OLDPWD/runtime" -c star.c -o star.o 2>>err.txt &&
	"${BRN_CC:-cc}" -std=c11 -Wall -Wextra -Werror -I"$OLDPWD/runtime" -c tri.c -o tri.o 2>>err.txt
rc=$?
check $([ "$rc" = 0 ] && grep -q 'from x\*\\/m.brn; do not edit' star.h && echo 0) \
	"a star-slash in the source path stays inside the comment" "$(sed -n 1p err.txt)"
"$BRNC" --help >out.txt 2>err.txt
rc=$?
check $([ "$rc" = 0 ] && grep -q '^usage: brnc ' out.txt && [ ! -s err.txt ] && echo 0) "--help prints usage, exit 0"
"$BRNC" --version >out.txt 2>err.txt
rc=$?
check $([ "$rc" = 0 ] && grep -Eq '^brnc [0-9]+\.[0-9]+\.[0-9]+$' out.txt && echo 0) "--version prints the version, exit 0"
run ok --batch 4
check $([ "$rc" = 0 ] && grep -q '^model m batch 4 ' out.txt && [ ! -s err.txt ] && echo 0) "a good model compiles" \
	"exit $rc: $first"

done_testing
