/** @kvm-ts/abi/diff: classify every change between two KVM ABI specs, and the CI gate built on it. */
export type { Category, Change, ItemKind, SpecLabel } from './types.js';
export { CATEGORIES } from './types.js';
export { RULES, RULES_BY_ID, rule, type Rule } from './rules.js';
export { diffSpecs, brokenCategories, exitBits, EXIT } from './diff.js';
export { AbiInputError, DEFAULT_SPEC_ROOT, loadSpecRef, parseSpecText, validateSpec, seriesOf, type LoadedSpec } from './load.js';
export { isReserved, bitRange, resolveType } from './members.js';
export { isLimit, isMask, constantValue } from './constants.js';
export { sizeEncodedStructs } from './structs.js';
export { ioctlNumberGroups } from './ioctls.js';
export {
  loadSuppressions,
  parseSuppressions,
  appliesTo,
  describeSuppression,
  SuppressionSet,
  type Suppression,
  type SuppressionFile,
  type Suppressed,
} from './suppressions.js';
export { buildReport, formatReportText, formatStaleText, reportJson, type DiffReport } from './report.js';
export { readSpecDir, historyByArch, specKey, isSpecPath, type SpecEntry, type SpecSet } from './specs.js';
export { gitBaseline, explicitBaseline, readRecordedBaseline, writeRecordedBaseline, type Baseline } from './baseline.js';
export { runCheck, defaultRoot, SUPPRESSIONS_PATH, RECORDED_BASELINE_PATH, type CheckOptions, type CheckResult, type Failure } from './check.js';
export { annotation, changeAnnotation, formatGithub, formatJunit, levelOf, OUTPUT_FORMATS, type OutputFormat, type JunitOptions } from './formats.js';
export { locate, withLocations } from './locate.js';
