# The testbed's PID 1 after switch_root, on the host's root: run the command script given, with its
# output on ttyS1, then report its exit status there and power off.
bb=/run/kvm-ts-testbed/busybox
out=/dev/ttyS1
run=$1
say() { echo "kvm-ts-testbed: $*" >"$out"; }
off() { $bb sync; $bb sleep 1; echo o >/proc/sysrq-trigger; $bb sleep 30; }
say "running (kernel $($bb uname -r), $($bb grep -c ^processor /proc/cpuinfo) CPUs, /dev/kvm present)"
/bin/sh "$run" </dev/null >"$out" 2>&1
rc=$?
say "exit=$rc"
off
