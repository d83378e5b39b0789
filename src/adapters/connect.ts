/**
 * `dialtone/connect`: connect-node's NodeHttp2ClientSessionManager over a
 * dialtone HTTP/2 channel, so
 * `createGrpcTransport({ baseUrl, httpVersion: "2", sessionManager })` and
 * `createConnectTransport(...)` send every call to one of the channel's warm
 * members (P2C), instead of connect-node's single session that only notices
 * a dead peer when a call fails. It uses only the channel's public API.
 */
import type { ClientHttp2Stream, ClientSessionRequestOptions, OutgoingHttpHeaders } from "node:http2";
import { Code, ConnectError } from "@connectrpc/connect";
import { DialtoneError } from "../core/errors.js";
import type { Http2Channel } from "../transport/http2/channel.js";
import { GRPC_UNAVAILABLE_CODES } from "./grpc-unavailable.js";

/** The shape connect-node asks of a session manager (structurally its NodeHttp2ClientSessionManager). */
export interface ChannelSessionManager {
  /** The origin calls must be made to: the channel's target. */
  readonly authority: string;
  request(method: string, path: string, headers: OutgoingHttpHeaders, options: Omit<ClientSessionRequestOptions, "signal">): Promise<ClientHttp2Stream>;
  notifyResponseByteRead(stream: ClientHttp2Stream): void;
}

/** Creates a session manager whose streams open on the channel's members. */
export function createSessionManager(channel: Http2Channel): ChannelSessionManager {
  return {
    authority: new URL(channel.target).origin,
    async request(method, path, headers, options) {
      // connect-node writes the request body itself, so the request side stays
      // open unless it says otherwise (stream() would end it at once by default).
      let stream: ClientHttp2Stream;
      try {
        stream = await channel.stream({ method, path, headers, endStream: options.endStream ?? false });
      } catch (err) {
        throw connectErrorFor(err, undefined);
      }
      asConnectErrors(stream);
      return stream;
    },
    notifyResponseByteRead() {
      // Liveness is the channel's job (PING/PONG per member, passive suspicion), not this hook's.
    },
  };
}

const NGHTTP2_REFUSED_STREAM = 7;

/** connect-node's reading of an error, decided here for the ones dialtone knows better; undefined leaves it to connect-node. */
function connectErrorFor(err: unknown, rstCode: number | undefined): unknown {
  if (err instanceof DialtoneError) {
    const code = GRPC_UNAVAILABLE_CODES.has(err.code) ? Code.Unavailable : err.code === "ERR_DIALTONE_ABORTED" ? Code.Canceled : undefined;
    return code === undefined ? err : new ConnectError(err.message, code, undefined, undefined, err);
  }
  // Node emits ERR_HTTP2_STREAM_ERROR for a peer's REFUSED_STREAM before 'close', so connect-node's own
  // rstCode mapping (REFUSED_STREAM → UNAVAILABLE) never runs and the call fails INTERNAL.
  if (rstCode === NGHTTP2_REFUSED_STREAM && err instanceof Error) {
    return new ConnectError("http/2 stream closed with error code REFUSED_STREAM (0x7)", Code.Unavailable, undefined, undefined, err);
  }
  return err;
}

/**
 * connect-node listens for the stream's 'error' itself; the only place to
 * give it a ConnectError with the right code is the event. The stream is
 * ours (opened for this call), so overriding its emit touches nobody else.
 */
function asConnectErrors(stream: ClientHttp2Stream): void {
  const emit = stream.emit;
  stream.emit = function (this: ClientHttp2Stream, event: string | symbol, ...args: unknown[]): boolean {
    if (event === "error") args[0] = connectErrorFor(args[0], this.rstCode);
    return emit.call(this, event, ...args);
  } as ClientHttp2Stream["emit"];
}
