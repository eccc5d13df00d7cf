/**
 * The HTML report opened in a real browser (issue 6, "checked by"): headless Chromium renders
 * the page to a screenshot and to its DOM, the plots must be there and not blank, and the page
 * must not make a single network request. Needs Chromium (`apt-get install -y chromium`, or
 * CHROMIUM_PATH); without it the test fails and says how to install it. REPORT_HTML_KEEP=1 keeps
 * the page, the screenshot and the NetLogs (the path is printed) instead of removing them.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { inflateSync } from 'node:zlib';
import { after, before, describe, it } from 'node:test';
import type { EvaluationRecord, ResponseEvent } from '@shadow-replay/contracts';
import { PlotColor, buildReport, createRandom, evaluatePair, renderHtml, type Report } from '@shadow-replay/evaluation';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const INSTALL = 'apt-get update && apt-get install -y chromium   (Debian/Ubuntu; or set CHROMIUM_PATH to a Chromium/Chrome binary)';
const WIDTH = 1280;
const HEIGHT = 2400;
const EXPERIMENT = 'checkout-assistant-v2';
const HOSTILE = "I'm sorry, but I can't help with that. <script>document.title='pwned'</script> <img src=\"http://tracker.invalid/p.gif\">";

// ─── the report under test: a small pipeline's worth of pairs through evaluatePair ───────────

const ANSWERS = [
  'To reset your password, open Settings, choose Security and click "Reset password". The link is valid for 30 minutes.',
  'Refunds are processed within 5 business days and go back to the card you paid with.',
  '{"status": "ok", "items": [{"sku": "A-100", "qty": 2}], "total": 42.5}',
  'The store opens at 9:00 and closes at 18:00 from Monday to Saturday.',
];
const REWRITES = [
  'To reset the password, go to Settings → Security and press "Reset password". The link expires after 15 minutes.',
  'Refunds take 5 to 7 business days; card payments go back to the card.',
  '{"status": "ok", "items": [{"sku": "A-100", "qty": 2}], "total": 40}',
  HOSTILE,
];

function response(arm: string, requestId: string, content: string, e2eMs: number, ttftMs: number): ResponseEvent {
  const completion = Math.max(1, Math.round(content.length / 4));
  return {
    schemaVersion: 1,
    requestId,
    ...(arm === 'stable' ? {} : { experimentId: EXPERIMENT, configHash: 'cfg' }),
    arm,
    occurredAt: 1_714_521_600_000,
    endpoint: { name: arm, model: arm },
    outcome: 'ok',
    status: 200,
    error: null,
    response: { choices: [{ index: 0, content, toolCalls: [], finishReason: 'stop' }] },
    usage: { prompt: 120, completion, total: 120 + completion, source: 'usage' },
    timing: { sentAt: 1_714_521_600_000, ttftMs, e2eMs, tpotMs: 12, itl: null, outputTokensPerSec: 80 },
    streamed: true,
  };
}

/** The judge's verdicts on the first arm, by request index modulo 10: inconsistent ones among them. */
const VERDICTS = ['win', 'win', 'win', 'tie', 'auto_tie', 'inconsistent', 'inconsistent', 'loss', 'win', 'tie'] as const;

function experimentReport(): Report {
  const random = createRandom(11);
  const normal = () => Math.sqrt(-2 * Math.log(1 - random.next())) * Math.cos(2 * Math.PI * random.next());
  const records: EvaluationRecord[] = [];
  // The control arm asks the stable model again: same speed, and rewords fewer answers.
  for (const [arm, slowdown, rewordEvery] of [
    ['candidate', 0.08, 9],
    ['candidate-fp8', -0.05, 9],
    ['control', 0, 27],
  ] as const) {
    for (let i = 0; i < 300; i++) {
      const requestId = `req-${String(i).padStart(4, '0')}`;
      const stableE2e = Math.exp(6.3 + 0.35 * normal());
      const stableTtft = Math.exp(4.2 + 0.3 * normal());
      const record = evaluatePair({
        experimentId: EXPERIMENT,
        requestId,
        arm,
        stable: response('stable', requestId, ANSWERS[i % 4]!, stableE2e, stableTtft),
        candidate: {
          ...response(arm, requestId, i % rewordEvery === 0 ? REWRITES[i % 4]! : ANSWERS[i % 4]!, stableE2e * Math.exp(slowdown + 0.1 * normal()), stableTtft * Math.exp(slowdown + 0.1 * normal())),
          // Three tenants, and a trial tenant too small to decide anything on.
          origin: { route: '/v1/chat/completions', model: 'llama-3.1-70b', headers: { 'x-tenant-id': i < 12 ? 'trial-co' : `tenant-${i % 3}` } },
        },
        sources: { stable: { topic: 's', partition: 0, offset: String(i) }, candidate: { topic: 'c', partition: 0, offset: String(i) } },
        prices: { stable: { inputPerMillion: 0.6, outputPerMillion: 0.8 }, candidate: { inputPerMillion: 0.3, outputPerMillion: 0.4 } },
        evaluatorVersion: 'report-html-test',
        now: 1_714_521_700_000 + i,
      });
      if (arm === 'candidate') record.judge = { verdict: VERDICTS[i % VERDICTS.length]!, tokens: 600, costUsd: 0.0003, calls: [{ attempts: 1 }, { attempts: 1 }] };
      records.push(record);
    }
  }
  return buildReport({
    experimentId: EXPERIMENT,
    window: { from: '2024-05-01T00:00:00Z', to: '2024-05-01T01:00:00Z' },
    generatedAt: '2024-05-01T01:05:00Z',
    records,
    outcomes: {
      candidate: { consumed: 700, sampled_out: 360, filtered: 30, shed_budget: 6, candidate_error: 4, evaluated: 300 },
      'candidate-fp8': { consumed: 700, sampled_out: 380, filtered: 20, evaluated: 300 },
      control: { consumed: 700, sampled_out: 400, evaluated: 300 },
    },
  }, { controlArm: 'control' });
}

// ─── Chromium ────────────────────────────────────────────────────────────────────────────────

interface BrowserRun {
  stdout: string;
  /** URLs of requests a page started (browser-internal requests such as update checks excluded). */
  pageRequests: string[];
}

/**
 * One headless Chromium run over `url` with a fresh profile, every host name resolving to
 * nothing, and a NetLog. Chromium's own background requests carry the initiator "not an
 * origin"; anything a document asks for carries its origin ("null" for a file:// page), which
 * is what `pageRequests` lists.
 */
function runChromium(dir: string, name: string, url: string, mode: string[]): BrowserRun {
  const netLog = join(dir, `${name}.netlog.json`);
  const result = spawnSync(
    CHROMIUM,
    [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-quic',
      '--no-first-run',
      '--disable-component-update',
      '--disable-sync',
      '--hide-scrollbars',
      '--force-device-scale-factor=1',
      '--host-resolver-rules=MAP * ~NOTFOUND',
      `--user-data-dir=${join(dir, `${name}-profile`)}`,
      `--log-net-log=${netLog}`,
      `--window-size=${WIDTH},${HEIGHT}`,
      ...mode,
      url,
    ],
    { encoding: 'utf8', timeout: 60_000, maxBuffer: 64 * 1024 * 1024 },
  );
  assert.equal(result.error, undefined, `chromium did not run: ${String(result.error)}`);
  assert.equal(result.status, 0, `chromium exited with ${String(result.status)}: ${result.stderr.slice(-2000)}`);
  assert.ok(existsSync(netLog), 'chromium wrote its NetLog');
  return { stdout: result.stdout, pageRequests: pageRequests(netLog) };
}

function pageRequests(file: string): string[] {
  const log = JSON.parse(readFileSync(file, 'utf8')) as { constants: { logEventTypes: Record<string, number> }; events: { type: number; params?: { url?: string; initiator?: string } }[] };
  const start = log.constants.logEventTypes.URL_REQUEST_START_JOB;
  assert.ok(start !== undefined, 'the NetLog names URL_REQUEST_START_JOB');
  return log.events.filter((event) => event.type === start && event.params?.url !== undefined && event.params.initiator !== 'not an origin').map((event) => event.params!.url!);
}

// ─── a minimal PNG reader: 8-bit RGB or RGBA, which is what Chromium writes ──────────────────

interface Pixels {
  width: number;
  height: number;
  /** RGB triplets, row by row. */
  rgb: Uint8Array;
}

function readPng(file: string): Pixels {
  const buffer = readFileSync(file);
  assert.deepEqual([...buffer.subarray(0, 8)], [137, 80, 78, 71, 13, 10, 26, 10], 'a PNG signature');
  let width = 0;
  let height = 0;
  let channels = 0;
  const data: Buffer[] = [];
  for (let offset = 8; offset < buffer.length; ) {
    const length = buffer.readUInt32BE(offset);
    const type = buffer.toString('latin1', offset + 4, offset + 8);
    const body = buffer.subarray(offset + 8, offset + 8 + length);
    if (type === 'IHDR') {
      width = body.readUInt32BE(0);
      height = body.readUInt32BE(4);
      assert.equal(body[8], 8, '8 bits per channel');
      assert.equal(body[12], 0, 'not interlaced');
      channels = body[9] === 6 ? 4 : body[9] === 2 ? 3 : 0;
      assert.ok(channels > 0, `colour type RGB or RGBA (got ${body[9]})`);
    }
    if (type === 'IDAT') data.push(body);
    offset += 12 + length;
  }
  const raw = inflateSync(Buffer.concat(data));
  const stride = width * channels;
  const pixels = new Uint8Array(height * stride);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)]!;
    for (let x = 0; x < stride; x++) {
      const left = x >= channels ? pixels[y * stride + x - channels]! : 0;
      const up = y > 0 ? pixels[(y - 1) * stride + x]! : 0;
      const corner = x >= channels && y > 0 ? pixels[(y - 1) * stride + x - channels]! : 0;
      const estimate = left + up - corner;
      const paeth =
        Math.abs(estimate - left) <= Math.abs(estimate - up) && Math.abs(estimate - left) <= Math.abs(estimate - corner)
          ? left
          : Math.abs(estimate - up) <= Math.abs(estimate - corner)
            ? up
            : corner;
      const predictor = [0, left, up, (left + up) >> 1, paeth][filter];
      assert.ok(predictor !== undefined, `PNG filter ${filter}`);
      pixels[y * stride + x] = (raw[y * (stride + 1) + 1 + x]! + predictor) & 0xff;
    }
  }
  const rgb = new Uint8Array(width * height * 3);
  for (let i = 0; i < width * height; i++) rgb.set(pixels.subarray(i * channels, i * channels + 3), i * 3);
  return { width, height, rgb };
}

function hex(color: string): [number, number, number] {
  return [1, 3, 5].map((at) => parseInt(color.slice(at, at + 2), 16)) as [number, number, number];
}

function pixelsOf(image: Pixels, [r, g, b]: [number, number, number]): number {
  let found = 0;
  for (let i = 0; i < image.rgb.length; i += 3) if (image.rgb[i] === r && image.rgb[i + 1] === g && image.rgb[i + 2] === b) found++;
  return found;
}

// ─── the test ────────────────────────────────────────────────────────────────────────────────

describe('the HTML report in headless Chromium', () => {
  let dir = '';
  let page = '';
  let report: Report;

  before(() => {
    assert.ok(existsSync(CHROMIUM), `headless Chromium is needed for this test and was not found at ${CHROMIUM}. Install it: ${INSTALL}`);
    dir = mkdtempSync(join(tmpdir(), 'shadow-report-html-'));
    report = experimentReport();
    page = join(dir, 'report.html');
    writeFileSync(page, renderHtml(report));
  });

  it('renders the plots: a screenshot that is not blank and shows both sides’ series in their colours', (t) => {
    const png = join(dir, 'report.png');
    const run = runChromium(dir, 'screenshot', pathToFileURL(page).href, [`--screenshot=${png}`]);
    assert.ok(existsSync(png), 'the screenshot was written');
    const image = readPng(png);
    assert.equal(image.width, WIDTH);
    assert.equal(image.height, HEIGHT);

    const colours = new Set<number>();
    let sum = 0;
    let squares = 0;
    for (let i = 0; i < image.rgb.length; i += 3) {
      const luma = 0.299 * image.rgb[i]! + 0.587 * image.rgb[i + 1]! + 0.114 * image.rgb[i + 2]!;
      sum += luma;
      squares += luma * luma;
      colours.add((image.rgb[i]! << 16) | (image.rgb[i + 1]! << 8) | image.rgb[i + 2]!);
    }
    const pixels = image.width * image.height;
    const variance = squares / pixels - (sum / pixels) ** 2;
    assert.ok(colours.size > 200, `a rendered page has many colours (got ${colours.size})`);
    assert.ok(variance > 100, `and is not a flat image (luma variance ${variance.toFixed(1)})`);
    // The CDF polylines are 2.5 px wide in exactly these colours; the legends alone hold fewer than 200 such pixels.
    const stable = pixelsOf(image, hex(PlotColor.stable));
    const candidate = pixelsOf(image, hex(PlotColor.candidate));
    assert.ok(stable > 1000, `stable series drawn (${stable} px of ${PlotColor.stable})`);
    assert.ok(candidate > 1000, `candidate series drawn (${candidate} px of ${PlotColor.candidate})`);
    assert.deepEqual(run.pageRequests, [], 'the page requested nothing while rendering');
    t.diagnostic(`screenshot: ${colours.size} colours, ${stable} stable and ${candidate} candidate series pixels`);
  });

  it('keeps every plot in the DOM Chromium builds, with the expected series, and shows a <script> answer as text', () => {
    const run = runChromium(dir, 'dom', pathToFileURL(page).href, ['--dump-dom']);
    const dom = run.stdout;
    assert.match(dom, /<h1>Experiment <span class="id">checkout-assistant-v2<\/span><\/h1>/);
    assert.equal(dom.match(/<svg class="plot /g)?.length, 3 * 7, 'per arm: two CDFs, two histograms, outcomes, judge, quality');
    for (const arm of [1, 2, 3]) {
      for (const metric of ['e2e', 'ttft']) {
        const svg = new RegExp(`data-plot="arm-${arm}-cdf-${metric}"[\\s\\S]*?</svg>`).exec(dom)?.[0] ?? '';
        const series = [...svg.matchAll(/<polyline class="series series-(stable|candidate)" data-values="(\d+)"[^>]*points="([^"]*)"/g)];
        assert.deepEqual(
          series.map((match) => match[1]),
          ['stable', 'candidate'],
          `arm ${arm} ${metric}`,
        );
        for (const [, side, values, points] of series) {
          const expected = report.arms[arm - 1]!.samples![metric === 'e2e' ? 'e2eMs' : 'ttftMs'][side as 'stable' | 'candidate'].values.length;
          assert.equal(Number(values), expected);
          assert.equal(points!.trim().split(/\s+/).length, 2 * expected);
        }
      }
    }
    // The first arm was judged: wins, ties, inconsistent verdicts and losses each get a bar.
    const judge = /data-plot="arm-1-judge"[\s\S]*?<\/svg>/.exec(dom)?.[0] ?? '';
    assert.equal(judge.match(/<rect class="bar"/g)?.length, 4, 'four verdict bars');
    for (const row of ['candidate wins', 'ties', 'inconsistent', 'candidate loses']) assert.ok(judge.includes(`>${row}</text>`), `judge row ${row}`);
    assert.ok(judge.includes('>60 (20.0%)</text>'), 'inconsistent: 60 of 300 pairs');
    assert.match(dom, /data-plot="arm-2-judge"[^>]*>[\s\S]*?judge not run/);
    assert.match(dom, /<table class="data compact judge-usage">[\s\S]*?<tbody><tr><td class="num">600<\/td>/, 'the judged arm’s 600 judge calls');
    // Both candidates reword one answer in 9, the control one in 27: flagged against the noise floor.
    assert.equal(dom.match(/<table class="data compact noise">/g)?.length, 2, 'a noise-floor table per candidate arm');
    assert.equal(dom.match(/<td class="num flag bad">regression<\/td>/g)?.length, 4, 'exact and normalized mismatch flagged on both candidates');
    assert.match(dom, /<h3>Noise floor<\/h3><p class="muted">This is the control arm/);
    assert.equal(dom.match(/<caption>By tenant<\/caption>/g)?.length, 3, 'a tenant slice table per arm');
    assert.equal(dom.match(/<tr class="small"><th scope="row"><code>trial-co<\/code> <span class="tag small">too small<\/span>/g)?.length, 3, 'the trial tenant is shown, marked too small');
    assert.doesNotMatch(dom, /<script/i, 'no script element');
    assert.doesNotMatch(dom, /<img/i, 'no image element');
    assert.ok(dom.includes('&lt;script&gt;document.title=\'pwned\'&lt;/script&gt;'), 'the hostile answer is text');
    assert.match(dom, /<title>Shadow report · checkout-assistant-v2<\/title>/, 'nothing changed the title');
    const fetching = [...dom.matchAll(/<[a-z][^>]*\s(?:src|href|srcset|action|poster|data|xlink:href)="(?!#)[^"]*"/gi)].map((match) => match[0]);
    assert.deepEqual(fetching, [], 'no attribute points outside the page');
    assert.deepEqual(run.pageRequests, [], 'the page requested nothing');
  });

  it('would notice a request: a page that loads an image from the network is caught by the same check', () => {
    const control = join(dir, 'control.html');
    writeFileSync(control, '<!doctype html><title>control</title><p>control</p><img src="http://shadow-replay.invalid/pixel.png">');
    const run = runChromium(dir, 'control', pathToFileURL(control).href, ['--dump-dom']);
    assert.deepEqual(run.pageRequests, ['http://shadow-replay.invalid/pixel.png']);
  });

  after(() => {
    if (dir === '') return;
    if (process.env.REPORT_HTML_KEEP) process.stdout.write(`report-html artifacts kept in ${dir}\n`);
    else rmSync(dir, { recursive: true, force: true });
  });
});
