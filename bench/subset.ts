/**
 * Subsetting, simulated (no sockets): how evenly a fleet's connections land
 * on its backends with today's per-process shuffle ("random") and with
 * `subset: { clientId }`, and how many clients' members move when one
 * backend goes away. Every client is a real AddressBook whose slots are
 * filled through `choose()`, exactly as the regulator fills them (each dial
 * proven at once), so the numbers are the library's, not a model's.
 */
import type { Address } from "../src/core/address.js";
import { addressKey } from "../src/core/address.js";
import { AddressBook, type AddressUse } from "../src/supervisor/address-book.js";
import { mulberry32 } from "../test/helpers/random.js";
import { machine } from "./lib/machine.js";
import { elapsed, writeReport } from "./lib/results.js";
import { round } from "./lib/stats.js";
import { markdownTable } from "./lib/table.js";

const CASES = [
  { clients: 1000, backends: 300, members: 3 },
  { clients: 300, backends: 300, members: 90 },
  { clients: 100, backends: 100, members: 3 },
] as const;
const BACKOFF = { initial: 100, multiplier: 2, max: 10_000, timeout: 0, jitter: 0 };

type Mode = "random" | "subset";

function backendList(n: number): Address[] {
  // 10.x.y.z:8080, like a pod network: enough distinct addresses for any case here.
  return Array.from({ length: n }, (_, i) => ({ host: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, port: 8080, family: 4 as const }));
}

function newBook(mode: Mode, clientId: number, members: number): AddressBook {
  return new AddressBook({
    backoff: BACKOFF,
    minHold: 0,
    // Each process's own randomness: seeded per client so the run repeats.
    random: mulberry32(clientId * 7919 + 1),
    subset: mode === "subset" ? { clientId, size: members } : undefined,
  });
}

/** Fills `members` slots one at a time through choose(), on top of the members it already holds. */
function fill(book: AddressBook, held: string[], members: number): string[] {
  const use = new Map<string, AddressUse>();
  for (const k of held) bump(use, k);
  const out = [...held];
  while (out.length < members) {
    const d = book.choose(use, 0);
    if (d.kind !== "dial") throw new Error(`could not place member ${out.length}: ${JSON.stringify(d)}`);
    const k = addressKey(d.address);
    bump(use, k);
    out.push(k);
  }
  return out;
}

function bump(use: Map<string, AddressUse>, key: string): void {
  const u = use.get(key) ?? { members: 0, proving: false, live: true };
  u.members++;
  use.set(key, u);
}

interface Spread {
  maxOverMean: number;
  minOverMean: number;
  max: number;
  min: number;
  mean: number;
}

function spread(clients: string[][], backends: Address[]): Spread {
  const count = new Map(backends.map((b) => [addressKey(b), 0]));
  for (const c of clients) for (const k of c) count.set(k, (count.get(k) ?? 0) + 1);
  const values = [...count.values()];
  const mean = values.reduce((a, b) => a + b, 0) / values.length;
  const max = Math.max(...values);
  const min = Math.min(...values);
  return { maxOverMean: round(max / mean, 3), minOverMean: round(min / mean, 3), max, min, mean: round(mean, 2) };
}

interface Movement {
  /** Live channels: they keep every member whose address stays and re-dial only the lost ones. */
  liveClientsMoved: number;
  liveMembersMoved: number;
  /** A fresh process (a restart) computing its order over the new set: clients whose member set differs. */
  restartClientsMoved: number;
  /** Spread of the live fleet right after the change. */
  liveAfter: Spread;
}

function movement(mode: Mode, c: (typeof CASES)[number], backends: Address[], before: string[][]): Movement {
  // Remove the backend in the middle of the list: neither first nor last in any sort.
  const gone = backends[Math.floor(backends.length / 2)] as Address;
  const goneKey = addressKey(gone);
  const after = backends.filter((b) => b !== gone);
  let liveClients = 0;
  let liveMembers = 0;
  let restartClients = 0;
  const live: string[][] = [];
  for (let id = 0; id < c.clients; id++) {
    const had = before[id] as string[];
    const book = newBook(mode, id, c.members);
    book.update(backends, 0);
    book.update(after, 0);
    const kept = had.filter((k) => k !== goneKey);
    const now = fill(book, kept, c.members);
    live.push(now);
    if (kept.length < had.length) {
      liveClients++;
      liveMembers += had.length - kept.length;
    }
    const fresh = newBook(mode, id, c.members);
    fresh.update(after, 0);
    const restarted = new Set(fill(fresh, [], c.members));
    if (kept.some((k) => !restarted.has(k))) restartClients++;
  }
  return {
    liveClientsMoved: round(liveClients / c.clients, 4),
    liveMembersMoved: liveMembers,
    restartClientsMoved: round(restartClients / c.clients, 4),
    liveAfter: spread(live, after),
  };
}

interface CaseResult {
  clients: number;
  backends: number;
  members: number;
  mode: Mode;
  spread: Spread;
  movement: Movement;
}

function runCase(c: (typeof CASES)[number], mode: Mode): CaseResult {
  const backends = backendList(c.backends);
  const clients: string[][] = [];
  for (let id = 0; id < c.clients; id++) {
    const book = newBook(mode, id, c.members);
    book.update(backends, 0);
    clients.push(fill(book, [], c.members));
  }
  return { ...c, mode, spread: spread(clients, backends), movement: movement(mode, c, backends, clients) };
}

const t0 = performance.now();
const results: CaseResult[] = [];
for (const c of CASES) for (const mode of ["random", "subset"] as const) results.push(runCase(c, mode));
const pct = (x: number): string => `${round(x * 100, 1)} %`;
const rows = results.map((r) => [
  `${r.clients} × ${r.backends} × ${r.members}`,
  r.mode,
  r.spread.maxOverMean,
  r.spread.minOverMean,
  `${r.spread.min}–${r.spread.max} (mean ${r.spread.mean})`,
  pct(r.movement.liveClientsMoved),
  pct(r.movement.restartClientsMoved),
  r.movement.liveAfter.maxOverMean,
]);
const table = markdownTable(
  [
    "clients × backends × members",
    "ordering",
    "max/mean",
    "min/mean",
    "connections per backend",
    "clients moved (live)",
    "clients moved (restart)",
    "max/mean after",
  ],
  rows,
  ["l", "l", "r", "r", "r", "r", "r", "r"],
);
const head = (clients: number, members: number, mode: Mode): CaseResult =>
  results.find((r) => r.clients === clients && r.members === members && r.mode === mode) as CaseResult;
const headline = {
  maxOverMean1000x300x3: { random: head(1000, 3, "random").spread.maxOverMean, subset: head(1000, 3, "subset").spread.maxOverMean },
  maxOverMean300x300x90: { random: head(300, 90, "random").spread.maxOverMean, subset: head(300, 90, "subset").spread.maxOverMean },
  minOverMean300x300x90: { random: head(300, 90, "random").spread.minOverMean, subset: head(300, 90, "subset").spread.minOverMean },
  clientsMovedLive1000x300x3: head(1000, 3, "subset").movement.liveClientsMoved,
};
const markdown = `${table}

One backend of the set (the middle one) goes away. **Live**: running channels keep every member whose
address stays and re-dial only the lost ones, so only clients that had a member there move (one member each).
**Restart**: a process started after the change computes its order over the new set; with subsetting the
backend count decides the rounds, so most clients get a different subset (the SRE book's algorithm shares this).
"max/mean after" is the live fleet's spread right after the change.`;
writeReport({
  file: {
    scenario: "subset",
    title: "Subsetting: connections per backend, random vs deterministic",
    generatedAt: new Date().toISOString(),
    durationSeconds: elapsed(t0),
    machine: machine(),
    config: { cases: CASES, removed: "the middle backend of the list" },
    headline,
    results,
  },
  markdown,
});
console.log(table);
