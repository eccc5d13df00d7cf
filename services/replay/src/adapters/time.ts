/**
 * Turns the timestamps foreign records carry into milliseconds since the Unix epoch.
 *
 * `auto` decides by type and magnitude:
 * - an ISO 8601 string with a zone (`2025-03-01T12:00:00.250Z`, `…+02:00`, `…+0200`, a space
 *   instead of `T`); a time without a zone is refused, its instant is ambiguous;
 * - a number, or a string of digits, by magnitude: below 1e11 seconds (1e11 s is the year 5138,
 *   1e11 ms is 1973), below 1e14 milliseconds, below 1e17 microseconds, else nanoseconds.
 *   Fractional seconds are kept to the millisecond.
 *
 * Set the unit explicitly when the data can fall on the wrong side of a boundary (for
 * instance seconds-since-boot clocks, or millisecond values from before 1973).
 */
export const TimeUnit = { auto: 'auto', ms: 'ms', s: 's', us: 'us', ns: 'ns', iso: 'iso' } as const;
export type TimeUnit = (typeof TimeUnit)[keyof typeof TimeUnit];

export type EpochMsResult = { ok: true; ms: number } | { ok: false; problem: string };

const NUMERIC = /^-?\d+(\.\d+)?$/;
// Date, `T` or space, hours and minutes, optional seconds and fraction, then a required zone.
const ISO_8601 = /^(\d{4}-\d{2}-\d{2})[Tt ](\d{2}:\d{2})(?::(\d{2})(?:[.,](\d+))?)?\s*(Z|z|[+-]\d{2}(?::?\d{2})?)$/;
const ZONELESS = /^\d{4}-\d{2}-\d{2}([Tt ]\d{2}:\d{2}(:\d{2}([.,]\d+)?)?)?$/;
const MAX_EPOCH_MS = 8.64e15;
const PER_MS: Record<Exclude<TimeUnit, 'auto' | 'iso'>, number> = { s: 1_000, ms: 1, us: 1e-3, ns: 1e-6 };

export function toEpochMs(value: unknown, unit: TimeUnit = TimeUnit.auto): EpochMsResult {
  if (value instanceof Date) return checked(value.getTime(), 'an invalid Date');
  if (typeof value === 'bigint') return fromNumber(Number(value), unit);
  if (typeof value === 'number') return fromNumber(value, unit);
  if (typeof value === 'string') {
    const text = value.trim();
    if (NUMERIC.test(text) && unit !== TimeUnit.iso) return fromNumber(Number(text), unit);
    if (unit === TimeUnit.auto || unit === TimeUnit.iso) return fromIso(text);
    return { ok: false, problem: `${JSON.stringify(truncate(value))} is not a number of ${unitName(unit)}` };
  }
  return { ok: false, problem: `expected a timestamp (number or ISO 8601 string), got ${describeType(value)}` };
}

function fromNumber(value: number, unit: TimeUnit): EpochMsResult {
  if (!Number.isFinite(value)) return { ok: false, problem: `${value} is not a finite number` };
  if (unit === TimeUnit.iso) return { ok: false, problem: `${value} is a number; the mapping expects an ISO 8601 string` };
  const magnitude = Math.abs(value);
  const effective = unit !== TimeUnit.auto ? unit : magnitude < 1e11 ? 's' : magnitude < 1e14 ? 'ms' : magnitude < 1e17 ? 'us' : 'ns';
  return checked(value * PER_MS[effective], `${value} ${unitName(effective)}`);
}

function fromIso(text: string): EpochMsResult {
  const match = ISO_8601.exec(text);
  if (match === null) {
    if (ZONELESS.test(text)) return { ok: false, problem: `${JSON.stringify(truncate(text))} has no time zone, so its instant is ambiguous (it needs "Z" or an offset such as +02:00)` };
    return { ok: false, problem: `${JSON.stringify(truncate(text))} is not epoch seconds/milliseconds or an ISO 8601 time with a zone (e.g. 2025-03-01T12:00:00Z)` };
  }
  const [, date = '', hoursMinutes = '', seconds = '00', fraction = '', zone = 'Z'] = match;
  if (!realDateTime(date, hoursMinutes, seconds)) return { ok: false, problem: `${JSON.stringify(truncate(text))} is not a real date and time` };
  // Date.parse is lenient about odd forms and strict about others; hand it one canonical form.
  const millis = fraction.padEnd(3, '0').slice(0, 3);
  const offset = zone.toUpperCase() === 'Z' ? 'Z' : zone.length === 3 ? `${zone}:00` : `${zone.slice(0, 3)}:${zone.slice(-2)}`;
  return checked(Date.parse(`${date}T${hoursMinutes}:${seconds}.${millis}${offset}`), JSON.stringify(text));
}

/** Date.parse rolls 2025-02-30 over to March; refuse what is not on the calendar. */
function realDateTime(date: string, hoursMinutes: string, seconds: string): boolean {
  const [year = 0, month = 0, day = 0] = date.split('-').map(Number);
  const [hours = 0, minutes = 0] = hoursMinutes.split(':').map(Number);
  const calendar = new Date(Date.UTC(year, month - 1, day));
  return calendar.getUTCMonth() === month - 1 && calendar.getUTCDate() === day && hours <= 23 && minutes <= 59 && Number(seconds) <= 59;
}

function checked(ms: number, what: string): EpochMsResult {
  if (!Number.isFinite(ms)) return { ok: false, problem: `${what} is not a valid time` };
  const rounded = Math.round(ms);
  if (rounded < 0) return { ok: false, problem: `${what} is before 1970-01-01` };
  if (rounded > MAX_EPOCH_MS) return { ok: false, problem: `${what} is beyond the largest date JavaScript represents` };
  return { ok: true, ms: rounded };
}

function unitName(unit: TimeUnit): string {
  return { auto: 'time', ms: 'milliseconds', s: 'seconds', us: 'microseconds', ns: 'nanoseconds', iso: 'ISO 8601' }[unit];
}

/** `a string`, `null`, `an array`, … for reasons. */
export function describeType(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'nothing';
  if (Array.isArray(value)) return 'an array';
  if (value instanceof Uint8Array) return 'bytes';
  return typeof value === 'object' ? 'an object' : `a ${typeof value}`;
}

function truncate(text: string): string {
  return text.length <= 60 ? text : `${text.slice(0, 59)}…`;
}
