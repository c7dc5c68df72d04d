/** The project's one seedable generator (mulberry32): the same seed gives the same sequence everywhere. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Uniform values in [low, high) from seededRandom(seed). */
export function uniformArray(length: number, seed: number, low = -1, high = 1): Float32Array {
  const random = seededRandom(seed);
  const data = new Float32Array(length);
  for (let i = 0; i < length; i++) data[i] = low + (high - low) * random();
  return data;
}
