/**
 * The most vCPUs a VM can have whatever KVM allows: the MP table numbers CPUs by APIC id, 255 is the
 * broadcast id and the IOAPIC takes the id after the last CPU. Kept free of imports so that
 * `kvm-cli run` can check `--cpus` before it starts any thread (`@kvm-ts/hypervisor/prestart`).
 */
export const MAX_VCPUS = 254;
