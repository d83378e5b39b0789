/**
 * A simulated world for the deterministic simulation test: peers that can be
 * killed, frozen, made to flap or to send GOAWAY, connections to them that
 * PING and carry requests, a connector and a resolver whose answers change —
 * all on a SimClock, with no sockets. Fake by design: the faults are the
 * same ones the real-peer tests produce, here scripted by a seed so that
 * minutes of them run in well under a second.
 */
import { addressKey, type Address } from "../../src/core/address.js";
import type { Timer } from "../../src/core/clock.js";
import { AbortedError, ConnectError, MemberLostError, RequestError, RequestTimeoutError } from "../../src/core/errors.js";
import { DnsQueryError, type DnsResponse } from "../../src/resolve/dns-message.js";
import { serverKey, type AskServer } from "../../src/resolve/dns-transport.js";
import type { ConnectionEvent, Connector, MemberConnection } from "../../src/supervisor/connection.js";
import type { SimClock } from "./sim-clock.js";

export const TARGET = "sim.test";
/** How long a dial to a frozen peer hangs before it fails (a transport's connect timeout). */
export const CONNECT_TIMEOUT = 1000;

export type PeerState = "up" | "down" | "frozen";

export class SimPeer {
  state: PeerState = "up";
  /** Connections made while flapping die this many ms after they open. */
  flapAfter: number | undefined;
  readonly conns = new Set<SimConnection>();
  constructor(
    readonly address: Address,
    readonly rtt: number,
  ) {}
  get key(): string {
    return addressKey(this.address);
  }
}

interface PendingRequest {
  serviceMs: number;
  resolve(v: string): void;
  reject(e: Error): void;
  timer: Timer | undefined;
  /** Started serving (not waiting for a thaw). */
  serving: boolean;
  cleanup(): void;
}

export class SimConnection implements MemberConnection {
  readonly maxConcurrent = 100;
  #listener: ((e: ConnectionEvent) => void) | undefined;
  #closed = false;
  #draining = false;
  #pings: Array<(rtt: number) => void> = [];
  readonly pending = new Set<PendingRequest>();

  constructor(
    readonly peer: SimPeer,
    readonly clock: SimClock,
  ) {
    peer.conns.add(this);
  }

  get closed(): boolean {
    return this.#closed;
  }

  onEvent(listener: (e: ConnectionEvent) => void): void {
    this.#listener = listener;
  }

  ping(): Promise<number> {
    if (this.#closed) return Promise.reject(new Error("connection closed"));
    return new Promise((resolve) => {
      const answer = (rtt: number): void => void this.clock.world(() => !this.#closed && resolve(rtt), rtt);
      // A frozen peer answers when it wakes (the PING waits in its socket buffer).
      if (this.peer.state === "frozen") this.#pings.push(answer);
      else answer(this.peer.rtt);
    });
  }

  /** One request: answered after `serviceMs` of the peer's time, or failed by the deadline, an abort, or the connection's end. */
  request(signal: AbortSignal | undefined, budgetMs: number, serviceMs: number): Promise<string> {
    const key = this.peer.key;
    if (this.#closed || this.#draining) return Promise.reject(new RequestError("ERR_DIALTONE_NOT_SENT", TARGET, key, "connection closing", true));
    if (signal?.aborted) return Promise.reject(new AbortedError(TARGET, signal.reason));
    return new Promise((resolve, reject) => {
      const onAbort = (): void => end(() => reject(new AbortedError(TARGET, signal?.reason)));
      const deadline = this.clock.world(() => end(() => reject(new RequestTimeoutError(TARGET, key, budgetMs))), budgetMs);
      const p: PendingRequest = {
        serviceMs,
        resolve: (v) => end(() => resolve(v)),
        reject: (e) => end(() => reject(e)),
        timer: undefined,
        serving: false,
        cleanup: () => {
          deadline.cancel();
          p.timer?.cancel();
          signal?.removeEventListener("abort", onAbort);
        },
      };
      const end = (settle: () => void): void => {
        if (!this.pending.delete(p)) return;
        p.cleanup();
        settle();
        if (this.#draining && this.pending.size === 0) this.#finish(undefined);
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      this.pending.add(p);
      if (this.peer.state !== "frozen") this.#serve(p);
    });
  }

  close(graceful: boolean): void {
    if (this.#closed) return;
    if (graceful) {
      this.#draining = true;
      if (this.pending.size === 0) queueMicrotask(() => this.#finish(undefined));
      return;
    }
    // Destroyed by the channel: what was in flight is cut.
    this.#cut(new MemberLostError(TARGET, this.peer.key, "connection destroyed"));
    queueMicrotask(() => this.#finish(undefined));
  }

  /** The peer went away (killed, or a flapping connection died). */
  drop(): void {
    if (this.#closed) return;
    this.#cut(new MemberLostError(TARGET, this.peer.key, "connection reset"));
    this.#finish(new ConnectError(TARGET, this.peer.key, "connection reset by peer"));
  }

  /** The peer said GOAWAY: no new work here. */
  goaway(): void {
    if (this.#closed || this.#draining) return;
    this.#listener?.({ type: "draining", kind: "goaway", reason: "GOAWAY from the peer" });
  }

  /** The peer woke up: what waited in its buffers is served now. */
  thaw(): void {
    for (const answer of this.#pings.splice(0)) answer(this.peer.rtt);
    for (const p of this.pending) if (!p.serving) this.#serve(p);
  }

  #serve(p: PendingRequest): void {
    p.serving = true;
    p.timer = this.clock.world(() => {
      // Frozen meanwhile: the answer waits for the thaw.
      if (this.peer.state === "frozen") {
        p.serving = false;
        return;
      }
      p.resolve(this.peer.key);
    }, p.serviceMs);
  }

  #cut(error: Error): void {
    for (const p of [...this.pending]) p.reject(error);
  }

  #finish(error: Error | undefined): void {
    if (this.#closed) return;
    this.#closed = true;
    this.peer.conns.delete(this);
    this.#listener?.({ type: "closed", error });
  }
}

export class SimConnector implements Connector<SimConnection> {
  dials = 0;
  constructor(
    readonly peers: Map<string, SimPeer>,
    readonly clock: SimClock,
    readonly random: () => number,
  ) {}

  connect(address: Address, signal: AbortSignal): Promise<SimConnection> {
    this.dials++;
    const key = addressKey(address);
    const peer = this.peers.get(key);
    return new Promise((resolve, reject) => {
      let timer: Timer | undefined;
      const onAbort = (): void => {
        timer?.cancel();
        reject(signal.reason);
      };
      if (signal.aborted) return onAbort();
      signal.addEventListener("abort", onAbort, { once: true });
      const settle = (fn: () => void): void => {
        signal.removeEventListener("abort", onAbort);
        fn();
      };
      if (!peer || peer.state === "down") {
        timer = this.clock.world(() => settle(() => reject(new ConnectError(TARGET, key, "ECONNREFUSED"))), 1);
      } else if (peer.state === "frozen") {
        // TCP connects (the kernel answers) but the peer never speaks: the dial times out.
        timer = this.clock.world(() => settle(() => reject(new ConnectError(TARGET, key, `connect timed out after ${CONNECT_TIMEOUT} ms`))), CONNECT_TIMEOUT);
      } else {
        timer = this.clock.world(
          () => {
            settle(() => {
              if (peer.state === "down") return reject(new ConnectError(TARGET, key, "ECONNREFUSED"));
              const conn = new SimConnection(peer, this.clock);
              if (peer.flapAfter !== undefined) this.clock.world(() => conn.drop(), peer.flapAfter * (0.5 + this.random()));
              resolve(conn);
            });
          },
          1 + Math.floor(this.random() * 3),
        );
      }
    });
  }
}

/**
 * A scripted nameserver for the real DnsResolver (its `ask`, in place of
 * UDP): it answers A/AAAA for any name with the addresses the script set,
 * at `ttl` seconds, after `latency` ms of world time — or SERVFAILs, or
 * stays silent until the query's own timeout, as the script says.
 */
export class SimDns {
  addresses: Address[];
  state: "up" | "servfail" | "silent" = "up";
  /** Every question asked, with the clock time it was asked at. */
  readonly asked: Array<{ t: number; name: string; type: string }> = [];
  constructor(
    readonly clock: SimClock,
    addresses: Address[],
    readonly ttl: number,
    readonly latency = 2,
  ) {
    this.addresses = addresses;
  }

  readonly ask: AskServer = (server, name, type, timeoutMs, target) => {
    this.asked.push({ t: this.clock.now(), name, type });
    return new Promise<DnsResponse>((resolve, reject) => {
      if (this.state === "silent") {
        const key = serverKey(server);
        this.clock.world(
          () => reject(new DnsQueryError(target, `no answer from ${key} for ${name} ${type} within ${timeoutMs} ms`, "timeout", key)),
          timeoutMs,
        );
        return;
      }
      const rcode = this.state === "servfail" ? "SERVFAIL" : "NOERROR";
      const family = type === "AAAA" ? 6 : 4;
      const answers = rcode === "NOERROR" ? this.addresses.filter((a) => a.family === family).map((a) => ({ name, type, ttl: this.ttl, data: a.host })) : [];
      this.clock.world(() => resolve({ rcode, truncated: false, answers, authorities: [], additionals: [] }), this.latency);
    });
  };
}
