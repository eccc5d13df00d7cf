/**
 * Debian's nginx as the reference shadowing proxy: `mirror` copies every request to a shadow
 * target while the stable upstream answers the user. nginx runs in the foreground as a child
 * of the benchmark, with a generated configuration, its pid, logs and temp files in a
 * directory of its own, listening on a free loopback port.
 *
 *   /plain/…  proxied to the stable model only (nginx's own cost as a proxy);
 *   /…        proxied to the stable model and mirrored to the shadow target.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { waitFor } from '@shadow-replay/platform';
import { request } from 'undici';
import { freePort } from './cli-service.js';

export const NGINX_INSTALL_HINT = 'The nginx comparison needs nginx: `apt-get install -y nginx-light` (Debian/Ubuntu) or pass --nginx PATH.';
export const PLAIN_PREFIX = '/plain';

export interface NginxMirrorOptions {
  nginx: string;
  dir: string;
  /** `http://127.0.0.1:<port>` of the stable model and of the shadow (mirror) target. */
  stableUrl: string;
  mirrorUrl: string;
  /** @defaultValue 1 (the gateway is one Node.js thread) */
  workerProcesses?: number;
}

/** The configuration: keep-alive to both upstreams, no buffering of answers (SSE goes through as it comes). */
export function nginxMirrorConfig(options: { dir: string; port: number; stable: string; mirror: string; workerProcesses: number; runAsRoot: boolean }): string {
  const temp = (name: string) => join(options.dir, name);
  const proxied = ['proxy_http_version 1.1;', 'proxy_set_header Connection "";', 'proxy_buffering off;', 'proxy_read_timeout 120s;'];
  return [
    // As root nginx would hand its workers to "nobody", who cannot write the temp directories.
    ...(options.runAsRoot ? ['user root;'] : []),
    `worker_processes ${options.workerProcesses};`,
    'worker_rlimit_nofile 16384;',
    `pid ${temp('nginx.pid')};`,
    `error_log ${temp('error.log')} warn;`,
    'events { worker_connections 8192; }',
    'http {',
    '  access_log off;',
    `  client_body_temp_path ${temp('body')};`,
    `  proxy_temp_path ${temp('proxy')};`,
    `  fastcgi_temp_path ${temp('fastcgi')};`,
    `  uwsgi_temp_path ${temp('uwsgi')};`,
    `  scgi_temp_path ${temp('scgi')};`,
    '  keepalive_requests 1000000;',
    '  keepalive_timeout 120s;',
    `  upstream stable { server ${options.stable}; keepalive 512; }`,
    `  upstream shadow { server ${options.mirror}; keepalive 2048; }`,
    '  server {',
    `    listen 127.0.0.1:${options.port};`,
    `    location ${PLAIN_PREFIX}/ { proxy_pass http://stable/; ${proxied.join(' ')} }`,
    `    location / { mirror /mirror; mirror_request_body on; proxy_pass http://stable; ${proxied.join(' ')} }`,
    `    location = /mirror { internal; proxy_pass http://shadow$request_uri; ${proxied.join(' ')} }`,
    '  }',
    '}',
    '',
  ].join('\n');
}

export class NginxMirror {
  readonly url: string;
  readonly errorLog: string;
  readonly #child: ChildProcess;
  readonly #exited: Promise<void>;
  #stopping: Promise<void> | undefined;

  private constructor(url: string, errorLog: string, child: ChildProcess) {
    this.url = url;
    this.errorLog = errorLog;
    this.#child = child;
    this.#exited = new Promise((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) resolve();
      else child.once('exit', () => resolve());
    });
  }

  /** Starts nginx in the foreground and waits until it proxies `/plain/healthz` to the stable model. */
  static async start(options: NginxMirrorOptions): Promise<NginxMirror> {
    await mkdir(options.dir, { recursive: true });
    const port = await freePort();
    const config = join(options.dir, 'nginx.conf');
    const errorLog = join(options.dir, 'error.log');
    await writeFile(
      config,
      nginxMirrorConfig({ dir: options.dir, port, stable: new URL(options.stableUrl).host, mirror: new URL(options.mirrorUrl).host, workerProcesses: options.workerProcesses ?? 1, runAsRoot: process.getuid?.() === 0 }),
    );
    const child = spawn(options.nginx, ['-p', options.dir, '-c', config, '-e', errorLog, '-g', 'daemon off;'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr?.on('data', (chunk: Buffer) => {
      stderr = (stderr + chunk.toString('utf8')).slice(-4_096);
    });
    const spawnError = new Promise<Error>((resolve) => child.once('error', resolve));
    const nginx = new NginxMirror(`http://127.0.0.1:${port}`, errorLog, child);
    const failed = await Promise.race([
      spawnError,
      waitFor(async () => !nginx.alive || (await httpStatus(`${nginx.url}${PLAIN_PREFIX}/healthz`)) === 200, { timeoutMs: 15_000, intervalMs: 100, what: `nginx on port ${port} (config ${config})` }).then(
        () => null,
        (error: unknown) => (error instanceof Error ? error : new Error(String(error))),
      ),
    ]);
    if (failed !== null || !nginx.alive) {
      await nginx.stop();
      throw new Error(`nginx did not start: ${failed?.message ?? 'it exited'}${stderr === '' ? '' : `\n${stderr.trim()}`}`);
    }
    return nginx;
  }

  get pid(): number | undefined {
    return this.#child.pid;
  }

  get alive(): boolean {
    return this.#child.pid !== undefined && this.#child.exitCode === null && this.#child.signalCode === null;
  }

  /** SIGTERM (fast shutdown) to the master, SIGKILL after 10 s. Idempotent. */
  stop(): Promise<void> {
    this.#stopping ??= (async () => {
      if (!this.alive) return;
      this.#child.kill('SIGTERM');
      const timer = setTimeout(() => this.#child.kill('SIGKILL'), 10_000);
      await this.#exited;
      clearTimeout(timer);
    })();
    return this.#stopping;
  }
}

/** `nginx -v`'s version line, or null when the executable is missing. */
export function nginxVersion(nginx: string): Promise<string | null> {
  return new Promise((resolve) => {
    const child = spawn(nginx, ['-v'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let out = '';
    child.stderr.on('data', (chunk: Buffer) => {
      out += chunk.toString('utf8');
    });
    child.on('error', () => resolve(null));
    child.on('close', (code) => resolve(code === 0 ? out.trim().replace(/^nginx version: /, '') : null));
  });
}

async function httpStatus(url: string): Promise<number> {
  try {
    const response = await request(url, { headersTimeout: 2_000, bodyTimeout: 2_000 });
    await response.body.dump();
    return response.statusCode;
  } catch {
    return 0;
  }
}
