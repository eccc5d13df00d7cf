export { AdaptReason, type AdaptResult, type AdaptedRecord, type InputAdapter } from './types.js';
export { InputAdapterError, InputAdapterErrorCode, isInputAdapterError } from './errors.js';
export { compilePointer, isJsonPointer, resolvePointer, type JsonPointer } from './json-pointer.js';
export { TimeUnit, toEpochMs, type EpochMsResult } from './time.js';
export { NativeAdapter, adaptNativeObject } from './native.js';
export { FieldMapper, FieldMappingAdapter } from './field-mapping.js';
export { SchemaRegistryAdapter, readConfluentFrame, toPlainJson, type ConfluentFrame, type SchemaRegistryAdapterOptions } from './schema-registry.js';
export { createInputAdapter, parseInputAdapterConfig, type InputAdapterDependencies } from './create-input-adapter.js';
