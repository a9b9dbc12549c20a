/** KVM tests register through the testbed's rules (packages/testbed/src/needs.ts): run, defer, or skip visibly. */
export { hostKvm, kvmLacking, kvmTests, scaled, timeScale } from '@kvm-ts/testbed/needs';
