/**
 * Reading ahead: the next item of a sequence is being produced (a batch read and decoded) while the caller
 * works on the current one (a forward in LibTorch's threads), so that data loading overlaps computation.
 */

/**
 * Yields the items of `source` in order, requesting each one as soon as the previous one is handed out;
 * stops after `limit` items without reading one more.
 */
export async function* prefetch<T>(source: AsyncIterable<T> | Iterable<T>, limit = Infinity): AsyncGenerator<T> {
  if (limit <= 0) return;
  const iterator: AsyncIterator<T> | Iterator<T> =
    Symbol.asyncIterator in source
      ? (source as AsyncIterable<T>)[Symbol.asyncIterator]()
      : (source as Iterable<T>)[Symbol.iterator]();
  const request = (): Promise<IteratorResult<T>> => {
    const pending = Promise.resolve(iterator.next());
    pending.catch(() => undefined); // rejected reads are rethrown where they are awaited
    return pending;
  };
  let next = request();
  let handedOut = 0;
  let done = false;
  try {
    for (;;) {
      const current = await next;
      if (current.done) {
        done = true;
        return;
      }
      if (++handedOut < limit) next = request();
      else done = true;
      yield current.value;
      if (done) return;
    }
  } finally {
    if (!done) await next.catch(() => undefined);
    await iterator.return?.();
  }
}
