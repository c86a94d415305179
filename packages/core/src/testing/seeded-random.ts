/**
 * A seeded pseudo-random source (mulberry32): a fault-injection run, a property test's cases or a
 * chaos campaign's kills replay exactly from their seed.
 * @returns numbers in [0, 1), as `Math.random` does
 */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}
