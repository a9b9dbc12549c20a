/**
 * `@kvm-ts/abi/runtime`: the loader, codecs and spec types without the spec file schemas, so
 * importing it (and loadAbi() of a committed spec, and codecs) never loads zod; zod is loaded on
 * first use of a codec's `.schema`, of loadSpecFile/validateSpec, or of a spec from elsewhere.
 * `@kvm-ts/abi` is this plus the zod schemas of the spec format.
 */
export * from '../spec/types.js';
export type {
  DecodeOptions,
  DeepPartial,
  FieldAccessor,
  LoadAbi,
  LoadedAbi,
  StructCodec,
  StructValue,
} from './api.js';
export {
  abiFromSpec,
  compareSpecIds,
  createSpecLoader,
  isLocalSpecId,
  latestSpecId,
  listSpecs,
  loadAbi,
  loadSpecFile,
  registerSpec,
  SPEC_DIR,
  validateSpec,
  type SpecEntry,
  type SpecLoader,
} from './load.js';
export { CodecRegistry } from './codec.js';
export { integerRange, isBigScalar, resolveScalar, type ScalarInfo } from './scalars.js';
export {
  aggregateName,
  buildShape,
  type FieldNode,
  type GroupNode,
  type ShapeNode,
  type StructShape,
} from './shape.js';
