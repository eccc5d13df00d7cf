import { readFile } from 'node:fs/promises';
import { describeIssues } from '@shadow-replay/contracts';
import { parse as parseYaml } from 'yaml';
import type { z } from 'zod';
import { PlatformError, PlatformErrorCode } from './errors.js';

/**
 * Reads a YAML file and validates it once, at start. Every problem is reported with its
 * field path, e.g. `config: experiment.candidates[1].rate.rps: Too small: expected number to be >0`.
 */
export async function loadYamlConfig<S extends z.ZodType>(file: string, schema: S): Promise<z.infer<S>> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw new PlatformError(PlatformErrorCode.configUnreadable, `config: cannot read ${file}: ${(error as Error).message}`, { cause: error });
  }
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (error) {
    throw new PlatformError(PlatformErrorCode.configInvalid, `config: ${file} is not valid YAML: ${(error as Error).message}`, { cause: error });
  }
  return validateConfig(raw ?? {}, schema, file);
}

export function validateConfig<S extends z.ZodType>(raw: unknown, schema: S, source = 'config'): z.infer<S> {
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((issue) => `  - ${describeIssues([issue])}`);
    throw new PlatformError(PlatformErrorCode.configInvalid, `config: ${source} has ${lines.length} problem(s):\n${lines.join('\n')}`);
  }
  return parsed.data;
}
