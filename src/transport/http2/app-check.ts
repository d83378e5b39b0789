import type { AppCheck } from "../../health/options.js";
import { sendOnConnection } from "./exchange.js";
import { prepareRequest, type PreparedRequest } from "./request-input.js";
import type { ConnectionCheck } from "./stream-host.js";

const GRPC_STATUS_NAMES: Record<number, string> = { 0: "UNKNOWN", 1: "SERVING", 2: "NOT_SERVING", 3: "SERVICE_UNKNOWN" };

/**
 * The health.check option as a function of a connection. gRPC: a unary
 * grpc.health.v1.Health/Check with the service name, encoded by hand (one
 * string field; the reply is one enum field), so no protobuf runtime is
 * needed. HTTP: a GET that must answer 2xx.
 */
export function connectionCheck(check: AppCheck, target: string): ConnectionCheck {
  if ("grpc" in check) {
    const req = grpcHealthRequest(check.grpc.service, target);
    return async (conn, timeoutMs) => {
      const res = await sendOnConnection(conn, target, req, timeoutMs, 64 * 1024);
      // A trailers-only reply (an error such as UNIMPLEMENTED) carries grpc-status in its headers.
      const grpcStatus = res.trailers["grpc-status"] ?? res.headers["grpc-status"];
      if (res.status !== 200 || grpcStatus !== "0") {
        throw new Error(
          `gRPC health check failed: HTTP ${res.status}, grpc-status ${String(grpcStatus)}${res.headers["grpc-message"] ? ` (${String(res.headers["grpc-message"])})` : ""}`,
        );
      }
      const status = servingStatus(res.body);
      if (status !== 1) throw new Error(`gRPC health check: ${GRPC_STATUS_NAMES[status] ?? `status ${status}`}`);
    };
  }
  const req = prepareRequest({ method: "GET", path: check.http.path }, target);
  return async (conn, timeoutMs) => {
    const res = await sendOnConnection(conn, target, req, timeoutMs, 64 * 1024);
    if (res.status < 200 || res.status > 299) throw new Error(`HTTP health check ${check.http.path}: status ${res.status}`);
  };
}

function grpcHealthRequest(service: string, target: string): PreparedRequest {
  const name = Buffer.from(service, "utf8");
  // HealthCheckRequest { string service = 1; }: omitted when empty, as proto3 does.
  const msg = name.length === 0 ? Buffer.alloc(0) : Buffer.concat([Buffer.from([0x0a]), varint(name.length), name]);
  const frame = Buffer.alloc(5 + msg.length);
  frame.writeUInt32BE(msg.length, 1);
  msg.copy(frame, 5);
  return prepareRequest(
    { method: "POST", path: "/grpc.health.v1.Health/Check", headers: { "content-type": "application/grpc", te: "trailers" }, body: frame },
    target,
  );
}

/** HealthCheckResponse { ServingStatus status = 1; } from one length-prefixed gRPC message; 0 when absent. */
function servingStatus(body: Buffer): number {
  if (body.length < 5) return 0;
  const msg = body.subarray(5, 5 + body.readUInt32BE(1));
  for (let i = 0; i < msg.length;) {
    const tag = msg[i++] as number;
    const [value, next] = readVarint(msg, i);
    i = next;
    if (tag === 0x08) return value;
    if ((tag & 7) !== 0) break; // only varint fields are expected; anything else ends the scan
  }
  return 0;
}

function varint(n: number): Buffer {
  const out: number[] = [];
  while (n > 127) {
    out.push((n & 127) | 128);
    n >>>= 7;
  }
  out.push(n);
  return Buffer.from(out);
}

function readVarint(b: Buffer, i: number): [number, number] {
  let v = 0;
  let shift = 0;
  while (i < b.length) {
    const byte = b[i++] as number;
    v |= (byte & 127) << shift;
    if (byte < 128) break;
    shift += 7;
  }
  return [v, i];
}
