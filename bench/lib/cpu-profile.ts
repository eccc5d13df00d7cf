/**
 * A CPU profile of part of a benchmark, taken in process through the inspector (like
 * `node --cpu-prof`, but only around the phase that matters), and a summary of where the
 * sampled time went: by component (our packages, each library, Node's internals, GC, idle)
 * and by function.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { Session, type Profiler } from 'node:inspector/promises';

export interface CpuProfiler {
  /** Stops sampling and returns the profile (open the written file in Chrome DevTools or VS Code). */
  stop: () => Promise<Profiler.Profile>;
}

/** Starts sampling this process every `intervalUs` microseconds. */
export async function startCpuProfile(intervalUs = 500): Promise<CpuProfiler> {
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.setSamplingInterval', { interval: intervalUs });
  await session.post('Profiler.start');
  return {
    stop: async () => {
      try {
        const { profile } = await session.post('Profiler.stop');
        return profile;
      } finally {
        session.disconnect();
      }
    },
  };
}

export async function writeCpuProfile(path: string, profile: Profiler.Profile): Promise<void> {
  // The first benchmark on a fresh checkout writes its profile before bench/results/ exists.
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, JSON.stringify(profile));
}

export interface TimeShare {
  name: string;
  ms: number;
  /** Of the sampled time, idle included. */
  pct: number;
}

export interface CpuProfileSummary {
  sampledMs: number;
  /** Sampled time the thread was not idle. */
  busyMs: number;
  byComponent: TimeShare[];
  /**
   * The same time charged to the component that caused it: Node's internals and native
   * built-ins (socket writes, string encoding) go to their nearest caller in our packages or a
   * library. GC and idle stay as they are: they have no caller.
   */
  byCause: TimeShare[];
  /** Functions by self time, idle left out. */
  topFunctions: Array<TimeShare & { location: string; component: string }>;
}

/** Where a function lives, from its script URL: the part of the system it belongs to. */
export function componentOf(url: string, functionName: string): string {
  if (url === '') {
    if (functionName === '(idle)') return 'idle';
    if (functionName === '(garbage collector)') return 'garbage collector';
    if (functionName === '(program)') return 'V8/native (program)';
    // Built-ins with no script: socket writes, string encoding, microtask runs.
    return 'native built-ins';
  }
  const library = /\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url);
  if (library?.[1] !== undefined) return library[1];
  const own = /\/(packages|services)\/([^/]+)\//.exec(url);
  if (own?.[1] !== undefined && own[2] !== undefined) return own[2] === 'sim' ? 'sim (the simulated candidate, same process)' : `${own[1]}/${own[2]}`;
  if (url.startsWith('node:internal/')) {
    const area = url.slice('node:internal/'.length).split('/')[0] ?? 'internal';
    return `node:${area.replace(/\.js$/, '')}`;
  }
  if (url.startsWith('node:')) return url.replace(/\.js$/, '');
  if (url.includes('/bench/')) return 'bench (this harness)';
  return 'other';
}

/** Self time per component and per function, from the profile's samples and their time deltas. */
export function summarizeCpuProfile(profile: Profiler.Profile, top = 15): CpuProfileSummary {
  const nodes = new Map(profile.nodes.map((node) => [node.id, node]));
  const parents = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parents.set(child, node.id);
  const selfMs = new Map<number, number>();
  const samples = profile.samples ?? [];
  const deltas = profile.timeDeltas ?? [];
  let sampledMs = 0;
  // Each delta is the time since the previous sample: charge it to the sample it precedes.
  for (let index = 0; index < samples.length; index++) {
    const id = samples[index];
    const ms = (deltas[index] ?? 0) / 1000;
    if (id === undefined || ms <= 0) continue;
    selfMs.set(id, (selfMs.get(id) ?? 0) + ms);
    sampledMs += ms;
  }
  const components = new Map<string, number>();
  const causes = new Map<string, number>();
  const causeOf = (id: number): string => {
    const own = nodes.get(id)?.callFrame;
    const ownComponent = own === undefined ? 'other' : componentOf(own.url, own.functionName);
    if (!isPlumbing(ownComponent)) return ownComponent;
    for (let at = parents.get(id); at !== undefined; at = parents.get(at)) {
      const frame = nodes.get(at)?.callFrame;
      if (frame === undefined) break;
      const component = componentOf(frame.url, frame.functionName);
      if (!isPlumbing(component)) return component;
    }
    return ownComponent;
  };
  const functions = new Map<string, { name: string; location: string; component: string; ms: number }>();
  for (const [id, ms] of selfMs) {
    const frame = nodes.get(id)?.callFrame;
    if (frame === undefined) continue;
    const component = componentOf(frame.url, frame.functionName);
    components.set(component, (components.get(component) ?? 0) + ms);
    const cause = causeOf(id);
    causes.set(cause, (causes.get(cause) ?? 0) + ms);
    if (component === 'idle') continue;
    // Lines of TypeScript run through tsx are those of the transpiled code: the file alone says more.
    const location = frame.url === '' ? '' : frame.url.endsWith('.ts') ? shortUrl(frame.url) : `${shortUrl(frame.url)}:${frame.lineNumber + 1}`;
    const name = frame.functionName === '' ? '(anonymous)' : frame.functionName;
    const key = `${name} ${location}`;
    const entry = functions.get(key) ?? { name, location, component, ms: 0 };
    entry.ms += ms;
    functions.set(key, entry);
  }
  const share = (ms: number) => (sampledMs > 0 ? (ms / sampledMs) * 100 : 0);
  return {
    sampledMs,
    busyMs: sampledMs - (components.get('idle') ?? 0),
    byComponent: [...components].map(([name, ms]) => ({ name, ms, pct: share(ms) })).sort((a, b) => b.ms - a.ms),
    byCause: [...causes].map(([name, ms]) => ({ name, ms, pct: share(ms) })).sort((a, b) => b.ms - a.ms),
    topFunctions: [...functions.values()]
      .sort((a, b) => b.ms - a.ms)
      .slice(0, top)
      .map((entry) => ({ ...entry, pct: share(entry.ms) })),
  };
}

/** Work done on someone else's behalf: Node's internals and native built-ins. */
function isPlumbing(component: string): boolean {
  return component === 'native built-ins' || component.startsWith('node:');
}

function shortUrl(url: string): string {
  const library = url.lastIndexOf('/node_modules/');
  if (library >= 0) return url.slice(library + '/node_modules/'.length);
  const own = /\/((?:packages|services|bench)\/.*)$/.exec(url);
  return own?.[1] ?? url.replace(/^file:\/\//, '');
}
