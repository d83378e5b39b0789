import { isIP } from "node:net";
import { systemClock, type Clock, type Timer } from "../core/clock.js";
import { ipAddress, parseHostPort, type Address } from "../core/address.js";
import { requireDuration, requireInteger } from "../core/duration.js";
import { ConfigError, ResolveError, TargetError, asError } from "../core/errors.js";
import type { FamilyAnswer } from "../core/events.js";
import { DnsQueryError, rcodeAnswer, sameName, type DnsResponse, type QueryType } from "./dns-message.js";
import { describeAnswers, FamilyMemory, mergeFamilies, negativeTtl, nextRefresh, type AddressType, type FamilyOutcome } from "./family-answers.js";
import { askServer, serverKey, type AskServer, type Nameserver } from "./dns-transport.js";
import { readHosts } from "./hosts-file.js";
import { checkKeys, requireObject } from "../core/options-check.js";
import { hasUserInfo, redactTarget } from "../core/redact.js";
import { readResolvConf } from "./resolv-conf.js";
import type { AddressSet, Resolver, ResolverListener } from "./resolver.js";

export interface DnsResolverOptions {
  /** "ip:port" servers; default: resolv.conf's (or the target's authority, dns://server/name). */
  nameservers?: string[];
  /** Defaults for these come from resolv.conf. */
  search?: string[];
  ndots?: number;
  /** Per-server, per-try timeout, ms. */
  timeout?: number;
  attempts?: number;
  rotate?: boolean;
  /** Path of the resolv.conf to read (default /etc/resolv.conf). */
  resolvConf?: string;
  /** Hosts file consulted first (default /etc/hosts); false to skip it. */
  hostsFile?: string | false;
  /** TTL given to hosts-file answers, ms (default 5000). */
  hostsTtl?: number;
  /** 4: A only; 6: AAAA only; 0: both, IPv4 first (default 0). */
  family?: 0 | 4 | 6;
  /** Bounds on every TTL, ms (defaults 1 s and 5 min). */
  minTtl?: number;
  maxTtl?: number;
  /** Retry after a failed resolution: initial delay doubling up to max, ms (defaults 250 ms, 30 s). */
  retryInitial?: number;
  retryMax?: number;
}

/** Every key of DnsResolverOptions, so an unknown (misspelt) one is refused by name. */
export const DNS_OPTION_KEYS: Readonly<Record<keyof DnsResolverOptions, true>> = {
  nameservers: true,
  search: true,
  ndots: true,
  timeout: true,
  attempts: true,
  rotate: true,
  resolvConf: true,
  hostsFile: true,
  hostsTtl: true,
  family: true,
  minTtl: true,
  maxTtl: true,
  retryInitial: true,
  retryMax: true,
};

interface Lookup {
  addresses: Address[];
  /** ms */
  ttl: number;
  /** NXDOMAIN or no records: a real answer with nothing in it. */
  empty: boolean;
}

/** What one lookup learnt on the way: each family that gave no fresh addresses, and the names asked. */
interface LookupNotes {
  answers: FamilyAnswer[];
  names: Set<string>;
  /** Some family failed (its last good addresses stood in). */
  partial: boolean;
}

const MAX_CNAME_HOPS = 8;

/** What a resolver runs on, beside its options: the channel's clock (refresh timer, query timeouts) and how it asks a server. */
export interface DnsRuntime {
  /** Default: the system clock. */
  clock?: Clock;
  /**
   * Default: askServer (UDP, then TCP when truncated); tests script the answers.
   * @internal
   */
  ask?: AskServer;
}

/**
 * A stub resolver on dns-packet for `dns:///name:port` (A/AAAA) and
 * `dns+srv:///_service._proto.name` targets. It follows the TTLs of what it
 * gets: the set's TTL is the smallest on its answer chain, clamped to
 * [minTtl, maxTtl], and it re-resolves when that runs out. A and AAAA are
 * asked apart and judged apart (family-answers.ts): a family that fails
 * (timeout, SERVFAIL, REFUSED, NOTIMP, garbage) keeps its own last good
 * addresses and is reported in the set's `answers`, and is asked again with
 * backoff; the lookup fails only when no family has an address and one
 * failed, or when every family failed (then the channel keeps its last good
 * set). NXDOMAIN and empty answers are real answers and are passed on as an
 * empty set (the supervisor decides what that means for live members).
 */
export class DnsResolver implements Resolver {
  readonly target: string;
  readonly #name: string;
  readonly #port: number | undefined;
  readonly #srv: boolean;
  readonly #servers: Nameserver[];
  readonly #search: string[];
  readonly #ndots: number;
  readonly #timeout: number;
  readonly #attempts: number;
  readonly #rotate: boolean;
  readonly #hostsFile: string | false;
  readonly #hostsTtl: number;
  readonly #family: 0 | 4 | 6;
  readonly #minTtl: number;
  readonly #maxTtl: number;
  readonly #retryInitial: number;
  readonly #retryMax: number;
  #rotation = 0;
  readonly #clock: Clock;
  readonly #askServer: AskServer;
  #listener: ResolverListener | undefined;
  #timer: Timer | undefined;
  #failures = 0;
  readonly #memory = new FamilyMemory();
  #inFlight = false;
  #closed = false;

  constructor(target: string, options: DnsResolverOptions = {}, defaultPort?: number, runtime: DnsRuntime = {}) {
    this.#clock = runtime.clock ?? systemClock;
    this.#askServer = runtime.ask ?? askServer;
    // Built directly (it is public) as well as by channels: the same checks either way.
    if (hasUserInfo(target)) throw new TargetError(redactTarget(target), "a discovery target takes no credentials");
    checkKeys("dns", requireObject("dns", options), Object.keys(DNS_OPTION_KEYS));
    this.target = target;
    const m = /^(dns|dns\+srv):\/\/([^/]*)\/(.+)$/i.exec(target);
    if (!m) throw new TargetError(target, "expected dns:///name:port or dns+srv:///_service._proto.name");
    this.#srv = (m[1] as string).toLowerCase() === "dns+srv";
    const authority = m[2] as string;
    const rest = m[3] as string;
    if (this.#srv) {
      if (/:\d+$/.test(rest)) throw new TargetError(target, "an SRV target takes no port: the records carry it");
      if (!/^_[a-z0-9-]+\._(tcp|udp)\.[a-z0-9.-]+$/i.test(rest)) throw new TargetError(target, "expected _service._proto.name");
      this.#name = rest.replace(/\.$/, "");
      this.#port = undefined;
    } else {
      const hp = parseHostPort(rest, target, defaultPort);
      this.#name = hp.host;
      this.#port = hp.port;
      if (!isIP(hp.host) && !/^[a-z0-9_]([a-z0-9_-]*[a-z0-9])?(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9])?)*\.?$/i.test(hp.host)) {
        throw new TargetError(target, `${JSON.stringify(hp.host)} is not a valid host name`);
      }
    }
    const conf = readResolvConf(options.resolvConf);
    const servers = options.nameservers ?? (authority ? [authority] : conf.nameservers);
    if (servers.length === 0) throw new ConfigError("dns.nameservers", "at least one nameserver is needed");
    this.#servers = servers.map((s) => {
      const hp = parseHostPort(s, target, 53);
      if (!isIP(hp.host)) throw new ConfigError("dns.nameservers", `${JSON.stringify(s)} is not ip:port`);
      return hp;
    });
    this.#search = options.search ?? conf.search;
    this.#ndots = requireInteger("dns.ndots", options.ndots ?? conf.ndots, 0);
    this.#timeout = requireDuration("dns.timeout", options.timeout ?? Math.min(conf.timeout, 2000));
    this.#attempts = requireInteger("dns.attempts", options.attempts ?? conf.attempts, 1);
    this.#rotate = options.rotate ?? conf.rotate;
    this.#hostsFile = options.hostsFile ?? "/etc/hosts";
    this.#hostsTtl = requireDuration("dns.hostsTtl", options.hostsTtl ?? 5000);
    this.#family = options.family ?? 0;
    if (this.#family !== 0 && this.#family !== 4 && this.#family !== 6) throw new ConfigError("dns.family", "expected 0, 4 or 6");
    this.#minTtl = requireDuration("dns.minTtl", options.minTtl ?? 1000);
    this.#maxTtl = requireDuration("dns.maxTtl", options.maxTtl ?? 300_000);
    if (this.#maxTtl < this.#minTtl) throw new ConfigError("dns.maxTtl", `must be ≥ minTtl (${this.#minTtl} ms)`);
    this.#retryInitial = requireDuration("dns.retryInitial", options.retryInitial ?? 250);
    this.#retryMax = requireDuration("dns.retryMax", options.retryMax ?? 30_000);
  }

  start(listener: ResolverListener): void {
    this.#listener = listener;
    void this.#cycle();
  }

  /** Re-resolve soon: the supervisor's hint that the addresses it has are failing. */
  refresh(): void {
    if (this.#closed || this.#inFlight || !this.#listener) return;
    this.#timer?.cancel();
    this.#timer = this.#clock.setTimeout(() => void this.#cycle(), this.#minTtl);
  }

  close(): void {
    this.#closed = true;
    this.#timer?.cancel();
    this.#timer = undefined;
  }

  /** One full resolution, without the refresh loop. */
  async lookup(): Promise<AddressSet> {
    return (await this.#lookup()).set;
  }

  async #lookup(): Promise<{ set: AddressSet; partial: boolean }> {
    const notes: LookupNotes = { answers: [], names: new Set(), partial: false };
    const r = this.#srv ? await this.#resolveSrv(this.#name, notes) : await this.#resolveHost(this.#name, this.#port as number, notes);
    this.#memory.retain(notes.names);
    const set: AddressSet = notes.answers.length > 0 ? { addresses: r.addresses, ttl: r.ttl, answers: notes.answers } : { addresses: r.addresses, ttl: r.ttl };
    return { set, partial: notes.partial };
  }

  async #cycle(): Promise<void> {
    this.#timer = undefined;
    if (this.#closed || !this.#listener) return;
    this.#inFlight = true;
    let next: number;
    try {
      const { set, partial } = await this.#lookup();
      if (this.#closed) return;
      // A family that failed is asked again on the backoff, not only at the other's TTL.
      this.#failures = partial ? this.#failures + 1 : 0;
      this.#listener.onAddresses(set);
      next = nextRefresh(set.ttl, this.#failures, { initial: this.#retryInitial, max: this.#retryMax });
    } catch (err) {
      if (this.#closed) return;
      this.#failures++;
      const e = err instanceof ResolveError ? err : new ResolveError(this.target, asError(err).message, { cause: err });
      this.#listener.onError(e);
      next = nextRefresh(Number.POSITIVE_INFINITY, this.#failures, { initial: this.#retryInitial, max: this.#retryMax });
    } finally {
      this.#inFlight = false;
    }
    if (!Number.isFinite(next)) return;
    // The clock's timers are unref'd: a refresh never keeps the process alive.
    this.#timer = this.#clock.setTimeout(() => void this.#cycle(), next);
  }

  #clamp(ttlMs: number): number {
    return Math.min(this.#maxTtl, Math.max(this.#minTtl, ttlMs));
  }

  /** The names to try, as resolv.conf's search and ndots say. */
  #candidates(name: string): string[] {
    if (name.endsWith(".")) return [name.slice(0, -1)];
    const dots = name.split(".").length - 1;
    const searched = this.#search.map((d) => `${name}.${d}`);
    return dots >= this.#ndots ? [name, ...searched] : [...searched, name];
  }

  async #resolveHost(host: string, port: number, notes: LookupNotes): Promise<Lookup> {
    const lower = host.toLowerCase().replace(/\.$/, "");
    if (isIP(host)) return { addresses: [ipAddress(host, port, this.target)], ttl: Number.POSITIVE_INFINITY, empty: false };
    // localhost never touches the network.
    if (lower === "localhost" || lower.endsWith(".localhost")) {
      const ips = this.#family === 6 ? ["::1"] : this.#family === 4 ? ["127.0.0.1"] : ["127.0.0.1", "::1"];
      return { addresses: ips.map((ip) => ipAddress(ip, port, this.target)), ttl: Number.POSITIVE_INFINITY, empty: false };
    }
    if (this.#hostsFile !== false) {
      const ips = readHosts(this.#hostsFile)
        .get(lower)
        ?.filter((ip) => this.#family === 0 || isIP(ip) === this.#family);
      if (ips && ips.length > 0) return { addresses: ips.map((ip) => ipAddress(ip, port, this.target)), ttl: this.#hostsTtl, empty: false };
    }
    let emptyTtl = Number.POSITIVE_INFINITY;
    for (const candidate of this.#candidates(host)) {
      const r = await this.#queryFamilies(candidate, port, notes);
      if (!r.empty) return r;
      emptyTtl = Math.min(emptyTtl, r.ttl);
    }
    return { addresses: [], ttl: this.#clamp(Number.isFinite(emptyTtl) ? emptyTtl : this.#minTtl), empty: true };
  }

  /**
   * Both families of one name, each judged on its own (family-answers.ts):
   * an IPv4-only name whose AAAA query is refused (dnsmasq serving a hosts
   * file does that) has its A addresses; an IPv4-only name whose A query
   * timed out while AAAA came back empty keeps A's last good addresses
   * rather than looking like a name with none.
   */
  async #queryFamilies(name: string, port: number, notes: LookupNotes, weight?: number): Promise<Lookup> {
    const types: AddressType[] = this.#family === 4 ? ["A"] : this.#family === 6 ? ["AAAA"] : ["A", "AAAA"];
    const outcomes = await Promise.all(types.map(async (t) => [t, await this.#familyOutcome(name, t)] as const));
    const shown = name.replace(/\.$/, "");
    notes.names.add(shown.toLowerCase());
    const merged = mergeFamilies(shown, outcomes, this.#memory);
    notes.answers.push(...merged.answers);
    notes.partial ||= merged.partial;
    if (merged.status === "failed") {
      throw new ResolveError(this.target, `no address for ${shown}: ${describeAnswers(merged.answers)}`, { answers: [...notes.answers] });
    }
    // An empty answer without an SOA says nothing about how long it holds: re-ask after minTtl.
    const ttl = this.#clamp(Number.isFinite(merged.ttl) ? merged.ttl : this.#minTtl);
    const addresses = merged.ips.map((ip) => ipAddress(ip, port, this.target, weight));
    return { addresses, ttl, empty: addresses.length === 0 };
  }

  async #familyOutcome(name: string, type: AddressType): Promise<FamilyOutcome> {
    try {
      const r = await this.#lookupType(name, type, 0);
      if (r.ips.length > 0) return { kind: "addresses", ips: r.ips, ttl: r.ttl };
      return { kind: "none", answer: r.nxdomain ? "nxdomain" : "nodata", ttl: r.ttl, server: r.server };
    } catch (err) {
      if (err instanceof DnsQueryError) return { kind: "failed", answer: err.answer, server: err.server, message: err.detail };
      if (this.#closed) throw err;
      return { kind: "failed", answer: "error", server: undefined, message: asError(err).message };
    }
  }

  /** A or AAAA for one name, following CNAME chains. TTL is the chain's smallest, in ms. */
  async #lookupType(name: string, type: AddressType, depth: number): Promise<{ ips: string[]; ttl: number; nxdomain: boolean; server: string }> {
    const { resp, server } = await this.#ask(name, type);
    if (resp.rcode === "NXDOMAIN") return { ips: [], ttl: negativeTtl(resp), nxdomain: true, server };
    let current = name;
    let ttl = Number.POSITIVE_INFINITY;
    for (let hop = 0; hop < MAX_CNAME_HOPS; hop++) {
      const cname = resp.answers.find((r) => r.type === "CNAME" && sameName(r.name, current) && typeof r.data === "string");
      if (!cname) break;
      ttl = Math.min(ttl, cname.ttl * 1000);
      current = cname.data as string;
    }
    const family = type === "A" ? 4 : 6;
    const found = resp.answers.filter((r) => r.type === type && sameName(r.name, current) && typeof r.data === "string" && isIP(r.data) === family);
    if (found.length > 0) {
      for (const r of found) ttl = Math.min(ttl, r.ttl * 1000);
      return { ips: [...new Set(found.map((r) => r.data as string))], ttl, nxdomain: false, server };
    }
    if (!sameName(current, name) && depth < MAX_CNAME_HOPS) {
      // The chain left this answer without an address: ask for where it points.
      const next = await this.#lookupType(current, type, depth + 1);
      return { ...next, ttl: Math.min(ttl, next.ttl) };
    }
    return { ips: [], ttl: Math.min(ttl, negativeTtl(resp)), nxdomain: false, server };
  }

  async #resolveSrv(name: string, notes: LookupNotes): Promise<Lookup> {
    let emptyTtl = Number.POSITIVE_INFINITY;
    let targetFailure: unknown;
    for (const candidate of this.#candidates(name)) {
      let asked: { resp: DnsResponse; server: string };
      try {
        asked = await this.#ask(candidate, "SRV");
      } catch (err) {
        if (err instanceof DnsQueryError) {
          const answer: FamilyAnswer = { name: candidate, type: "SRV", answer: err.answer, server: err.server, kept: 0, message: err.detail };
          throw new ResolveError(this.target, err.detail, { cause: err, answers: [...notes.answers, answer] });
        }
        throw err;
      }
      const { resp, server } = asked;
      const srvs = resp.rcode === "NXDOMAIN" ? [] : resp.answers.filter((r) => r.type === "SRV" && isSrvData(r.data));
      if (srvs.length === 0) {
        const answer = resp.rcode === "NXDOMAIN" ? "nxdomain" : "nodata";
        notes.answers.push({
          name: candidate,
          type: "SRV",
          answer,
          server,
          kept: 0,
          message: `${server} answered ${answer.toUpperCase()} for ${candidate} SRV`,
        });
        emptyTtl = Math.min(emptyTtl, negativeTtl(resp));
        continue;
      }
      // Lowest priority first; a higher one is used only when no target of a lower one resolves.
      const priorities = [...new Set(srvs.map((r) => (r.data as SrvData).priority))].sort((a, b) => a - b);
      for (const prio of priorities) {
        const group = srvs.filter((r) => (r.data as SrvData).priority === prio);
        let ttl = Math.min(...group.map((r) => r.ttl * 1000));
        const addresses: Address[] = [];
        for (const r of group) {
          const d = r.data as SrvData;
          const fromAdditional = this.#fromAdditionals(resp, d);
          if (fromAdditional.length > 0) {
            addresses.push(...fromAdditional.map((a) => a.address));
            ttl = Math.min(ttl, ...fromAdditional.map((a) => a.ttl));
            continue;
          }
          try {
            const t = await this.#resolveHostFor(d.target, d.port, d.weight, notes);
            addresses.push(...t.addresses);
            if (!t.empty) ttl = Math.min(ttl, t.ttl);
          } catch (err) {
            // One unresolvable target does not sink the others...
            targetFailure ??= err;
          }
        }
        if (addresses.length > 0) return { addresses: dedupe(addresses), ttl: this.#clamp(ttl), empty: false };
      }
      emptyTtl = Math.min(emptyTtl, ...srvs.map((r) => r.ttl * 1000));
    }
    // ...but when none resolved and a lookup failed, the set is unknown, not empty.
    if (targetFailure !== undefined) {
      const why = notes.answers.length > 0 ? describeAnswers(notes.answers) : asError(targetFailure).message;
      throw new ResolveError(this.target, `no SRV target of ${name} has an address: ${why}`, { cause: targetFailure, answers: [...notes.answers] });
    }
    return { addresses: [], ttl: this.#clamp(Number.isFinite(emptyTtl) ? emptyTtl : this.#minTtl), empty: true };
  }

  /**
   * A target's addresses from the SRV answer's additional section, when it
   * holds every family asked for; otherwise none, and the target is looked
   * up. That section is optional (RFC 2782) and holds what the server had at
   * hand (a recursive's cache may have only A): a family missing from it is
   * asked, never assumed to have no address.
   */
  #fromAdditionals(resp: DnsResponse, d: SrvData): Array<{ address: Address; ttl: number }> {
    const found = resp.additionals
      .filter((r) => (r.type === "A" || r.type === "AAAA") && sameName(r.name, d.target) && typeof r.data === "string" && isIP(r.data))
      .filter((r) => this.#family === 0 || isIP(r.data as string) === this.#family);
    const families = this.#family === 0 ? [4, 6] : [this.#family];
    if (!families.every((f) => found.some((r) => isIP(r.data as string) === f))) return [];
    return found.map((r) => ({ address: ipAddress(r.data as string, d.port, this.target, d.weight), ttl: r.ttl * 1000 }));
  }

  async #resolveHostFor(host: string, port: number, weight: number, notes: LookupNotes): Promise<Lookup> {
    const r = await this.#resolveHost(host.replace(/\.$/, "") + ".", port, notes);
    return { ...r, addresses: r.addresses.map((a) => ({ ...a, weight })) };
  }

  /**
   * Tries every server `attempts` times; only NOERROR and NXDOMAIN count as
   * answers. A failure is a DnsQueryError: the last server's answer.
   */
  async #ask(name: string, type: QueryType): Promise<{ resp: DnsResponse; server: string }> {
    const servers = this.#rotate ? rotate(this.#servers, this.#rotation++) : this.#servers;
    let last: Error | undefined;
    for (let attempt = 0; attempt < this.#attempts; attempt++) {
      for (const server of servers) {
        if (this.#closed) throw new ResolveError(this.target, "resolver closed");
        const key = serverKey(server);
        try {
          const r = await this.#askServer(server, name, type, this.#timeout, this.target, this.#clock);
          if (r.rcode === "NOERROR" || r.rcode === "NXDOMAIN") return { resp: r, server: key };
          last = new DnsQueryError(this.target, `${key} answered ${r.rcode} for ${name.replace(/\.$/, "")} ${type}`, rcodeAnswer(r.rcode), key);
        } catch (err) {
          last = err instanceof DnsQueryError ? err : new DnsQueryError(this.target, asError(err).message, "error", key, { cause: err });
        }
      }
    }
    throw last ?? new ResolveError(this.target, "no nameserver to ask");
  }
}

interface SrvData {
  priority: number;
  weight: number;
  port: number;
  target: string;
}

function isSrvData(d: unknown): d is SrvData {
  const s = d as Partial<SrvData> | null;
  return (
    !!s &&
    typeof s.target === "string" &&
    s.target !== "" &&
    s.target !== "." &&
    Number.isInteger(s.port) &&
    (s.port as number) > 0 &&
    (s.port as number) < 65536 &&
    Number.isInteger(s.priority) &&
    Number.isInteger(s.weight)
  );
}

function rotate<T>(list: readonly T[], by: number): T[] {
  const k = by % list.length;
  return [...list.slice(k), ...list.slice(0, k)];
}

function dedupe(addresses: Address[]): Address[] {
  const seen = new Set<string>();
  return addresses.filter((a) => {
    const key = `${a.host}|${a.port}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}
