import { generateSpec } from '../../src/generator/index.js';
import { cacheReady, type HeaderEdit, withEditedHeaders } from '../../src/headers/index.js';
import type { Arch, Spec } from '../../src/spec/types.js';

export type { HeaderEdit };

/** Why a pinned header set cannot be edited here, or undefined when its cache is synced. */
export const headersMissing = (id: string, arch: Arch): string | undefined =>
  cacheReady(id, arch) ? undefined : `the pinned ${id}/${arch} header cache is not synced (npm run fetch)`;

/** The spec of a pinned header set with `edits` applied to a copy of its synced headers. */
export const specOfEditedHeaders = (id: string, arch: Arch, edits: readonly HeaderEdit[]): Spec =>
  withEditedHeaders(id, arch, edits, (dir) => generateSpec({ includeDirs: [dir], arch, kernel: id }));
