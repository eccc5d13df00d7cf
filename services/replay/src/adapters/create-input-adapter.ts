import { describeIssues } from '@shadow-replay/contracts';
import { PlatformError, PlatformErrorCode } from '@shadow-replay/platform';
import { InputAdapterConfigSchema, type InputAdapterConfig } from '@shadow-replay/contracts';
import { FieldMappingAdapter } from './field-mapping.js';
import { NativeAdapter } from './native.js';
import { SchemaRegistryAdapter } from './schema-registry.js';
import type { InputAdapter } from './types.js';

/** What the adapters need from the environment (DESIGN §6: addresses and secrets are not in the file). */
export interface InputAdapterDependencies {
  /** `SCHEMA_REGISTRY_URL`: base of the Confluent-compatible API. Required by `schema-registry`. */
  registryUrl?: string | undefined;
  registryAuth?: { username: string; password: string } | undefined;
}

/**
 * Builds the adapter a configuration names. Fails at start, with the field path, when the
 * configuration cannot work (never on the first record).
 */
export function createInputAdapter(config: InputAdapterConfig, dependencies: InputAdapterDependencies = {}, path = 'experiment.input'): InputAdapter {
  switch (config.kind) {
    case 'native':
      return new NativeAdapter();
    case 'field-mapping':
      return new FieldMappingAdapter(config.mapping);
    case 'schema-registry': {
      const registryUrl = dependencies.registryUrl;
      if (registryUrl === undefined || registryUrl === '') {
        throw new PlatformError(
          PlatformErrorCode.configInvalid,
          `config: ${path}.kind is "schema-registry" but SCHEMA_REGISTRY_URL is not set (the Confluent-compatible API, e.g. http://127.0.0.1:8081/apis/ccompat/v7 for Apicurio)`,
        );
      }
      if (!/^https?:\/\//.test(registryUrl)) {
        throw new PlatformError(PlatformErrorCode.configInvalid, `config: SCHEMA_REGISTRY_URL must be an http(s) URL (got ${JSON.stringify(registryUrl)})`);
      }
      return new SchemaRegistryAdapter({ registryUrl, mapping: config.mapping, timeoutMs: config.timeoutMs, auth: dependencies.registryAuth });
    }
  }
}

/** Validates an input configuration on its own; errors name the field path (`experiment.input.mapping.requestId: …`). */
export function parseInputAdapterConfig(raw: unknown, path = 'experiment.input'): InputAdapterConfig {
  const parsed = InputAdapterConfigSchema.safeParse(raw);
  if (parsed.success) return parsed.data;
  const prefixed = parsed.error.issues.map((issue) => ({ ...issue, path: [...path.split('.'), ...issue.path] }));
  throw new PlatformError(PlatformErrorCode.configInvalid, `config: ${describeIssues(prefixed)}`);
}
