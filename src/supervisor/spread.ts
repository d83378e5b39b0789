import type { Address } from "../core/address.js";

/** How one address stands when a slot needs somewhere to dial. */
export interface AddressLoad {
  readonly address: Address;
  /** Members on it that count toward spread (dialing, connecting, ready, unhealthy). */
  readonly members: number;
  /** A member on it has not yet proven itself (dial or first PING in progress). */
  readonly proving: boolean;
  /** Until when (ms, same clock as `now`) it is backing off after a failure; 0 if not. */
  readonly coolingUntil: number;
}

export type SpreadDecision = { kind: "dial"; address: Address } | { kind: "wait"; until: number | undefined };

/**
 * DESIGN.md's Spread rule as a pure function over `loads`, which come in the
 * per-process shuffled order (so ties spread many clients over many backends):
 * - the address with the fewest members wins, among those not backing off;
 * - an address whose member is still proving itself takes no second member
 *   (stacking waits until the first has proven itself or backed off), and no
 *   address is stacked deeper than one that is still proving;
 * - when every eligible address is backing off, wait for the earliest to end;
 * - with nothing eligible at all, wait for a change (`until` undefined).
 */
export function chooseAddress(loads: readonly AddressLoad[], now: number): SpreadDecision {
  let best: AddressLoad | undefined;
  let earliestCooling: number | undefined;
  // The least-loaded address whose member is still proving: stacking deeper elsewhere must wait for it.
  let provingMin = Number.POSITIVE_INFINITY;
  for (const l of loads) {
    if (l.members > 0 && l.proving) {
      if (l.coolingUntil <= now) provingMin = Math.min(provingMin, l.members);
      continue;
    }
    if (l.coolingUntil > now) {
      if (earliestCooling === undefined || l.coolingUntil < earliestCooling) earliestCooling = l.coolingUntil;
      continue;
    }
    if (!best || l.members < best.members) best = l;
  }
  if (best && best.members <= provingMin) return { kind: "dial", address: best.address };
  if (best) return { kind: "wait", until: undefined };
  return { kind: "wait", until: earliestCooling };
}
