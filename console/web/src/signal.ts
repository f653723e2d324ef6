// A value components can watch: `useSignal(s)` re-renders on `s.set`. Enough state management for
// a console of a few screens, without another dependency.
import { useEffect, useState } from "preact/hooks";

export interface Signal<T> {
  get(): T;
  set(value: T): void;
  subscribe(fn: (value: T) => void): () => void;
}

export function signal<T>(value: T): Signal<T> {
  const subs = new Set<(value: T) => void>();
  return {
    get: () => value,
    set(v) {
      value = v;
      subs.forEach((fn) => fn(v));
    },
    subscribe(fn) {
      subs.add(fn);
      return () => subs.delete(fn);
    },
  };
}

/** The signal's value, kept current. A change between the render and the subscription (a
 *  request answered before the effects ran) is caught when the subscription starts. */
export function useSignal<T>(s: Signal<T>): T {
  const [value, setValue] = useState(s.get());
  useEffect(() => {
    // Through an updater, so a signal holding a function is stored, not called.
    const take = (v: T) => setValue(() => v);
    take(s.get());
    return s.subscribe(take);
  }, [s]);
  return value;
}
