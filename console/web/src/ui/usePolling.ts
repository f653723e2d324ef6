// Loads `load` now and again every `ms` while the screen is shown (and the tab is visible).
import { useEffect, useRef, useState } from "preact/hooks";

export function usePolling<T>(load: () => Promise<T>, ms: number, deps: unknown[] = []) {
  const [data, setData] = useState<T | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [at, setAt] = useState<number | null>(null);
  const loader = useRef(load);
  loader.current = load;
  useEffect(() => {
    let stopped = false;
    let timer: ReturnType<typeof setTimeout>;
    const tick = async () => {
      if (document.visibilityState === "visible") {
        try {
          const d = await loader.current();
          if (!stopped) {
            setData(d);
            setError(null);
            setAt(Date.now());
          }
        } catch (e) {
          if (!stopped) setError(e);
        }
      }
      if (!stopped) timer = setTimeout(tick, ms);
    };
    void tick();
    return () => {
      stopped = true;
      clearTimeout(timer);
    };
  }, deps);
  return { data, error, at };
}
