#!/bin/busybox sh
# PID 1 of the emulated machine: load the modules, mount the host's root over virtio-9p, give it
# what a test host has (proc, sys, dev, a tmpfs /run, a network uplink for passt) and switch to it;
# stage2.sh runs the command there with its output on ttyS1, reports its exit status, powers off.
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
out=/dev/ttyS1
stty -F "$out" raw -echo 2>/dev/null
say() { echo "kvm-ts-testbed: $*" >"$out"; }
off() { sync; sleep 1; echo o >/proc/sysrq-trigger; sleep 30; }
fail() { say "error: $*"; say "exit=125"; off; }

run=
for arg in $(cat /proc/cmdline); do
  case "$arg" in kvmts_testbed.run=*) run="${arg#kvmts_testbed.run=}" ;; esac
done
[ -n "$run" ] || fail "no kvmts_testbed.run= on the kernel command line"

for m in $(cat /etc/testbed/modules); do insmod "/lib/$m" || fail "insmod $m failed"; done
[ -c /dev/kvm ] || fail "no /dev/kvm in the emulated machine (no svm in its CPU?)"

r=/newroot
mkdir -p "$r"
mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000,cache=loose hostroot "$r" || fail "cannot mount the host's root over virtio-9p"
mount -t proc proc "$r/proc"
mount -t sysfs sysfs "$r/sys"
mount -t devtmpfs devtmpfs "$r/dev"
mkdir -p "$r/dev/pts" "$r/dev/shm"
mount -t devpts devpts "$r/dev/pts"
mount -t tmpfs tmpfs "$r/dev/shm"
# UNIX sockets cannot live on 9p: /run (runtime dirs, netns) and TMPDIR are tmpfs inside.
mount -t tmpfs -o mode=0755 tmpfs "$r/run"
mount -t tmpfs -o mode=1777,size=50% tmpfs "$r/var/tmp" 2>/dev/null
mount -t cgroup2 cgroup2 "$r/sys/fs/cgroup" 2>/dev/null

hostname kvm-ts-testbed
ip link set lo up
# passt wants an uplink: a dummy one, documentation range, that nothing leaves through.
ip link set dummy0 up && ip addr add 192.0.2.2/24 dev dummy0 && ip route add default via 192.0.2.1 dev dummy0 \
  || fail "cannot set up the dummy uplink"

[ -f "$r$run" ] || fail "the command script $run is not on the shared root"
# switch_root, not chroot: a chrooted process may not create user namespaces, and passt (as root,
# dropping to nobody) and the tests need them. The second stage runs from the tmpfs /run.
stage=/run/kvm-ts-testbed
mkdir -p "$r$stage" && cp /bin/busybox /etc/testbed/stage2.sh "$r$stage/" || fail "cannot stage the second init"
exec switch_root "$r" "$stage/busybox" sh "$stage/stage2.sh" "$run"
