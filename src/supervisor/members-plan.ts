/**
 * How many members a channel keeps, resolved once at construction
 * (transport/common-options.ts) and passed down unchanged to the supervisor,
 * the regulator and the load follower: a fixed count (min = max) or a range
 * that follows load.
 */
export interface MembersPlan {
  /** What ready() waits for; the count a range starts at. */
  readonly min: number;
  readonly max: number;
  /** In-flight requests per ready member above which the range grows (undefined: half the peers' stream limit, or 64). */
  readonly target: number | undefined;
  /** ms of sustained high load before one member is added. */
  readonly growAfter: number;
  /** ms below a quarter of target before one member is let go. */
  readonly shrinkAfter: number;
}

/**
 * The supervisor's defaults, in one place: the channel options resolve to
 * them (common-options.ts), and nothing below applies a default of its own.
 */
export const SUPERVISOR_DEFAULTS = Object.freeze({
  /** A connection that dies this soon after its first PONG counts as a failure of its address. */
  flapWindow: 5000,
  /** How long an address that rotating answers omit keeps its members. */
  minHold: 30_000,
  /** Requests in flight on one channel past which acquire() fails at once. */
  maxOutstanding: 10_000,
  /** Members that follow load: how long load must stay high before one member is added. */
  growAfter: 1000,
  /** …and how long it must stay low before one is let go. */
  shrinkAfter: 30_000,
});

/** A fixed count of members. */
export function fixedMembers(n: number): MembersPlan {
  return { min: n, max: n, target: undefined, growAfter: SUPERVISOR_DEFAULTS.growAfter, shrinkAfter: SUPERVISOR_DEFAULTS.shrinkAfter };
}
