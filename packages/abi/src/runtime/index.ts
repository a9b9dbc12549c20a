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
