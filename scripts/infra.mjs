#!/usr/bin/env node
// Local infrastructure for machines without a Docker engine: a single-node Kafka (KRaft, broker+controller),
// Apicurio Registry (Confluent-compatible API at /apis/ccompat/v7) and the machine's Redis.
//
//   node scripts/infra.mjs up        start what is not running, wait until each service answers, print env exports
//   node scripts/infra.mjs down      stop the Kafka and Apicurio that `up` started (Redis is left alone)
//   node scripts/infra.mjs status    up/down of each service (--json for a machine-readable object)
//
// Artifacts come from Maven Central through infra/pom.xml (cached in ~/.m2) and are copied once into the
// git-ignored .infra/ folder at the repository root. Everything binds to 127.0.0.1 only.
//
// The module is importable without side effects: infraUp(), infraDown(), infraStatus() for test runners.

import { spawn, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';

const SCRIPT_DIR = path.dirname(fileURLToPath(import.meta.url));
export const REPO_ROOT = path.resolve(SCRIPT_DIR, '..');
const INFRA_DIR = path.join(REPO_ROOT, '.infra');
const POM = path.join(REPO_ROOT, 'infra', 'pom.xml');
const KAFKA_LOG4J = path.join(SCRIPT_DIR, 'infra-log4j.properties');

const HOST = '127.0.0.1';
const REDIS_PORT = 6379;
const CCOMPAT_PATH = '/apis/ccompat/v7';
// Apicurio Registry 3.3.x is compiled for Java 21 (class file version 65); Kafka 3.9 runs on Java 11+.
const KAFKA_MIN_JAVA = 11;
const REGISTRY_MIN_JAVA = 21;

const P = {
  kafkaDir: path.join(INFRA_DIR, 'kafka'),
  kafkaLibs: path.join(INFRA_DIR, 'kafka', 'libs'),
  kafkaData: path.join(INFRA_DIR, 'kafka', 'data'),
  kafkaProps: path.join(INFRA_DIR, 'kafka', 'server.properties'),
  kafkaLog: path.join(INFRA_DIR, 'kafka', 'server.log'),
  kafkaPid: path.join(INFRA_DIR, 'kafka', 'kafka.pid'),
  kafkaClusterId: path.join(INFRA_DIR, 'kafka', 'cluster-id'),
  kafkaStamp: path.join(INFRA_DIR, 'kafka', 'libs', '.complete'),
  regDir: path.join(INFRA_DIR, 'apicurio'),
  regJar: path.join(INFRA_DIR, 'apicurio', 'quarkus-run.jar'),
  regData: path.join(INFRA_DIR, 'apicurio', 'data'),
  regLog: path.join(INFRA_DIR, 'apicurio', 'server.log'),
  regPid: path.join(INFRA_DIR, 'apicurio', 'apicurio.pid'),
  regStamp: path.join(INFRA_DIR, 'apicurio', '.complete'),
  lock: path.join(INFRA_DIR, '.lock'),
};

export class InfraError extends Error {}

// ---------------------------------------------------------------------------------------------------------------
// configuration

function envPort(name, fallback) {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > 65535) throw new InfraError(`${name}=${raw} is not a TCP port`);
  return n;
}

/** Addresses, read from the environment at call time (so a test runner can set them before calling). */
export function infraConfig() {
  const kafkaPort = envPort('SHADOW_INFRA_KAFKA_PORT', 9092);
  const controllerPort = envPort('SHADOW_INFRA_KAFKA_CONTROLLER_PORT', kafkaPort + 1);
  const registryPort = envPort('SHADOW_INFRA_REGISTRY_PORT', 8081);
  if (controllerPort === kafkaPort) throw new InfraError('the Kafka controller port must differ from the broker port');
  const storage = (process.env.SHADOW_INFRA_REGISTRY_STORAGE || 'file').toLowerCase();
  if (storage !== 'file' && storage !== 'memory') {
    throw new InfraError(`SHADOW_INFRA_REGISTRY_STORAGE=${storage}: use "file" (default) or "memory"`);
  }
  return {
    kafkaPort,
    controllerPort,
    registryPort,
    registryStorage: storage,
    kafkaAddress: `${HOST}:${kafkaPort}`,
    registryUrl: `http://${HOST}:${registryPort}${CCOMPAT_PATH}`,
    redisUrl: `redis://${HOST}:${REDIS_PORT}`,
  };
}

function envExports(cfg) {
  return { KAFKA_BROKERS: cfg.kafkaAddress, SCHEMA_REGISTRY_URL: cfg.registryUrl, REDIS_URL: cfg.redisUrl };
}

// ---------------------------------------------------------------------------------------------------------------
// small helpers

const exists = (p) => fs.existsSync(p);
/** A path as the user best reads it: relative to the cwd when inside it, absolute otherwise. */
const show = (p) => {
  const rel = path.relative(process.cwd(), p);
  return rel && !rel.startsWith('..') && !path.isAbsolute(rel) ? rel : p;
};
const elapsed = (t0) => `${Math.round((Date.now() - t0) / 1000)}s`;

function which(cmd) {
  for (const dir of (process.env.PATH || '').split(path.delimiter)) {
    if (!dir) continue;
    const full = path.join(dir, cmd);
    try {
      fs.accessSync(full, fs.constants.X_OK);
      if (fs.statSync(full).isFile()) return full;
    } catch {
      /* not here */
    }
  }
  return null;
}

function tailFile(file, lines = 30) {
  try {
    const fd = fs.openSync(file, 'r');
    try {
      const size = fs.fstatSync(fd).size;
      const len = Math.min(size, 256 * 1024);
      const buf = Buffer.alloc(len);
      fs.readSync(fd, buf, 0, len, size - len);
      const all = buf.toString('utf8').split(/\r?\n/);
      if (all.at(-1) === '') all.pop();
      return all.slice(-lines);
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    return [];
  }
}

/** The first ERROR/FATAL line of a log (the cause), which a long stack trace may push out of the tail. */
function firstErrorLine(file) {
  try {
    const fd = fs.openSync(file, 'r');
    try {
      const buf = Buffer.alloc(Math.min(fs.fstatSync(fd).size, 4 * 1024 * 1024));
      fs.readSync(fd, buf, 0, buf.length, 0);
      return buf.toString('utf8').split(/\r?\n/).find((l) => /\b(ERROR|FATAL)\b/.test(l)) ?? null;
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    return null;
  }
}

function formatTail(file, lines = 30) {
  const rel = show(file);
  const tail = tailFile(file, lines);
  if (tail.length === 0) return `(${rel} is empty or missing)`;
  const first = firstErrorLine(file);
  const cause = first && !tail.includes(first) ? [`first error in ${rel}:`, `  | ${first}`] : [];
  return [...cause, `last ${tail.length} lines of ${rel}:`, ...tail.map((l) => `  | ${l}`)].join('\n');
}

function readPid(file) {
  try {
    const n = Number(fs.readFileSync(file, 'utf8').trim());
    return Number.isInteger(n) && n > 0 ? n : null;
  } catch {
    return null;
  }
}

function pidAlive(pid) {
  try {
    process.kill(pid, 0);
  } catch (e) {
    if (e.code !== 'EPERM') return false;
  }
  try {
    // a zombie still answers kill(0); /proc tells it apart (Linux only; elsewhere assume alive)
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return true;
  }
}

const markerArgs = (service) => [`-Dshadow.infra.service=${service}`, `-Dshadow.infra.root=${REPO_ROOT}`];

function cmdlineOf(pid) {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
  } catch {
    return null;
  }
}

function isOurs(pid, service) {
  if (!pidAlive(pid)) return false;
  const args = cmdlineOf(pid);
  if (args === null) return !exists('/proc/self'); // no /proc: trust the pid file
  const [a, b] = markerArgs(service);
  return args.includes(a) && args.includes(b);
}

/** Our JVMs for a service: the pid file's, plus any found by their command-line marker (a lost pid file). */
function findOurPids(service) {
  const pids = new Set();
  const fromFile = readPid(service === 'kafka' ? P.kafkaPid : P.regPid);
  if (fromFile && isOurs(fromFile, service)) pids.add(fromFile);
  let entries = [];
  try {
    entries = fs.readdirSync('/proc');
  } catch {
    /* not Linux */
  }
  for (const e of entries) {
    if (!/^\d+$/.test(e)) continue;
    const pid = Number(e);
    if (pid !== process.pid && isOurs(pid, service)) pids.add(pid);
  }
  return [...pids];
}

function portOpen(port, host = HOST, timeoutMs = 700) {
  return new Promise((resolve) => {
    const sock = net.connect({ port, host });
    const done = (ok) => {
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(timeoutMs, () => done(false));
    sock.once('connect', () => done(true));
    sock.once('error', () => done(false));
  });
}

function rotateLog(file) {
  try {
    if (exists(file)) fs.renameSync(file, `${file}.1`);
  } catch {
    /* keep appending */
  }
}

// ---------------------------------------------------------------------------------------------------------------
// probes: each talks to the service in its own protocol

async function probeKafka(cfg) {
  const { Kafka, logLevel } = await import('kafkajs');
  const kafka = new Kafka({
    clientId: 'shadow-infra-probe',
    brokers: [cfg.kafkaAddress],
    logLevel: logLevel.NOTHING,
    connectionTimeout: 1000,
    requestTimeout: 3000,
    retry: { retries: 0 },
  });
  const admin = kafka.admin({ retry: { retries: 0 } });
  try {
    await admin.connect();
    const cluster = await admin.describeCluster();
    if (!cluster.brokers || cluster.brokers.length === 0) return false;
    await admin.listTopics();
    return true;
  } catch {
    return false;
  } finally {
    await admin.disconnect().catch(() => {});
  }
}

function probeRegistry(cfg) {
  return new Promise((resolve) => {
    const req = http.get(`${cfg.registryUrl}/subjects`, { agent: false, timeout: 2000, headers: { accept: 'application/json' } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (body += c));
      res.on('end', () => {
        if (res.statusCode !== 200) return resolve(false);
        try {
          resolve(Array.isArray(JSON.parse(body)));
        } catch {
          resolve(false);
        }
      });
      res.on('error', () => resolve(false));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', () => resolve(false));
  });
}

async function probeRedis() {
  const { default: Redis } = await import('ioredis');
  const client = new Redis({
    host: HOST,
    port: REDIS_PORT,
    lazyConnect: true,
    connectTimeout: 1000,
    commandTimeout: 1500,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    retryStrategy: () => null,
    reconnectOnError: () => false,
  });
  client.on('error', () => {});
  try {
    await client.connect();
    return (await client.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    client.disconnect();
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Java and Maven

function javaMajor(javaBin) {
  try {
    const release = path.join(path.dirname(path.dirname(fs.realpathSync(javaBin))), 'release');
    const m = /JAVA_VERSION="(\d+)(?:\.(\d+))?/.exec(fs.readFileSync(release, 'utf8'));
    if (m) return m[1] === '1' ? Number(m[2]) : Number(m[1]);
  } catch {
    /* no release file: ask the binary */
  }
  const r = spawnSync(javaBin, ['-version'], { encoding: 'utf8', timeout: 20000 });
  const m = /version "(\d+)(?:\.(\d+))?/.exec(`${r.stderr}${r.stdout}`);
  if (!m) return null;
  return m[1] === '1' ? Number(m[2]) : Number(m[1]);
}

/** The first Java >= min from JAVA_HOME, PATH, then the JDKs under /usr/lib/jvm (newest first). */
function findJava(minMajor) {
  const seen = new Map();
  const consider = (bin) => {
    if (!bin) return;
    let real;
    try {
      real = fs.realpathSync(bin);
      fs.accessSync(real, fs.constants.X_OK);
    } catch {
      return;
    }
    if (!seen.has(real)) seen.set(real, { bin, major: javaMajor(real) });
  };
  if (process.env.JAVA_HOME) consider(path.join(process.env.JAVA_HOME, 'bin', 'java'));
  consider(which('java'));
  for (const base of ['/usr/lib/jvm', '/usr/local/lib/jvm', '/opt/java']) {
    let dirs = [];
    try {
      dirs = fs.readdirSync(base);
    } catch {
      continue;
    }
    const found = dirs.map((d) => path.join(base, d, 'bin', 'java')).filter(exists);
    found.map((bin) => ({ bin, major: javaMajor(bin) ?? 0 })).sort((a, b) => b.major - a.major).forEach((j) => consider(j.bin));
  }
  const all = [...seen.values()];
  return { java: all.find((j) => j.major !== null && j.major >= minMajor) ?? null, all };
}

function requireJava(minMajor, what) {
  const { java, all } = findJava(minMajor);
  if (java) return java.bin;
  if (all.length === 0) {
    throw new InfraError(
      `Java is not installed (no java on PATH, JAVA_HOME unset). ${what} needs Java ${minMajor}+.\n` +
        `  Debian/Ubuntu: apt-get install openjdk-17-jre-headless maven`,
    );
  }
  const found = all.map((j) => `Java ${j.major ?? '?'} (${j.bin})`).join(', ');
  throw new InfraError(
    `${what} needs Java ${minMajor} or newer; found only ${found}.\n` +
      `  Install a JDK ${minMajor}+ (e.g. Debian 13: apt-get install openjdk-${Math.max(minMajor, 21)}-jre-headless, ` +
      `or any JDK unpacked under /usr/lib/jvm) or point JAVA_HOME at one.`,
  );
}

function pomVersions() {
  let pom = '';
  try {
    pom = fs.readFileSync(POM, 'utf8');
  } catch {
    throw new InfraError(`${POM} is missing`);
  }
  const prop = (name) => new RegExp(`<${name}>([^<]+)</${name}>`).exec(pom)?.[1] ?? '?';
  return { hash: crypto.createHash('sha256').update(pom).digest('hex'), kafka: prop('kafka.version'), apicurio: prop('apicurio.version') };
}

function stampOk(stampFile, hash) {
  try {
    return fs.readFileSync(stampFile, 'utf8').trim() === hash;
  } catch {
    return false;
  }
}

async function withTicker(log, label, fn) {
  const t0 = Date.now();
  const timer = setInterval(() => log(`${label}… ${elapsed(t0)}`), 5000);
  try {
    return await fn();
  } finally {
    clearInterval(timer);
  }
}

function runAsync(cmd, args, opts = {}) {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...opts });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    child.on('error', (e) => resolve({ code: -1, out: `${out}${e.message}` }));
    child.on('close', (code) => resolve({ code, out }));
  });
}

/** Copy the artifacts into .infra/ when they are missing or infra/pom.xml changed since they were copied. */
async function ensureArtifacts({ kafka, registry }, log) {
  const pv = pomVersions();
  const needKafka = kafka && !(stampOk(P.kafkaStamp, pv.hash) && exists(path.join(P.kafkaLibs, `kafka_2.13-${pv.kafka}.jar`)));
  const needRegistry = registry && !(stampOk(P.regStamp, pv.hash) && exists(P.regJar));
  if (!needKafka && !needRegistry) return;

  const mvn = which('mvn');
  if (!mvn) throw new InfraError('Maven (mvn) is needed to fetch Kafka and Apicurio into .infra/.\n  Debian/Ubuntu: apt-get install maven openjdk-17-jre-headless');
  if (needRegistry && !which('tar')) throw new InfraError('tar is needed to unpack Apicurio Registry (apt-get install tar)');

  fs.mkdirSync(INFRA_DIR, { recursive: true });
  const tmp = fs.mkdtempSync(path.join(INFRA_DIR, '.fetch-'));
  try {
    const what = [needKafka && `Kafka ${pv.kafka}`, needRegistry && `Apicurio Registry ${pv.apicurio}`].filter(Boolean).join(' and ');
    log(`fetching ${what} with Maven (cached in ~/.m2; the first run downloads ~350 MB)`);
    const t0 = Date.now();
    const r = await withTicker(log, 'still fetching', () =>
      runAsync(mvn, ['-q', '-B', '-f', POM, 'dependency:copy-dependencies', `-DoutputDirectory=${path.join(tmp, 'out')}`], { cwd: REPO_ROOT }),
    );
    if (r.code !== 0) throw new InfraError(`mvn dependency:copy-dependencies failed (exit ${r.code}):\n${r.out.trim().split('\n').slice(-30).join('\n')}`);
    const files = fs.readdirSync(path.join(tmp, 'out'));

    if (needKafka) {
      const staged = path.join(tmp, 'libs');
      fs.mkdirSync(staged);
      for (const f of files.filter((f) => f.endsWith('.jar'))) fs.renameSync(path.join(tmp, 'out', f), path.join(staged, f));
      if (!exists(path.join(staged, `kafka_2.13-${pv.kafka}.jar`))) throw new InfraError(`Maven did not deliver kafka_2.13-${pv.kafka}.jar`);
      fs.writeFileSync(path.join(staged, '.complete'), `${pv.hash}\n`);
      fs.mkdirSync(P.kafkaDir, { recursive: true });
      fs.rmSync(P.kafkaLibs, { recursive: true, force: true });
      fs.renameSync(staged, P.kafkaLibs);
    }

    if (needRegistry) {
      const tgz = files.find((f) => f.startsWith('apicurio-registry-app-') && f.endsWith('.tar.gz'));
      if (!tgz) throw new InfraError('Maven did not deliver the apicurio-registry-app tar.gz');
      const staged = path.join(tmp, 'apicurio');
      fs.mkdirSync(staged);
      const x = await runAsync('tar', ['--no-same-owner', '-xzf', path.join(tmp, 'out', tgz), '-C', staged]);
      if (x.code !== 0) throw new InfraError(`unpacking ${tgz} failed:\n${x.out}`);
      // Also accept an archive with one top-level folder.
      let root = staged;
      if (!exists(path.join(root, 'quarkus-run.jar'))) {
        const sub = fs.readdirSync(staged).map((d) => path.join(staged, d)).find((d) => exists(path.join(d, 'quarkus-run.jar')));
        if (!sub) throw new InfraError(`${tgz} has no quarkus-run.jar`);
        root = sub;
      }
      // Replace the application files; keep data/ and the logs.
      fs.mkdirSync(P.regDir, { recursive: true });
      fs.rmSync(P.regStamp, { force: true });
      for (const entry of fs.readdirSync(root)) {
        fs.rmSync(path.join(P.regDir, entry), { recursive: true, force: true });
        fs.renameSync(path.join(root, entry), path.join(P.regDir, entry));
      }
      fs.writeFileSync(P.regStamp, `${pv.hash}\n`);
    }
    log(`artifacts ready in ${show(INFRA_DIR)} (${elapsed(t0)})`);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Kafka

function kafkaClusterId() {
  try {
    const id = fs.readFileSync(P.kafkaClusterId, 'utf8').trim();
    if (id) return id;
  } catch {
    /* make one */
  }
  let id;
  do id = crypto.randomBytes(16).toString('base64url'); // Kafka's Uuid: 16 bytes, url-safe base64, no padding
  while (id.startsWith('-'));
  fs.writeFileSync(P.kafkaClusterId, `${id}\n`);
  return id;
}

function writeKafkaProps(cfg) {
  const esc = (v) => v.replace(/\\/g, '\\\\');
  const lines = [
    '# Written by scripts/infra.mjs on every start of Kafka: edits here are overwritten.',
    'process.roles=broker,controller',
    'node.id=1',
    `controller.quorum.voters=1@${HOST}:${cfg.controllerPort}`,
    `listeners=PLAINTEXT://${HOST}:${cfg.kafkaPort},CONTROLLER://${HOST}:${cfg.controllerPort}`,
    `advertised.listeners=PLAINTEXT://${HOST}:${cfg.kafkaPort}`,
    'inter.broker.listener.name=PLAINTEXT',
    'controller.listener.names=CONTROLLER',
    'listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT',
    `log.dirs=${esc(P.kafkaData)}`,
    'num.partitions=3',
    'default.replication.factor=1',
    'min.insync.replicas=1',
    'offsets.topic.replication.factor=1',
    'offsets.topic.num.partitions=10',
    'transaction.state.log.replication.factor=1',
    'transaction.state.log.min.isr=1',
    'transaction.state.log.num.partitions=10',
    'group.initial.rebalance.delay.ms=0',
    'auto.create.topics.enable=false',
    'delete.topic.enable=true',
    'log.retention.hours=168',
    'log.segment.bytes=268435456',
    '',
  ];
  fs.writeFileSync(P.kafkaProps, lines.join('\n'));
}

async function formatKafkaStorage(java, log) {
  if (exists(path.join(P.kafkaData, 'meta.properties'))) return;
  const id = kafkaClusterId();
  const r = await runAsync(
    java,
    [
      '-Xmx256m',
      `-Dlog4j.configuration=${pathToFileURL(KAFKA_LOG4J).href}`,
      '-cp',
      path.join(P.kafkaLibs, '*'),
      'kafka.tools.StorageTool',
      'format',
      '--cluster-id',
      id,
      '--config',
      P.kafkaProps,
      '--ignore-formatted',
    ],
    { cwd: P.kafkaDir },
  );
  if (r.code !== 0) throw new InfraError(`formatting the KRaft storage failed (exit ${r.code}):\n${r.out.trim()}`);
  log(`formatted KRaft storage in ${show(P.kafkaData)} (cluster id ${id})`);
}

function spawnDetached(java, args, { cwd, logFile, pidFile, header }) {
  rotateLog(logFile);
  const fd = fs.openSync(logFile, 'a');
  try {
    fs.writeSync(fd, `${header}\n`);
    const child = spawn(java, args, { cwd, detached: true, stdio: ['ignore', fd, fd] });
    child.on('error', () => {}); // reported through the readiness wait (the process is gone)
    child.unref();
    if (!child.pid) throw new InfraError(`could not start ${java}`);
    fs.writeFileSync(pidFile, `${child.pid}\n`);
    return child.pid;
  } finally {
    fs.closeSync(fd);
  }
}

async function startKafka(cfg, java, log) {
  fs.mkdirSync(P.kafkaData, { recursive: true });
  writeKafkaProps(cfg);
  await formatKafkaStorage(java, log);
  const args = [
    '-Xms256m',
    '-Xmx768m',
    '-XX:+UseG1GC',
    '-XX:MaxGCPauseMillis=20',
    '-XX:InitiatingHeapOccupancyPercent=35',
    '-XX:+ExplicitGCInvokesConcurrent',
    '-Djava.awt.headless=true',
    `-Dlog4j.configuration=${pathToFileURL(KAFKA_LOG4J).href}`,
    `-Dkafka.logs.dir=${P.kafkaDir}`,
    ...markerArgs('kafka'),
    '-cp',
    path.join(P.kafkaLibs, '*'),
    'kafka.Kafka',
    P.kafkaProps,
  ];
  const pid = spawnDetached(java, args, {
    cwd: P.kafkaDir,
    logFile: P.kafkaLog,
    pidFile: P.kafkaPid,
    header: `==== scripts/infra.mjs started Kafka at ${new Date().toISOString()} on ${cfg.kafkaAddress}: ${java}`,
  });
  log(`started Kafka on ${cfg.kafkaAddress} (pid ${pid}, log ${show(P.kafkaLog)})`);
  return pid;
}

// ---------------------------------------------------------------------------------------------------------------
// Apicurio Registry (Quarkus fast-jar)

function startRegistry(cfg, java, log) {
  const storageArgs = [];
  if (cfg.registryStorage === 'file') {
    // The default is H2 in memory (jdbc:h2:mem:…): schemas and their ids would be lost on every restart while
    // Kafka keeps the records that reference those ids. An H2 file keeps both in step; --purge removes both.
    fs.mkdirSync(P.regData, { recursive: true });
    storageArgs.push(`-Dapicurio.datasource.url=jdbc:h2:file:${path.join(P.regData, 'registry')}`);
  }
  const args = [
    '-Xms128m',
    '-Xmx512m',
    '-Djava.awt.headless=true',
    `-Dquarkus.http.host=${HOST}`,
    `-Dquarkus.http.port=${cfg.registryPort}`,
    // health/metrics live on a separate management interface (0.0.0.0:9000 by default): loopback, any free port
    `-Dquarkus.management.host=${HOST}`,
    '-Dquarkus.management.port=0',
    '-Dquarkus.log.console.format=%d{yyyy-MM-dd HH:mm:ss,SSS} %-5p [%c{3.}] (%t) %s%e%n',
    ...storageArgs,
    ...markerArgs('apicurio'),
    '-jar',
    P.regJar,
  ];
  const pid = spawnDetached(java, args, {
    cwd: P.regDir,
    logFile: P.regLog,
    pidFile: P.regPid,
    header: `==== scripts/infra.mjs started Apicurio Registry at ${new Date().toISOString()} on ${cfg.registryUrl}: ${java}`,
  });
  log(`started Apicurio Registry on http://${HOST}:${cfg.registryPort} (pid ${pid}, ${cfg.registryStorage} storage, log ${show(P.regLog)})`);
  return pid;
}

// ---------------------------------------------------------------------------------------------------------------
// Redis (the machine's; started only when it does not answer and redis-server exists)

async function ensureRedis(log) {
  if (await probeRedis()) return { started: false };
  if (await portOpen(REDIS_PORT)) {
    throw new InfraError(`something listens on ${HOST}:${REDIS_PORT} but does not answer PING (a Redis with a password?)`);
  }
  const bin = which('redis-server');
  if (!bin) throw new InfraError(`Redis does not answer at ${HOST}:${REDIS_PORT} and redis-server is not installed.\n  Debian/Ubuntu: apt-get install redis-server`);
  const args = ['--daemonize', 'yes', '--bind', '127.0.0.1', '-::1', '--port', String(REDIS_PORT), '--save', '', '--appendonly', 'no'];
  log(`starting Redis: redis-server ${args.map((a) => (a === '' ? '""' : a)).join(' ')}`);
  const r = await runAsync(bin, args, { cwd: INFRA_DIR });
  if (r.code !== 0) throw new InfraError(`redis-server failed (exit ${r.code}):\n${r.out.trim()}`);
  return { started: true };
}

// ---------------------------------------------------------------------------------------------------------------
// waiting

function makeProgress(log) {
  const pending = new Map();
  const t0 = Date.now();
  let timer = null;
  return {
    add(name) {
      pending.set(name, Date.now());
      if (!timer) {
        timer = setInterval(() => {
          if (pending.size) log(`waiting for ${[...pending.keys()].join(', ')}… ${elapsed(t0)}`);
        }, 2000);
      }
    },
    done(name) {
      pending.delete(name);
      if (pending.size === 0 && timer) {
        clearInterval(timer);
        timer = null;
      }
    },
    stop() {
      if (timer) clearInterval(timer);
      timer = null;
    },
  };
}

async function waitReady({ name, probe, timeoutMs, pid, logFile, progress, log, hintNotOurs }) {
  const t0 = Date.now();
  const deadline = t0 + timeoutMs;
  progress.add(name);
  try {
    for (;;) {
      if (await probe()) {
        log(`${name} is ready (${elapsed(t0)})`);
        return;
      }
      if (pid && !pidAlive(pid)) {
        const tail = logFile ? `\n${formatTail(logFile)}` : '';
        const hint = logFile && tailFile(logFile, 200).some((l) => l.includes('UnsupportedClassVersionError'))
          ? `\n${name} needs a newer Java than the one it was started with (see UnsupportedClassVersionError above).`
          : '';
        throw new InfraError(`${name} exited during startup (pid ${pid}).${tail}${hint}`);
      }
      if (Date.now() >= deadline) {
        const why = pid
          ? `${name} did not answer within ${timeoutMs / 1000}s; it is still running as pid ${pid} ('node scripts/infra.mjs down' stops it).`
          : `${name} did not answer within ${timeoutMs / 1000}s.${hintNotOurs ? ` ${hintNotOurs}` : ''}`;
        throw new InfraError(logFile ? `${why}\n${formatTail(logFile)}` : why);
      }
      await sleep(500);
    }
  } finally {
    progress.done(name);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// lock: one `up`/`down` at a time per checkout (two test runners may call infraUp together)

async function withLock(log, fn) {
  fs.mkdirSync(INFRA_DIR, { recursive: true });
  const owner = path.join(P.lock, 'pid');
  const t0 = Date.now();
  let announced = false;
  for (;;) {
    try {
      fs.mkdirSync(P.lock);
      fs.writeFileSync(owner, `${process.pid}\n`);
      break;
    } catch (e) {
      if (e.code !== 'EEXIST') throw e;
      const holder = readPid(owner);
      let age = 0;
      try {
        age = Date.now() - fs.statSync(P.lock).mtimeMs;
      } catch {
        continue;
      }
      if ((holder && !pidAlive(holder)) || (!holder && age > 10000)) {
        fs.rmSync(P.lock, { recursive: true, force: true });
        continue;
      }
      if (Date.now() - t0 > 15 * 60 * 1000) throw new InfraError(`another infra.mjs (pid ${holder}) holds ${P.lock} for too long`);
      if (!announced) {
        log(`waiting for another infra.mjs (pid ${holder ?? '?'}) to finish…`);
        announced = true;
      }
      await sleep(250);
    }
  }
  const release = () => {
    try {
      if (readPid(owner) === process.pid) fs.rmSync(P.lock, { recursive: true, force: true });
    } catch {
      /* already gone */
    }
  };
  process.once('exit', release);
  try {
    return await fn();
  } finally {
    release();
    process.removeListener('exit', release);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// public API

const stderrLog = (line) => process.stderr.write(`${line}\n`);

/**
 * Start whatever is not running and wait until every service answers.
 * Resolves to { env: {KAFKA_BROKERS, SCHEMA_REGISTRY_URL, REDIS_URL}, started: [...], kafka, schemaRegistry, redis };
 * rejects with an InfraError (message includes the service's log tail) when a service does not come up.
 * @param {{log?: (line: string) => void, quiet?: boolean, kafkaTimeoutMs?: number, registryTimeoutMs?: number, redisTimeoutMs?: number}} [opts]
 */
export async function infraUp(opts = {}) {
  const log = opts.quiet ? () => {} : (opts.log ?? stderrLog);
  const kafkaTimeoutMs = opts.kafkaTimeoutMs ?? 90_000;
  const registryTimeoutMs = opts.registryTimeoutMs ?? 120_000;
  const redisTimeoutMs = opts.redisTimeoutMs ?? 15_000;
  const cfg = infraConfig();

  return withLock(log, async () => {
    const [kafkaPortOpen, registryPortOpen] = await Promise.all([portOpen(cfg.kafkaPort), portOpen(cfg.registryPort)]);
    const kafkaPids = findOurPids('kafka');
    const registryPids = findOurPids('apicurio');
    const startK = !kafkaPortOpen && kafkaPids.length === 0;
    const startR = !registryPortOpen && registryPids.length === 0;

    // Prerequisites first, so nothing is half-started when one is missing.
    const kafkaJava = startK ? requireJava(KAFKA_MIN_JAVA, `Kafka ${pomVersions().kafka}`) : null;
    const registryJava = startR ? requireJava(REGISTRY_MIN_JAVA, `Apicurio Registry ${pomVersions().apicurio}`) : null;
    if (startK || startR) await ensureArtifacts({ kafka: startK, registry: startR }, log);

    const started = [];
    let kafkaPid = kafkaPids[0] ?? null;
    let registryPid = registryPids[0] ?? null;
    if (startK) {
      kafkaPid = await startKafka(cfg, kafkaJava, log);
      started.push('kafka');
    } else if (!kafkaPortOpen) {
      log(`Kafka started earlier is still starting (pid ${kafkaPid})`);
    }
    if (startR) {
      registryPid = startRegistry(cfg, registryJava, log);
      started.push('schemaRegistry');
    } else if (!registryPortOpen) {
      log(`Apicurio Registry started earlier is still starting (pid ${registryPid})`);
    }

    const progress = makeProgress(log);
    const quiet = () => {};
    const results = await Promise.allSettled([
      waitReady({
        name: 'Kafka',
        probe: () => probeKafka(cfg),
        timeoutMs: kafkaTimeoutMs,
        pid: kafkaPid,
        logFile: kafkaPid ? P.kafkaLog : null,
        progress,
        log: startK || !kafkaPortOpen ? log : quiet,
        hintNotOurs: `Something listens on ${cfg.kafkaAddress} that infra.mjs did not start and that does not answer as a Kafka broker.`,
      }),
      waitReady({
        name: 'Apicurio Registry',
        probe: () => probeRegistry(cfg),
        timeoutMs: registryTimeoutMs,
        pid: registryPid,
        logFile: registryPid ? P.regLog : null,
        progress,
        log: startR || !registryPortOpen ? log : quiet,
        hintNotOurs: `Something listens on ${HOST}:${cfg.registryPort} that infra.mjs did not start and that does not serve ${CCOMPAT_PATH}/subjects.`,
      }),
      (async () => {
        const r = await ensureRedis(log);
        if (r.started) started.push('redis');
        await waitReady({ name: 'Redis', probe: probeRedis, timeoutMs: redisTimeoutMs, progress, log: r.started ? log : quiet });
      })(),
    ]);
    progress.stop();

    const failures = results.filter((r) => r.status === 'rejected').map((r) => r.reason);
    if (failures.length) {
      const err = new InfraError(failures.map((f) => (f instanceof InfraError ? f.message : String(f?.stack ?? f))).join('\n\n'));
      err.failures = failures;
      throw err;
    }
    return {
      env: envExports(cfg),
      started,
      kafka: { up: true, address: cfg.kafkaAddress },
      schemaRegistry: { up: true, url: cfg.registryUrl },
      redis: { up: true, url: cfg.redisUrl },
    };
  });
}

/** {kafka:{up,address}, schemaRegistry:{up,url}, redis:{up,url}} by talking to each service. */
export async function infraStatus() {
  const cfg = infraConfig();
  const [k, s, r] = await Promise.all([probeKafka(cfg), probeRegistry(cfg), probeRedis()]);
  return {
    kafka: { up: k, address: cfg.kafkaAddress },
    schemaRegistry: { up: s, url: cfg.registryUrl },
    redis: { up: r, url: cfg.redisUrl },
  };
}

async function stopService(service, name, timeoutMs, log) {
  const pidFile = service === 'kafka' ? P.kafkaPid : P.regPid;
  const pids = findOurPids(service);
  if (pids.length === 0) {
    fs.rmSync(pidFile, { force: true });
    log(`${name}: not running`);
    return true;
  }
  const t0 = Date.now();
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      /* gone */
    }
  }
  const waitGone = async (until) => {
    while (Date.now() < until) {
      if (pids.every((p) => !pidAlive(p))) return true;
      await sleep(200);
    }
    return pids.every((p) => !pidAlive(p));
  };
  let gone = await waitGone(t0 + timeoutMs);
  if (!gone) {
    log(`${name} did not stop within ${timeoutMs / 1000}s after SIGTERM: SIGKILL`);
    for (const pid of pids.filter(pidAlive)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    gone = await waitGone(Date.now() + 10_000);
  }
  if (!gone) {
    log(`${name}: pid ${pids.filter(pidAlive).join(', ')} is still alive`);
    return false;
  }
  fs.rmSync(pidFile, { force: true });
  log(`stopped ${name} (pid ${pids.join(', ')}) in ${((Date.now() - t0) / 1000).toFixed(1)}s`);
  return true;
}

/**
 * Stop the Kafka and Apicurio Registry that infraUp started (Redis is the machine's and is left alone).
 * @param {{purge?: boolean, log?: (line: string) => void, quiet?: boolean}} [opts] purge also deletes their data.
 */
export async function infraDown(opts = {}) {
  const log = opts.quiet ? () => {} : (opts.log ?? stderrLog);
  if (!exists(INFRA_DIR) && findOurPids('kafka').length === 0 && findOurPids('apicurio').length === 0) {
    log('nothing to stop (.infra/ does not exist)');
    return { stopped: true, purged: false };
  }
  return withLock(log, async () => {
    const [regOk, kafkaOk] = await Promise.all([
      stopService('apicurio', 'Apicurio Registry', 20_000, log),
      stopService('kafka', 'Kafka', 45_000, log),
    ]);
    if (!regOk || !kafkaOk) throw new InfraError('some processes did not stop; nothing was purged');
    if (opts.purge) {
      for (const p of [P.kafkaData, P.kafkaClusterId, P.regData]) fs.rmSync(p, { recursive: true, force: true });
      log('purged .infra/kafka/data and .infra/apicurio/data (the jars stay)');
    }
    return { stopped: true, purged: Boolean(opts.purge) };
  });
}

// ---------------------------------------------------------------------------------------------------------------
// CLI

const HELP = {
  main: `Usage: node scripts/infra.mjs <command> [options]

Local Kafka + Apicurio Registry (+ the machine's Redis) without Docker.

Commands:
  up        start what is not running, wait until it answers, print env exports
  down      stop the Kafka and Apicurio Registry that "up" started (Redis is left alone)
  status    show which services answer

Run "node scripts/infra.mjs <command> --help" for a command's options.

Environment:
  SHADOW_INFRA_KAFKA_PORT             Kafka broker port (default 9092)
  SHADOW_INFRA_KAFKA_CONTROLLER_PORT  KRaft controller port (default: broker port + 1)
  SHADOW_INFRA_REGISTRY_PORT          Apicurio Registry port (default 8081)
  SHADOW_INFRA_REGISTRY_STORAGE       "file" (default, kept in .infra/apicurio/data) or "memory"
  JAVA_HOME                           preferred JDK (Apicurio Registry needs Java ${REGISTRY_MIN_JAVA}+, Kafka ${KAFKA_MIN_JAVA}+)
`,
  up: `Usage: node scripts/infra.mjs up [--quiet]

Copies Kafka and Apicurio Registry into .infra/ with Maven when missing, formats the KRaft storage once,
starts Kafka (127.0.0.1:9092) and Apicurio Registry (127.0.0.1:8081) in the background unless they already
answer, makes sure Redis answers PING at 127.0.0.1:6379 (starting redis-server if needed), and waits until
each one answers (Kafka 90s, Apicurio 120s). Then prints the env exports on stdout; progress goes to stderr:

  eval "$(node scripts/infra.mjs up)"

Options:
  --quiet   print only the env exports
  --help    this text
`,
  down: `Usage: node scripts/infra.mjs down [--purge]

Stops the Kafka and Apicurio Registry that "up" started (SIGTERM, then SIGKILL after a deadline).
Redis is the machine's and keeps running.

Options:
  --purge   also delete their data (.infra/kafka/data, .infra/apicurio/data); the jars stay
  --help    this text
`,
  status: `Usage: node scripts/infra.mjs status [--json]

Asks each service whether it is up. Exits 0 when all are up, 1 otherwise.

Options:
  --json    print {"kafka":{"up","address"},"schemaRegistry":{"up","url"},"redis":{"up","url"}}
  --help    this text
`,
};

async function main(argv) {
  const [cmd, ...rest] = argv;
  if (!cmd || cmd === '--help' || cmd === '-h' || cmd === 'help') {
    const topic = cmd === 'help' && HELP[rest[0]] ? rest[0] : 'main';
    process.stdout.write(HELP[topic]);
    return cmd ? 0 : 2;
  }
  if (!HELP[cmd] || cmd === 'main') {
    process.stderr.write(`unknown command "${cmd}"\n\n${HELP.main}`);
    return 2;
  }
  const allowed = { up: ['--quiet'], down: ['--purge'], status: ['--json'] }[cmd];
  const flags = new Set();
  for (const a of rest) {
    if (a === '--help' || a === '-h') {
      process.stdout.write(HELP[cmd]);
      return 0;
    }
    if (!allowed.includes(a)) {
      process.stderr.write(`unknown option "${a}" for ${cmd}\n\n${HELP[cmd]}`);
      return 2;
    }
    flags.add(a);
  }

  if (cmd === 'up') {
    const t0 = Date.now();
    try {
      const res = await infraUp({ quiet: flags.has('--quiet') });
      if (!flags.has('--quiet')) stderrLog(`all services up (${((Date.now() - t0) / 1000).toFixed(1)}s)${res.started.length ? `; started: ${res.started.join(', ')}` : '; nothing to start'}`);
      for (const [k, v] of Object.entries(res.env)) process.stdout.write(`export ${k}=${v}\n`);
      return 0;
    } catch (e) {
      stderrLog(`infra up failed: ${e instanceof InfraError ? e.message : (e?.stack ?? e)}`);
      return 1;
    }
  }
  if (cmd === 'down') {
    try {
      await infraDown({ purge: flags.has('--purge') });
      return 0;
    } catch (e) {
      stderrLog(`infra down failed: ${e instanceof InfraError ? e.message : (e?.stack ?? e)}`);
      return 1;
    }
  }
  // status
  let st;
  try {
    st = await infraStatus();
  } catch (e) {
    stderrLog(`infra status failed: ${e instanceof InfraError ? e.message : (e?.stack ?? e)}`);
    return 1;
  }
  const allUp = st.kafka.up && st.schemaRegistry.up && st.redis.up;
  if (flags.has('--json')) {
    process.stdout.write(`${JSON.stringify(st)}\n`);
  } else {
    const pidNote = (service) => {
      const pids = findOurPids(service);
      return pids.length ? `  (pid ${pids.join(', ')})` : '';
    };
    const row = (name, up, addr, note = '') => `${name.padEnd(17)}${(up ? 'up' : 'down').padEnd(6)}${addr}${note}\n`;
    process.stdout.write(
      row('kafka', st.kafka.up, st.kafka.address, pidNote('kafka')) +
        row('schema registry', st.schemaRegistry.up, st.schemaRegistry.url, pidNote('apicurio')) +
        row('redis', st.redis.up, st.redis.url),
    );
  }
  return allUp ? 0 : 1;
}

function isEntryPoint() {
  if (!process.argv[1]) return false;
  try {
    return import.meta.url === pathToFileURL(fs.realpathSync(process.argv[1])).href;
  } catch {
    return import.meta.url === pathToFileURL(process.argv[1]).href;
  }
}

if (isEntryPoint()) {
  // process.exit runs the 'exit' hooks (lock release); the JVMs run in their own session and keep starting
  process.on('SIGINT', () => {
    if (process.argv[2] === 'up') stderrLog('interrupted: what was started keeps starting in the background ("up" again waits for it, "down" stops it)');
    process.exit(130);
  });
  process.on('SIGTERM', () => process.exit(143));
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (e) => {
      stderrLog(e?.stack ?? String(e));
      process.exit(1);
    },
  );
}
