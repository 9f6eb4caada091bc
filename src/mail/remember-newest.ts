/**
 * `rememberNewest(map, key, value, max)`: sets `key` to `value` as the newest entry of `map` (a
 * Map keeps insertion order, and a key set again moves to the end), then forgets the oldest
 * entries beyond `max`. The bounded memories of the email worker (the relay's rows published
 * under a failed claim, the batcher's mails sent and not recorded) use it: memory stays bounded
 * whatever an outage lasts, and what is forgotten is what was remembered longest ago.
 */
export function rememberNewest<K, V>(map: Map<K, V>, key: K, value: V, max: number): void {
  map.delete(key);
  map.set(key, value);
  for (const oldest of map.keys()) {
    if (map.size <= max) break;
    map.delete(oldest);
  }
}
