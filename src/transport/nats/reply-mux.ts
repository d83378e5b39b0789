import type { DeadlineQueue, Deadline } from "../../core/deadlines.js";
import {
  ClosedConnectionError,
  createInbox,
  NoRespondersError,
  TimeoutError,
  type MsgHdrs,
  type Msg,
  type NatsConnection,
  type Subscription,
} from "@nats-io/transport-node";

interface Pending {
  resolve(msg: Msg): void;
  reject(err: Error): void;
  subject: string;
  token: string;
  mux: ReplyMux;
  deadline: Deadline | undefined;
}

/**
 * Request/reply for one member connection over one shared reply
 * subscription (`_INBOX.<nuid>.*`), as nats.js's own "mux" does — but
 * without what nats.js spends per request on top of it: two or three Error
 * objects with captured stacks (async traces, a timeout error and a
 * "cancelled" error built whether or not anything fails), a random token,
 * a deferred and a setTimeout/clearTimeout pair. Here a request is a Map
 * entry under a counter token, and its deadline sits in the channel's
 * DeadlineQueue (on the channel's clock, shared by all its members): one
 * timer, re-armed about once per timeout period under load, not per request.
 *
 * Outcomes are nats.js's own error types, so callers map them as before: a
 * reply with no data and status 503 is NoRespondersError; a deadline is
 * TimeoutError; the connection closing fails what is pending with
 * ClosedConnectionError; a publish refused by a permission violation fails
 * the oldest pending request on that subject (nats.js does the same); a
 * refused reply subscription fails every pending request.
 */
export class ReplyMux {
  readonly #nc: NatsConnection;
  readonly #deadlines: DeadlineQueue;
  readonly #pending = new Map<string, Pending>();
  #sub: Subscription | undefined;
  #prefix = "";
  #seq = 0;
  #closed: Error | undefined;

  constructor(nc: NatsConnection, deadlines: DeadlineQueue) {
    this.#nc = nc;
    this.#deadlines = deadlines;
  }

  /** Requests waiting for a reply. */
  get pending(): number {
    return this.#pending.size;
  }

  request(subject: string, data: string | Uint8Array | undefined, headers: MsgHdrs | undefined, timeoutMs: number): Promise<Msg> {
    if (this.#closed) return Promise.reject(this.#closed);
    try {
      // A reply subscription the client closed (a drain, a refusal) is made again.
      if (this.#sub === undefined || this.#sub.isClosed()) this.#subscribe();
    } catch (err) {
      return Promise.reject(err as Error);
    }
    const token = (++this.#seq).toString(36);
    return new Promise<Msg>((resolve, reject) => {
      const p: Pending = { resolve, reject, subject, token, mux: this, deadline: undefined };
      this.#pending.set(token, p);
      try {
        this.#nc.publish(subject, data, { reply: this.#prefix + token, headers });
      } catch (err) {
        this.#pending.delete(token);
        reject(err as Error);
        return;
      }
      p.deadline = this.#deadlines.add(timeoutMs, ReplyMux.timedOut, p);
    });
  }

  /** The server refused a publish on `subject`: the oldest request sent there fails with its error. */
  failPublish(subject: string, err: Error): void {
    for (const [token, p] of this.#pending) {
      if (p.subject !== subject) continue;
      this.#settle(token);
      p.reject(err);
      return;
    }
  }

  /** The connection closed: everything pending fails, and so does every later request. */
  close(err: Error = new ClosedConnectionError()): void {
    this.#closed ??= err;
    this.#sub = undefined;
    this.#failAll(this.#closed);
  }

  #subscribe(): void {
    const prefix = `${createInbox()}.`;
    this.#sub = this.#nc.subscribe(`${prefix}*`, { callback: this.#onReply });
    this.#prefix = prefix;
  }

  #onReply = (err: Error | null, msg: Msg): void => {
    if (err) {
      // The reply subscription was refused (a permission violation): nothing pending can be answered; the next request subscribes again.
      this.#sub = undefined;
      this.#failAll(err);
      return;
    }
    const token = msg.subject.startsWith(this.#prefix) ? msg.subject.slice(this.#prefix.length) : undefined;
    const p = token === undefined ? undefined : this.#pending.get(token);
    // A late reply (its request timed out, or a hedge that lost) is dropped.
    if (!p || token === undefined) return;
    this.#settle(token);
    if (msg.data.length === 0 && msg.headers?.code === 503) p.reject(new NoRespondersError(p.subject));
    else p.resolve(msg);
  };

  #settle(token: string): void {
    const p = this.#pending.get(token);
    if (p?.deadline) this.#deadlines.cancel(p.deadline);
    this.#pending.delete(token);
  }

  #failAll(err: Error): void {
    const all = [...this.#pending.values()];
    this.#pending.clear();
    for (const p of all) {
      if (p.deadline) this.#deadlines.cancel(p.deadline);
      p.reject(err);
    }
  }

  /** A request's deadline passed (a shared function: the queue passes the request, no closure per request). */
  static timedOut(this: void, p: Pending): void {
    const mux = p.mux;
    if (mux.#pending.get(p.token) !== p) return;
    mux.#pending.delete(p.token);
    p.reject(new TimeoutError());
  }
}
