import { ConfigError } from "./errors.js";

/**
 * Shared checks for option objects. A key nobody reads is worse than a
 * typo: `tls: { caFile }` silently verifies against the default roots, and
 * `auth: { password }` silently connects without auth. So every option
 * object, at every depth, is checked against the keys its reader knows, and
 * the error names the full dotted path and the nearest known key.
 */

/** A plain object (not null, not an array), or a ConfigError naming `option`. */
export function requireObject(option: string, value: unknown): Record<string, unknown> {
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new ConfigError(option, `expected an object, got ${describeType(value)}`);
  }
  return value as Record<string, unknown>;
}

/**
 * Throws a ConfigError for the first key of `value` not in `known`, named
 * `prefix.key` (or `key` at the top level), with a "did you mean" when one
 * known key is close. Keys whose value is undefined are still unknown: a
 * spread of someone else's options should not hide a typo.
 */
export function checkKeys(prefix: string, value: object, known: readonly string[]): void {
  for (const key of Object.keys(value)) {
    if (known.includes(key)) continue;
    const path = prefix === "" ? key : `${prefix}.${key}`;
    const near = closestKey(key, known);
    throw new ConfigError(path, `unknown option${near === undefined ? "" : ` (did you mean ${prefix === "" ? near : `${prefix}.${near}`}?)`}`);
  }
}

/**
 * The known key a typo most likely meant, best first: the same name in
 * another case or spelling (`ca_file` → `caFile`), one edit away
 * (`timeot` → `timeout`, `dealy` → `delay`), one being a prefix of the other (`caFile` → `ca`,
 * `password` → `pass`), a few edits away. Undefined when nothing is close,
 * so the message never suggests nonsense.
 */
export function closestKey(key: string, known: readonly string[]): string | undefined {
  const k = normalize(key);
  let best: string | undefined;
  let bestScore = Number.POSITIVE_INFINITY;
  for (const candidate of known) {
    const c = normalize(candidate);
    const d = editDistance(k, c);
    let score = Number.POSITIVE_INFINITY;
    if (d <= 1) score = d;
    else if (Math.min(c.length, k.length) >= 2 && (k.startsWith(c) || c.startsWith(k))) score = 2;
    else if (d <= Math.floor(Math.min(k.length, c.length) / 3)) score = 1 + d;
    if (score < bestScore) {
      bestScore = score;
      best = candidate;
    }
  }
  return best;
}

function normalize(key: string): string {
  return key.toLowerCase().replace(/[-_]/g, "");
}

/**
 * Edit distance with adjacent transpositions counted as one edit (optimal
 * string alignment): `dealy` is one slip from `delay`, as `intervall` is
 * from `interval`. Option names are short, so the O(n·m) table is fine.
 */
function editDistance(a: string, b: string): number {
  let before: number[] = [];
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let d = Math.min((prev[j] as number) + 1, (cur[j - 1] as number) + 1, (prev[j - 1] as number) + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d = Math.min(d, (before[j - 2] as number) + 1);
      cur[j] = d;
    }
    before = prev;
    prev = cur;
  }
  return prev[b.length] as number;
}

/** `undefined` or a boolean. */
export function optionalBoolean(option: string, value: unknown): boolean | undefined {
  if (value !== undefined && typeof value !== "boolean") throw new ConfigError(option, `expected true or false, got ${describeType(value)}`);
  return value;
}

/** `undefined` or a non-empty string. */
export function optionalString(option: string, value: unknown): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "string" || value === "") throw new ConfigError(option, `expected a non-empty string, got ${describeType(value)}`);
  return value;
}

/** `undefined`, or PEM text: a string or a Buffer/Uint8Array (and, where `list`, an array of them). */
export function optionalPem(option: string, value: unknown, list: boolean): void {
  if (value === undefined) return;
  const one = (v: unknown): boolean => (typeof v === "string" && v !== "") || v instanceof Uint8Array;
  if (one(value)) return;
  if (list && Array.isArray(value) && value.length > 0 && value.every(one)) return;
  throw new ConfigError(option, `expected PEM as a string or Buffer${list ? " (or an array of them)" : ""}, got ${describeType(value)}`);
}

/** What a value is, for messages; never the value itself (it may be a secret). */
export function describeType(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  if (value instanceof Uint8Array) return "a Buffer";
  if (typeof value === "string") return value === "" ? "an empty string" : "a string";
  if (typeof value === "number") return Number.isNaN(value) ? "NaN" : `the number ${value}`;
  return typeof value === "object" ? "an object" : `a ${typeof value}`;
}
