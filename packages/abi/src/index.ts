/** @kvm-ts/abi: the KVM userspace ABI as versioned specs, with codecs, zod schemas and loaders. */
export * from './runtime/index.js';
export * from './spec/types.js';
export {
  IoctlSpecSchema,
  LayoutLeafSchema,
  SPEC_SCHEMA_ID,
  SpecSchema,
  StructSpecSchema,
  specJsonSchema,
  specJsonSchemaText,
} from './spec/schema.js';
