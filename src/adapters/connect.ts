/**
 * `dialtone/connect`: connect-node's NodeHttp2ClientSessionManager over a
 * dialtone HTTP/2 channel, so
 * `createGrpcTransport({ baseUrl, httpVersion: "2", sessionManager })` and
 * `createConnectTransport(...)` send every call to one of the channel's warm
 * members (P2C), instead of connect-node's single session that only notices
 * a dead peer when a call fails. It uses only the channel's public API.
 */
import type { ClientHttp2Stream, ClientSessionRequestOptions, OutgoingHttpHeaders } from "node:http2";
import type { Http2Channel } from "../transport/http2/channel.js";

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
    request(method, path, headers, options) {
      // connect-node writes the request body itself, so the request side stays
      // open unless it says otherwise (stream() would end it at once by default).
      return channel.stream({ method, path, headers, endStream: options.endStream ?? false });
    },
    notifyResponseByteRead() {
      // Liveness is the channel's job (PING/PONG per member, passive suspicion), not this hook's.
    },
  };
}
