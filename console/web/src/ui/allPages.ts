// Every page of a paged list route (`next_cursor`), read in order.
import { getJson, withQuery } from "../api";

export async function allPages<T>(path: string, key: string, params: Record<string, string | number | undefined> = {}, limit = 200): Promise<T[]> {
  const out: T[] = [];
  let cursor: string | null = null;
  do {
    const page: Record<string, unknown> & { next_cursor: string | null } = await getJson(withQuery(path, { ...params, limit, cursor }));
    out.push(...((page[key] as T[] | undefined) ?? []));
    cursor = page.next_cursor;
  } while (cursor);
  return out;
}
