# The testbed's PID 1 after switch_root, on the host's root: run the command script given, with its
# output on ttyS1, then report its exit status there and power off.
bb=/run/kvm-ts-testbed/busybox
out=/dev/ttyS1
run=$1
say() { echo "kvm-ts-testbed: $*" >"$out"; }
off() { $bb sync; $bb sleep 1; echo o >/proc/sysrq-trigger; $bb sleep 30; }
# For a run that hangs: what runs inside, once a minute, in the console log (ttyS0).
( while $bb sleep 60; do echo "--- kvm-ts-testbed: processes at $($bb cut -d' ' -f1 /proc/uptime) s"; $bb ps -o pid,stat,rss,args | $bb cut -c1-200; done ) >/dev/ttyS0 2>&1 &
say "running (kernel $($bb uname -r), $($bb grep -c ^processor /proc/cpuinfo) CPUs, /dev/kvm present)"
/bin/sh "$run" </dev/null >"$out" 2>&1
rc=$?
kill %1 2>/dev/null
say "exit=$rc"
off
