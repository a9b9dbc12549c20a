/** Compatibility properties of the KVM ABI specs, shared by the tests and the history report. */
export * from './bits.js';
export * from './struct-compat.js';
export * from './history.js';
export * from './mutations.js';
export * from './numbers.js';
export * from './header-mutations.js';
