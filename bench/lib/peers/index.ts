import { connectPeer } from "./connect.js";
import { dialtonePeer } from "./dialtone.js";
import { dialtoneConnectPeer, dialtoneFetchPeer, dialtoneGrpcJsPeer } from "./dialtone-adapters.js";
import { grpcJsPeer } from "./grpcjs.js";
import { rawPeer, rawSpreadPeer } from "./raw.js";
import type { Peer } from "./types.js";
import { undiciBalanced, undiciFetchPeer, undiciPoolPeer } from "./undici.js";

export const dialtone = dialtonePeer();
/** The other balancer, for bench/slow. */
export const dialtoneInFlight = dialtonePeer("in-flight");
/** Control: one member, so one backend, like the raw session; separates client cost from the 3-backend spread. */
export const dialtoneOneMember = dialtonePeer("peak-ewma", 1);
/** The same with metrics on a prom-client registry and an event listener, as a real deployment runs (issue 15). */
export const dialtoneOneMemberMetered = dialtonePeer("peak-ewma", 1, true);
export const grpcJs = grpcJsPeer(false);
export const grpcJsKeepalive = grpcJsPeer(true);
export const undiciBalancedPeer = undiciBalanced();
/** Every POST marked idempotent, so undici multiplexes them (throughput only). */
export const undiciBalancedIdempotent = undiciBalanced(true);
export { connectPeer, dialtoneConnectPeer, dialtoneFetchPeer, dialtoneGrpcJsPeer, rawPeer, rawSpreadPeer, undiciFetchPeer, undiciPoolPeer };

/** Every client, dialtone first. */
export const ALL_PEERS: Peer[] = [dialtone, rawPeer, undiciPoolPeer, undiciBalancedPeer, connectPeer, grpcJs, grpcJsKeepalive, dialtoneGrpcJsPeer];
