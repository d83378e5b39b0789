/**
 * Exponentially weighted moving average of PING round trips. The first sample
 * seeds it; later samples move it by `alpha`.
 */
export class RttEstimate {
  #value: number | undefined;
  constructor(readonly alpha = 0.3) {}

  get value(): number | undefined {
    return this.#value;
  }

  add(sample: number): number {
    this.#value = this.#value === undefined ? sample : this.#value + this.alpha * (sample - this.#value);
    return this.#value;
  }
}
