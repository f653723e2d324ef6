// Saves an answer of the API (a download, a report) as a file, fetched with the session's token.
import { authorized, errorOf } from "../api";

export async function saveAs(path: string, filename: string): Promise<void> {
  const res = await authorized(path);
  if (!res.ok) throw await errorOf(res);
  const url = URL.createObjectURL(await res.blob());
  const a = document.createElement("a");
  a.href = url;
  a.download = filename;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}
