/**
 * Small pieces for tests of asynchronous code that runs on the test's own thread: whether a
 * promise has settled yet, and what it rejected with.
 */

/** `promise`, and whether it has settled yet. */
export function watch<T>(promise: Promise<T>): { promise: Promise<T>; readonly settled: boolean } {
  let settled = false;
  promise.then(
    () => (settled = true),
    () => (settled = true),
  );
  return {
    promise,
    get settled() {
      return settled;
    },
  };
}

/**
 * Whether `promise` settles within a few turns of the microtask queue, that is without waiting
 * for any timer or message.
 */
export async function settlesAtOnce(promise: Promise<unknown>): Promise<boolean> {
  const watched = watch(promise);
  for (let i = 0; i < 3; i++) await Promise.resolve();
  return watched.settled;
}

/** What `promise` rejects with; throws when it resolves instead. */
export async function rejection(promise: Promise<unknown>): Promise<Error & { code?: string }> {
  try {
    await promise;
  } catch (err) {
    return err as Error & { code?: string };
  }
  throw new Error('Expected the promise to reject, but it resolved');
}
