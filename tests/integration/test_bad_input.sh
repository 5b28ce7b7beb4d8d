# Every bad input: one line naming the problem, exit status 1, nothing left.
source "$(dirname "$0")/lib.sh"

expect_refusal() {   # description, expected message fragment, options...
    local what=$1 want=$2; shift 2
    local sock=$TMP/bad.sock
    "$VMM" --control "$sock" "$@" >"$TMP/bad.out" 2>"$TMP/bad.err"
    local rc=$?
    local lines; lines=$(wc -l <"$TMP/bad.err")
    if [ $rc -eq 1 ] && [ "$lines" -eq 1 ] && grep -qF -- "$want" "$TMP/bad.err" &&
       [ ! -e "$sock" ]; then
        ok "$what: $(cat "$TMP/bad.err")"
    else
        not_ok "$what: rc=$rc lines=$lines: $(head -3 "$TMP/bad.err")"
    fi
}

touch "$TMP/empty"
truncate -s 1M "$TMP/d.img"
expect_refusal "missing kernel" "kernel '$TMP/nope': no such file" --kernel "$TMP/nope"
expect_refusal "empty kernel" "file is empty" --kernel "$TMP/empty"
expect_refusal "non-ELF kernel" "not an ELF file" --kernel /etc/hostname
expect_refusal "PIE program as kernel" "ELF is not an executable" --kernel /bin/true
expect_refusal "kernel is a directory" "not a regular file" --kernel "$TMP"
expect_refusal "memory 0" "memory 0 bytes" --kernel "$GUEST" --memory 0
expect_refusal "memory more than the host" "more than the host has" --kernel "$GUEST" --memory 64T
expect_refusal "memory not a size" "--memory '12Q'" --kernel "$GUEST" --memory 12Q
expect_refusal "cpus 0" "--cpus '0'" --kernel "$GUEST" --cpus 0
expect_refusal "cpus 99" "--cpus '99'" --kernel "$GUEST" --cpus 99
expect_refusal "unknown option" "unknown option '--frobnicate'" --kernel "$GUEST" --frobnicate
expect_refusal "option without value" "option '--memory' needs a value" --kernel "$GUEST" --memory
expect_refusal "stray argument" "unexpected argument 'extra'" --kernel "$GUEST" extra
expect_refusal "no kernel" "--kernel FILE is required"
expect_refusal "missing disk" "disk '$TMP/nodisk': no such file" --kernel "$GUEST" --disk "path=$TMP/nodisk"
expect_refusal "disk without path" "path=FILE is required" --kernel "$GUEST" --disk readonly=on
expect_refusal "disk bad key" "bad key or value 'color'" --kernel "$GUEST" --disk "path=$TMP/d.img,color=red"
expect_refusal "disk bad bool" "bad key or value 'readonly'" --kernel "$GUEST" --disk "path=$TMP/d.img,readonly=maybe"
expect_refusal "unknown cpu model" "unknown cpu model 'pentium'" --kernel "$GUEST" --cpu-model pentium
expect_refusal "bad console" "console 'tty'" --kernel "$GUEST" --console tty
expect_refusal "console in missing dir" "console file '$TMP/no/dir'" --kernel "$GUEST" --console "file:$TMP/no/dir"
if [ -e /dev/kvm ]; then
    # no /dev/kvm: run in a mount namespace where it is hidden
    if unshare -m true 2>/dev/null; then
        out=$(unshare -m bash -c "mount --bind /dev/null /dev/kvm && '$VMM' --kernel '$GUEST'" 2>&1)
        rc=$?
        if [ $rc -eq 1 ] && grep -q "/dev/kvm" <<<"$out"; then ok "no /dev/kvm: $out"
        else not_ok "no /dev/kvm: rc=$rc $out"; fi
    fi
fi
