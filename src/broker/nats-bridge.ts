import { Http2ServerResponse } from "node:http2";
import { parseDuration } from "../core/duration.js";
import { BadRequestError } from "../core/errors.js";
import { failureOf, sendFailure, type IngressResponse } from "./error-response.js";
import type { IngressRequest } from "./ingress.js";
import type { Upstreams } from "./upstreams.js";

/** `/nats/<upstream>/request|publish/<subject>` */
const ROUTE = /^\/nats\/([^/?]+)\/(request|publish)\/([^?]+)(?:\?(.*))?$/;
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const SAFE_VALUE = /^[\t\x20-\x7e]*$/;
const HEADER_PREFIX = "nats-";

export function isNatsBridgePath(url: string): boolean {
  return url.startsWith("/nats/");
}

/**
 * The NATS bridge (HeyNATS' job): `POST /nats/<upstream>/request/<subject>`
 * answers with the reply's body, `…/publish/<subject>` with 202. NATS
 * headers travel as `nats-<name>` HTTP headers both ways. The request body
 * is buffered (NATS messages are whole), bounded by `maxBodyBytes` (413).
 * A request's timeout comes from `x-dialtone-timeout` or `?timeout=` (5s,
 * 250ms), else the channel's requestTimeout.
 */
export async function natsBridge(
  upstreams: Upstreams,
  req: IngressRequest,
  res: IngressResponse,
  maxBodyBytes: number,
): Promise<{ upstream: string; status: number }> {
  const m = ROUTE.exec(req.url ?? "");
  if (!m)
    return {
      upstream: "none",
      status: fail(res, 404, "ERR_DIALTONE_BROKER_NO_ROUTE", "expected POST /nats/<upstream>/request/<subject> or /nats/<upstream>/publish/<subject>"),
    };
  const name = decodeURIComponent(m[1] as string);
  const op = m[2] as "request" | "publish";
  if (upstreams.kindOf(name) !== "nats")
    return { upstream: "none", status: fail(res, 404, "ERR_DIALTONE_BROKER_NO_ROUTE", `no nats upstream named ${JSON.stringify(name.slice(0, 64))}`) };
  if (req.method !== "POST") {
    res.setHeader("allow", "POST");
    return { upstream: name, status: fail(res, 405, "ERR_DIALTONE_BAD_REQUEST", "the NATS bridge takes POST") };
  }
  let subject: string;
  try {
    subject = decodeURIComponent(m[3] as string);
  } catch {
    return { upstream: name, status: fail(res, 400, "ERR_DIALTONE_BAD_REQUEST", "the subject is not valid percent-encoding") };
  }
  const declared = Number(req.headers["content-length"] ?? 0);
  if (declared > maxBodyBytes) return { upstream: name, status: tooLarge(res, maxBodyBytes) };
  const lease = upstreams.acquire(name, "nats");
  // A client that goes away gives up its request: the call is abandoned and its slot freed at once, not at its timeout.
  const gone = new AbortController();
  const onClose = (): void => {
    // writableEnded: whether the bridge ended the response (Http2ServerResponse reads as finished once its stream closes).
    if (!res.writableEnded) gone.abort(new Error("client closed the connection"));
  };
  res.once("close", onClose);
  try {
    const body = await readBounded(req, maxBodyBytes);
    if (body === undefined) return { upstream: name, status: tooLarge(res, maxBodyBytes) };
    const headers = natsHeaders(req);
    if (op === "publish") {
      await lease.channel.publish(subject, body, { headers, signal: gone.signal });
      res.writeHead(202, { "content-length": 0 });
      res.end();
      return { upstream: name, status: 202 };
    }
    const timeout = timeoutOf(req, new URLSearchParams(m[4] ?? ""));
    const reply = await lease.channel.request(subject, body, { headers, timeout, signal: gone.signal });
    const out: Record<string, string | string[] | number> = { "content-type": "application/octet-stream", "content-length": reply.data.length };
    const h = reply.headers;
    if (h) {
      for (const key of h.keys()) {
        const httpName = `${HEADER_PREFIX}${key.toLowerCase()}`;
        const values = h.values(key).filter((v) => SAFE_VALUE.test(v));
        // A reply header HTTP cannot carry is dropped rather than breaking the response.
        if (TOKEN.test(key) && values.length > 0) out[httpName] = values.length === 1 ? (values[0] as string) : values;
      }
    }
    res.writeHead(200, out);
    res.end(Buffer.from(reply.data.buffer, reply.data.byteOffset, reply.data.byteLength));
    return { upstream: name, status: 200 };
  } catch (err) {
    // A subject over the server's control line is a bad request line, not a body to send smaller: 400, not 413.
    const f = err instanceof BadRequestError && err.field === "subject" ? { ...failureOf(err), status: 400 } : failureOf(err);
    sendFailure(res, f);
    return { upstream: name, status: f.status };
  } finally {
    res.removeListener("close", onClose);
    lease.release();
  }
}

function natsHeaders(req: IngressRequest): Record<string, string> | undefined {
  let out: Record<string, string> | undefined;
  for (const [name, value] of Object.entries(req.headers)) {
    if (!name.startsWith(HEADER_PREFIX) || name.length === HEADER_PREFIX.length || value === undefined) continue;
    (out ??= {})[name.slice(HEADER_PREFIX.length)] = Array.isArray(value) ? value.join(", ") : value;
  }
  return out;
}

function timeoutOf(req: IngressRequest, query: URLSearchParams): number | undefined {
  const raw = (req.headers["x-dialtone-timeout"] as string | undefined) ?? query.get("timeout") ?? undefined;
  if (raw === undefined) return undefined;
  const ms = parseDuration("timeout", /^\d+$/.test(raw) ? `${raw}ms` : raw);
  if (ms === 0) throw new BadRequestError("nats bridge", "timeout", "must be above 0");
  return ms;
}

/** The whole body, or undefined once it passes `max` bytes (then the rest is not read). */
async function readBounded(req: IngressRequest, max: number): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > max) return undefined;
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, size);
}

function tooLarge(res: IngressResponse, max: number): number {
  // The unread rest of the body cannot be left on a keep-alive connection.
  if (!(res instanceof Http2ServerResponse)) res.setHeader("connection", "close");
  return fail(res, 413, "ERR_DIALTONE_BAD_REQUEST", `request body is over the ${max}-byte limit (limits.maxBodyBytes)`);
}

function fail(res: IngressResponse, status: number, code: string, reason: string): number {
  sendFailure(res, { status, code, reason });
  return status;
}
