// A screen's commands (POST, PUT, DELETE): the last one's error, and a counter bumped after each
// one that succeeded (lists poll with it as a dependency, so they are read again at once).
import { useState } from "preact/hooks";

export function useCommand() {
  const [error, setError] = useState<unknown>(null);
  const [tick, setTick] = useState(0);
  /** Runs `fn`; whether it succeeded. */
  async function run(fn: () => Promise<unknown>): Promise<boolean> {
    setError(null);
    try {
      await fn();
      setTick((n) => n + 1);
      return true;
    } catch (e) {
      setError(e);
      return false;
    }
  }
  return { error, tick, run };
}
